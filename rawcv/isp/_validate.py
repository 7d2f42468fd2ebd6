"""Input checks shared by the public ISP functions (one place for the error messages)."""

from __future__ import annotations

import numpy as np

from ..meta import cfa_code, validate_cfa

MIN_SIDE = 2    # every stage's smallest input: a mosaic needs one 2 x 2 CFA tile


def as_float_image(image, name: str = "image") -> np.ndarray:
    """Return ``image`` as C-contiguous float32 (converting once), 2-D or H x W x 3."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"{name} must be H x W (mosaic) or H x W x 3 (RGB), got shape {arr.shape}")
    if arr.shape[0] < MIN_SIDE or arr.shape[1] < MIN_SIDE:
        raise ValueError(f"{name} must be at least {MIN_SIDE} x {MIN_SIDE}, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_mosaic(mosaic, cfa, name: str = "mosaic"):
    """Validate a Bayer mosaic and its pattern; return (float32 mosaic, int64 code[4], cfa name)."""
    arr = as_float_image(mosaic, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D Bayer mosaic, got shape {arr.shape}")
    cfa = validate_cfa(cfa)
    return arr, cfa_code(cfa), cfa


def as_rgb(image, name: str = "image") -> np.ndarray:
    arr = as_float_image(image, name)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be an H x W x 3 RGB image, got shape {arr.shape}")
    return arr


def as_gains(gains) -> np.ndarray:
    g = np.asarray(gains, dtype=np.float64).reshape(-1)
    if g.size != 3 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"white-balance gains must be 3 positive finite numbers (R, G, B), got {g.tolist()}")
    return g.astype(np.float32)
