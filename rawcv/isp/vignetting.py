"""Vignetting: the radial polynomial gain of DNG's ``FixVignetteRadial`` opcode, and its fit.

The gain at a pixel is ``1 + k1 r^2 + k2 r^4 + k3 r^6 + k4 r^8 + k5 r^10`` (the opcode's ``k0..k4``) where ``r`` is the distance to the optical
centre divided by the distance from the centre to the farthest image corner (so ``r <= 1``).
Correction multiplies by the gain; a lens darkens the corners by its reciprocal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numba import njit, prange

from ..errors import PipelineError
from ._validate import as_float_image
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage


@dataclass(frozen=True)
class VignettingModel:
    """Radial gain model; ``center`` is ``(cx, cy)`` as fractions of width and height."""

    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    center: tuple = (0.5, 0.5)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["center"] = list(self.center)
        return d


def geometry(shape, center=(0.5, 0.5)):
    """float32 ``(cy, cx, 1 / max_radius^2)`` in pixel units for an image of ``shape``."""
    h, w = shape[:2]
    cx = np.float64(center[0]) * (w - 1)
    cy = np.float64(center[1]) * (h - 1)
    if not (0 <= center[0] <= 1 and 0 <= center[1] <= 1):
        raise ValueError(f"vignetting center must be fractions in [0, 1], got {center!r}")
    corners = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)]
    rmax2 = max((y - cy) ** 2 + (x - cx) ** 2 for y, x in corners)
    return np.float32(cy), np.float32(cx), np.float32(1.0 / max(rmax2, 1e-12))


@njit(cache=True, nogil=True)
def _gain_scalar(y, x, cy, cx, inv_rmax2, ks):
    dy = np.float32(y) - cy
    dx = np.float32(x) - cx
    r2 = (dy * dy + dx * dx) * inv_rmax2
    return np.float32(1.0) + r2 * (ks[0] + r2 * (ks[1] + r2 * (ks[2] + r2 * (ks[3] + r2 * ks[4]))))


@njit(cache=True, nogil=True)
def _vignetting_row(src_row, y, nc, geom, ks, out_row):
    """Row ``y`` of ``nc`` interleaved channels (flat, 1-D) times the radial gain (``out_row`` may
    be ``src_row``). Shared by the stand-alone kernel and the fused pipeline path."""
    cy, cx, inv_rmax2 = geom[0], geom[1], geom[2]
    w = src_row.size // nc
    if nc == 3:
        for x in range(w):
            g = _gain_scalar(y, x, cy, cx, inv_rmax2, ks)
            out_row[3 * x] = src_row[3 * x] * g
            out_row[3 * x + 1] = src_row[3 * x + 1] * g
            out_row[3 * x + 2] = src_row[3 * x + 2] * g
    else:
        for x in range(w):
            g = _gain_scalar(y, x, cy, cx, inv_rmax2, ks)
            for c in range(nc):
                out_row[nc * x + c] = src_row[nc * x + c] * g


@njit(parallel=True, cache=True, nogil=True)
def _vignetting_kernel(src, geom, ks, out):
    h, w, nc = src.shape
    flat_in = src.reshape(h, w * nc)
    flat_out = out.reshape(h, w * nc)
    for y in prange(h):
        _vignetting_row(flat_in[y], y, nc, geom, ks, flat_out[y])


@njit(cache=True, nogil=True)
def _vignetting_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Vignetting`: ``args`` are (channels, geometry, k)."""
    nc, geom, ks = args
    _vignetting_row(src_row, y, nc, geom, ks, out_row)


def _params(shape, k1, k2, k3, center, k4=0.0, k5=0.0):
    geom = np.array(geometry(shape, center), dtype=np.float32)
    ks = np.array([k1, k2, k3, k4, k5], dtype=np.float32)
    return geom, ks


def vignetting_gain(shape, *, k1=0.0, k2=0.0, k3=0.0, k4=0.0, k5=0.0, center=(0.5, 0.5)) -> np.ndarray:
    """The H x W float32 correction gain map of the model.

    Examples
    --------
    >>> g = vignetting_gain((5, 5), k1=0.5)
    >>> float(g[2, 2]), float(g[0, 0])
    (1.0, 1.5)
    """
    ones = np.ones(tuple(shape[:2]) + (1,), dtype=np.float32)
    out = np.empty_like(ones)
    _vignetting_kernel(ones, *_params(shape, k1, k2, k3, center, k4, k5), out)
    return out[:, :, 0]


def correct_vignetting(image, *, k1=0.0, k2=0.0, k3=0.0, k4=0.0, k5=0.0, center=(0.5, 0.5)) -> np.ndarray:
    """Multiply each pixel (all channels; mosaic or RGB) by the radial gain.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((5, 5), 0.5, np.float32)
    >>> float(correct_vignetting(flat, k1=1.0)[0, 0])
    1.0
    """
    arr = as_float_image(image)
    view = arr if arr.ndim == 3 else arr[:, :, None]
    out = np.empty_like(arr)
    _vignetting_kernel(view, *_params(arr.shape, k1, k2, k3, center, k4, k5), out if out.ndim == 3 else out[:, :, None])
    return out


def apply_vignetting(image, *, k1=0.0, k2=0.0, k3=0.0, k4=0.0, k5=0.0, center=(0.5, 0.5)) -> np.ndarray:
    """The lens falloff the model corrects: divide by the gain (used by the synthetic camera)."""
    arr = as_float_image(image)
    gain = vignetting_gain(arr.shape, k1=k1, k2=k2, k3=k3, k4=k4, k5=k5, center=center)
    return arr / (gain if arr.ndim == 2 else gain[:, :, None])


def fit_vignetting(flat_image, *, center=(0.5, 0.5), cfa=None, exclude_saturated: float = 0.999) -> VignettingModel:
    """Estimate ``k1..k3`` from a flat-field capture (a uniformly lit, featureless target).

    A flat field seen through the lens is ``level / gain(r)``, so ``1 / value`` is linear in
    ``1, r^2, r^4, r^6``; a least-squares fit per colour gives ``k_i`` as the ratio of the ``r^2i``
    coefficient to the constant one (no need to know the unvignetted level). For a mosaic pass
    ``cfa`` so each CFA position gets its own level; the per-position fits are averaged.

    Examples
    --------
    >>> import numpy as np
    >>> flat = apply_vignetting(np.full((64, 96), 0.5, np.float32), k1=0.4, k2=0.1)
    >>> m = fit_vignetting(flat)
    >>> round(m.k1, 3), round(m.k2, 3)
    (0.4, 0.1)
    """
    arr = as_float_image(flat_image, "flat_image")
    h, w = arr.shape[:2]
    cy, cx, inv_rmax2 = geometry(arr.shape, center)
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - np.float64(cy)) ** 2 + (xx - np.float64(cx)) ** 2) * np.float64(inv_rmax2)
    if arr.ndim == 3:
        channels = [(arr[..., c], np.ones((h, w), bool)) for c in range(3)]
    elif cfa is not None:
        channels = []
        for dy in range(2):
            for dx in range(2):
                sel = np.zeros((h, w), bool)
                sel[dy::2, dx::2] = True
                channels.append((arr, sel))
    else:
        channels = [(arr, np.ones((h, w), bool))]
    fits, weights = [], []
    for values, sel in channels:
        v = values.astype(np.float64)
        ok = sel & (v > 0) & (v < exclude_saturated)
        if ok.sum() < 16:
            raise ValueError("flat image has too few usable (unclipped, positive) pixels to fit vignetting")
        r = r2[ok]
        design = np.stack([np.ones_like(r), r, r ** 2, r ** 3], axis=1)
        coef, *_ = np.linalg.lstsq(design, 1.0 / v[ok], rcond=None)
        fits.append(coef[1:] / coef[0])
        weights.append(ok.sum())
    k = np.average(np.array(fits), axis=0, weights=np.array(weights, dtype=np.float64))
    return VignettingModel(float(k[0]), float(k[1]), float(k[2]), tuple(float(c) for c in center))


# --- the stage --------------------------------------------------------------------------------

@register_stage
class Vignetting(Stage):
    name = "vignetting"
    doc = "Radial gain 1 + k1 r^2 + ... + k5 r^10 about the optical centre (DNG FixVignetteRadial)."
    params = (
        Param("k1", "float", 0.0, "r^2 coefficient"),
        Param("k2", "float", 0.0, "r^4 coefficient"),
        Param("k3", "float", 0.0, "r^6 coefficient"),
        Param("k4", "float", 0.0, "r^8 coefficient"),
        Param("k5", "float", 0.0, "r^10 coefficient"),
        Param("center", "floats", [0.5, 0.5], "optical centre (x, y) as fractions of width, height", length=2),
    )
    accepts = (MOSAIC, RGB)
    linear_only = True

    def check(self):
        if not all(0 <= c <= 1 for c in self.center):
            raise PipelineError("stage 'vignetting': center must be fractions in [0, 1]")

    def apply(self, frame):
        return frame.with_data(correct_vignetting(frame.data, k1=self.k1, k2=self.k2, k3=self.k3, k4=self.k4,
                                                  k5=self.k5, center=tuple(self.center)))

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        geom, ks = _params(ctx.shape, self.k1, self.k2, self.k3, tuple(self.center), self.k4, self.k5)
        return FusedOp(_vignetting_fused_row, (3 if ctx.kind == RGB else 1, geom, ks))
