"""Exposure: scale linear values by ``2 ** stops`` (a digital gain, as a camera's exposure
compensation or DNG's ``BaselineExposure`` does)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._validate import as_float_image
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage


def exposure_gain(stops: float) -> np.float32:
    """The float32 gain of ``stops`` (every backend multiplies by this very number)."""
    stops = float(stops)
    if not np.isfinite(stops):
        raise ValueError(f"exposure stops must be finite, got {stops!r}")
    return np.float32(2.0 ** stops)


@njit(cache=True, nogil=True)
def _exposure_row(src_row, gain, out_row):
    for j in range(src_row.size):
        out_row[j] = src_row[j] * gain


@njit(cache=True, nogil=True)
def _exposure_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Exposure`: ``args[0]`` is the gain."""
    _exposure_row(src_row, args[0], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _exposure_kernel(src, gain, out):
    # src, out: (h, n) rows
    for y in prange(src.shape[0]):
        _exposure_row(src[y], gain, out[y])


def apply_exposure(image, *, stops: float) -> np.ndarray:
    """Multiply a linear mosaic or RGB image by ``2 ** stops``.

    Examples
    --------
    >>> import numpy as np
    >>> apply_exposure(np.full((2, 2), 0.25, np.float32), stops=1.0).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    arr = as_float_image(image)
    out = np.empty_like(arr)
    h = arr.shape[0]
    _exposure_kernel(arr.reshape(h, -1), exposure_gain(stops), out.reshape(h, -1))
    return out


@register_stage
class Exposure(Stage):
    name = "exposure"
    doc = "Exposure compensation: multiply linear values by 2^stops."
    params = (Param("stops", "float", 0.0, "exposure change in stops (EV); +1 doubles every value"),)
    accepts = (MOSAIC, RGB)
    linear_only = True

    def apply(self, frame):
        return frame.with_data(apply_exposure(frame.data, stops=self.stops))

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        return FusedOp(_exposure_fused_row, (exposure_gain(self.stops),))


__all__ = ["apply_exposure", "exposure_gain", "Exposure"]
