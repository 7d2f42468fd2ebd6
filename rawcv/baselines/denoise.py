"""Classical joint denoising + demosaicing of a noisy, normalised Bayer mosaic.

Every method returns white-balanced camera RGB, the space the restoration models predict
(:mod:`rawcv.data.restore`), so that both are compared on the same images with the same metrics
(:func:`rawcv.train.restore.evaluate_restore`).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

#: Non-local means parameters on the variance-stabilised planes; ``h`` was chosen among 0.3-1.2
#: on 8 validation pairs at high noise (lambda_shot 0.012), never on the test pairs.
NLM_DEFAULTS = {"patch_size": 5, "patch_distance": 6, "h": 0.6}


def gat(x, lambda_shot: float, lambda_read: float) -> np.ndarray:
    """Generalised Anscombe transform for ``var(x) = lambda_shot * x + lambda_read``.

    With ``z = x / lambda_shot`` (Poisson-like counts) and ``sigma^2 = lambda_read / lambda_shot^2``,
    ``f(z) = 2 sqrt(max(z + 3/8 + sigma^2, 0))``: noise of (approximately) unit variance.

    Examples
    --------
    >>> round(float(gat(0.12, 0.012, 0.0)), 4)
    6.442
    """
    ls = float(lambda_shot)
    if ls <= 0:
        raise ValueError("the generalised Anscombe transform needs lambda_shot > 0")
    z = np.asarray(x, dtype=np.float64) / ls
    s2 = float(lambda_read) / ls ** 2
    return 2.0 * np.sqrt(np.maximum(z + 0.375 + s2, 0.0))


def gat_inverse(d, lambda_shot: float, lambda_read: float, *, method: str = "unbiased") -> np.ndarray:
    """Inverse of :func:`gat`.

    ``algebraic``: the exact inverse of the forward map, ``(d / 2)^2 - 3/8 - sigma^2``;
    ``unbiased``: the closed-form approximation of the exact unbiased inverse (Makitalo & Foi
    2013), ``d^2/4 + sqrt(3/2)/(4 d) - 11/(8 d^2) + 5 sqrt(3/2)/(8 d^3) - 1/8 - sigma^2``, which
    maps the *mean* of the transformed noisy data back to the clean value (what a denoiser's
    output estimates); clipped at 0.

    Examples
    --------
    >>> round(float(gat_inverse(gat(0.12, 0.012, 0.0), 0.012, 0.0, method="algebraic")), 6)
    0.12
    """
    ls = float(lambda_shot)
    s2 = float(lambda_read) / ls ** 2
    d = np.asarray(d, dtype=np.float64)
    if method == "algebraic":
        z = (d / 2.0) ** 2 - 0.375 - s2
    elif method == "unbiased":
        d = np.maximum(d, 0.8)
        c = math.sqrt(1.5)
        z = 0.25 * d ** 2 + 0.25 * c / d - 1.375 / d ** 2 + 0.625 * c / d ** 3 - 0.125 - s2
        z = np.maximum(z, 0.0)
    else:
        raise ValueError(f"unknown inverse {method!r}: expected 'algebraic' or 'unbiased'")
    return z * ls


def white_balanced_bilinear(mosaic, gains, cfa: str = "RGGB") -> np.ndarray:
    """The ISP's white balance and bilinear demosaic of a normalised mosaic: camera RGB, no denoising."""
    from .. import isp

    wb = isp.white_balance(np.ascontiguousarray(mosaic, dtype=np.float32), np.asarray(gains, np.float32), cfa=cfa)
    return np.asarray(isp.demosaic_bilinear(wb, cfa=cfa), dtype=np.float32)


# The four 2 x 2 phases of a mosaic, one plane each. Non-local means weighs a patch by its
# distance summed over the planes, so it needs no colour names: any fixed order does.
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def baseline_nlm_vst(mosaic, gains, lambda_shot, lambda_read, *, cfa: str = "RGGB", **nlm) -> np.ndarray:
    """scikit-image non-local means after a variance-stabilising transform, then bilinear demosaic.

    The four same-colour planes of the mosaic are transformed with :func:`gat` (unit noise),
    denoised together with ``denoise_nl_means(..., sigma=1, fast_mode=True)`` (:data:`NLM_DEFAULTS`,
    overridden by ``nlm``), transformed back with the unbiased inverse, put back in place, white
    balanced and demosaiced (:func:`white_balanced_bilinear`). Returns white-balanced camera RGB.
    """
    from skimage.restoration import denoise_nl_means

    params = {**NLM_DEFAULTS, **nlm}
    m = np.asarray(mosaic, dtype=np.float32)
    if m.ndim != 2 or m.shape[0] % 2 or m.shape[1] % 2:
        raise ValueError(f"non-local means on the mosaic's planes needs an even-sized H x W mosaic, got {m.shape}")
    out = m.copy()
    if lambda_shot > 0:
        planes = np.stack([m[dy::2, dx::2] for dy, dx in _PHASES], axis=-1)
        den = denoise_nl_means(gat(planes, lambda_shot, lambda_read), patch_size=params["patch_size"],
                               patch_distance=params["patch_distance"], h=params["h"], sigma=1.0, fast_mode=True,
                               channel_axis=-1, preserve_range=True)
        planes = gat_inverse(den, lambda_shot, lambda_read).astype(np.float32)
        for c, (dy, dx) in enumerate(_PHASES):
            out[dy::2, dx::2] = planes[..., c]
    return white_balanced_bilinear(out, gains, cfa)


def classical_baselines(mosaic, gains, lambda_shot, lambda_read, *, cfa: str = "RGGB", nlm: bool = True,
                        nlm_params: Optional[dict] = None) -> dict:
    """The classical outputs (white-balanced camera RGB) of one noisy normalised mosaic.

    ``bilinear``: no denoising; ``median3_mosaic`` / ``mean3_mosaic``: the ISP's 3x3 median / mean
    on the mosaic (same-colour neighbours, ``cfa=``) then bilinear demosaic; ``median3_rgb`` /
    ``mean3_rgb``: after demosaic; ``nlm_vst``: :func:`baseline_nlm_vst`.
    """
    from .. import isp

    m = np.ascontiguousarray(mosaic, dtype=np.float32)
    out = {"bilinear": white_balanced_bilinear(m, gains, cfa)}
    for method in ("median", "mean"):
        out[f"{method}3_mosaic"] = white_balanced_bilinear(isp.denoise(m, method=method, size=3, cfa=cfa), gains, cfa)
        out[f"{method}3_rgb"] = np.asarray(isp.denoise(out["bilinear"], method=method, size=3), dtype=np.float32)
    if nlm:
        out["nlm_vst"] = baseline_nlm_vst(m, gains, lambda_shot, lambda_read, cfa=cfa, **(nlm_params or {}))
    return out


__all__ = ["gat", "gat_inverse", "baseline_nlm_vst", "classical_baselines", "white_balanced_bilinear",
           "NLM_DEFAULTS"]
