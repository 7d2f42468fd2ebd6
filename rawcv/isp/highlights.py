"""Highlights: what happens to values at and above the white level after white balance.

A clipped sensor value says only "at least this bright". White balance multiplies red and blue
by gains above 1, so a pixel clipped in every channel turns into (gain_R, 1, gain_B): magenta.
``clip`` (dcraw's default highlight mode) caps every channel at the white point, 1.0 after
normalisation, once the gains are applied: a blown area comes out white, and a colour running
into it desaturates towards white instead of flipping hue.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._validate import as_float_image
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

WHITE_POINT = np.float32(1.0)       # normalised white level, the same after white balance


@njit(cache=True, nogil=True, inline="always")
def _clip_scalar(v, white):
    # a select, not min(): NaN (a value that never existed) stays NaN
    return white if v > white else v


@njit(cache=True, nogil=True)
def _clip_row(src_row, white, out_row):
    for j in range(src_row.size):
        out_row[j] = _clip_scalar(src_row[j], white)


@njit(cache=True, nogil=True)
def _clip_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function of :class:`Highlights` (``clip``): ``args[0]`` is the white point."""
    _clip_row(src_row, args[0], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _clip_kernel(src, white, out):
    # src, out: (h, n) rows
    for y in prange(src.shape[0]):
        _clip_row(src[y], white, out[y])


def clip_highlights(image, *, white: float = WHITE_POINT) -> np.ndarray:
    """Cap every value of a white-balanced mosaic or RGB image at ``white``.

    Examples
    --------
    >>> import numpy as np
    >>> clip_highlights(np.array([[2.1, 1.0], [0.5, 1.6]], np.float32)).tolist()
    [[1.0, 1.0], [0.5, 1.0]]
    """
    arr = as_float_image(image)
    out = np.empty_like(arr)
    h = arr.shape[0]
    _clip_kernel(arr.reshape(h, -1), np.float32(white), out.reshape(h, -1))
    return out


@register_stage
class Highlights(Stage):
    name = "highlights"
    doc = "Clipped highlights: cap every channel at the white point after white balance, so blown areas stay white."
    params = (Param("method", "str", "clip", "what to do with values above the white point", choices=("clip",)),)
    accepts = (MOSAIC, RGB)
    linear_only = True

    def apply(self, frame):
        return frame.with_data(clip_highlights(frame.data, white=WHITE_POINT))

    def fusion(self, kind):
        return Fusion.POINTWISE

    def fused_op(self, ctx):
        return FusedOp(_clip_fused_row, (WHITE_POINT,))


__all__ = ["clip_highlights", "Highlights", "WHITE_POINT"]
