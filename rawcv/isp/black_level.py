"""Black-level subtraction and normalisation by the white level, with the saturation mask."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..meta import cfa_code, validate_cfa
from .frame import MOSAIC, RAW, RAW_RGB, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage


@njit(cache=True, nogil=True)
def _normalize_scalar(value, black, inv_range):
    return np.float32((np.float32(value) - black) * inv_range)


@njit(cache=True, nogil=True)
def _normalize_mosaic_row(src_row, black2, inv2, out_row):
    """One mosaic row: ``black2``/``inv2`` are the levels of its even and odd columns.
    Shared by the stand-alone kernel and the fused pipeline path."""
    w = src_row.size
    b0, b1 = black2[0], black2[1]
    s0, s1 = inv2[0], inv2[1]
    for k in range(w // 2):
        # both loads before both stores: lets LLVM vectorise the pair loop
        v0 = src_row[2 * k]
        v1 = src_row[2 * k + 1]
        out_row[2 * k] = _normalize_scalar(v0, b0, s0)
        out_row[2 * k + 1] = _normalize_scalar(v1, b1, s1)
    if w & 1:
        out_row[w - 1] = _normalize_scalar(src_row[w - 1], b0, s0)


@njit(parallel=True, cache=True, nogil=True)
def _normalize_mosaic_kernel(src, black4, inv_range4, out):
    h = src.shape[0]
    for y in prange(h):
        row = 2 * (y & 1)
        _normalize_mosaic_row(src[y], black4[row:row + 2], inv_range4[row:row + 2], out[y])


@njit(parallel=True, cache=True, nogil=True)
def _normalize_rgb_kernel(src, black3, inv_range3, out):
    h, w, _ = src.shape
    for y in prange(h):
        for x in range(w):
            for c in range(3):
                out[y, x, c] = _normalize_scalar(src[y, x, c], black3[c], inv_range3[c])


@njit(cache=True, nogil=True)
def _saturation_row(src_row, white, out_row):
    """``out_row = src_row >= white``; shared by the stand-alone kernel and the fused path."""
    for x in range(src_row.size):
        out_row[x] = src_row[x] >= white


@njit(parallel=True, cache=True, nogil=True)
def _saturation_kernel(src, white, out):
    # src, out: (h, n) rows
    for y in prange(src.shape[0]):
        _saturation_row(src[y], white, out[y])


def level_tables(black, white, *, rgb: bool = False):
    """float32 ``(black, 1 / (white - black))`` per CFA position (4) or per RGB channel (3)."""
    b = np.asarray(black, dtype=np.float64).reshape(-1)
    if b.size == 1:
        b = np.repeat(b, 4)
    if b.size != 4:
        raise ValueError(f"black level needs 1 or 4 values, got {b.size}")
    if rgb:
        # linear data: the 4 values are per colour R, G, B, G2
        b = b[:3]
    white = float(white)
    if not np.all(white > b):
        raise ValueError(f"white level {white:g} must exceed every black level {b.tolist()}")
    return b.astype(np.float32), (1.0 / (white - b)).astype(np.float32)


def subtract_black_level(raw, *, black, white) -> np.ndarray:
    """Subtract the black level per CFA position and normalise to [0, 1] by the white level.

    Parameters
    ----------
    raw : ndarray
        Integer or float sensor values, H x W (Bayer mosaic) or H x W x 3 (linear raw).
    black : float or sequence of 4 float
        Black level per CFA position in 2x2 raster order (see :mod:`rawcv.meta`); for
        linear raw the first three are taken as R, G, B.
    white : float
        White (saturation) level.

    Returns
    -------
    ndarray of float32
        ``(raw - black) / (white - black)``; values are not clipped, so noise below black stays
        negative and a mean over a dark region stays unbiased.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[600, 15520], [1000, 8060]], np.uint16)
    >>> subtract_black_level(m, black=600, white=15520).astype(np.float64).round(3).tolist()
    [[0.0, 1.0], [0.027, 0.5]]
    """
    arr = np.ascontiguousarray(raw)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"raw must be H x W or H x W x 3, got shape {arr.shape}")
    b, s = level_tables(black, white, rgb=arr.ndim == 3)
    out = np.empty(arr.shape, dtype=np.float32)
    if arr.ndim == 2:
        _normalize_mosaic_kernel(arr, b, s, out)
    else:
        _normalize_rgb_kernel(arr, b, s, out)
    return out


def saturation_mask(raw, *, white) -> np.ndarray:
    """Boolean mask of the pixels at or above the white level (clipped highlights).

    Examples
    --------
    >>> import numpy as np
    >>> saturation_mask(np.array([[10, 99], [100, 120]], np.uint16), white=100).tolist()
    [[False, False], [True, True]]
    """
    arr = np.ascontiguousarray(raw)
    out = np.empty(arr.shape, dtype=np.bool_)
    rows = arr.shape[0] if arr.ndim >= 2 and arr.size else 1
    _saturation_kernel(arr.reshape(rows, -1), float(white), out.reshape(rows, -1))
    return out


@njit(cache=True, nogil=True)
def _black_level_fused_row(src_row, y, args, scratch, out_row):
    """Fused-pass row function (:class:`~rawcv.isp.stage.Fusion` ``POINTWISE``) of
    :class:`BlackLevel` on mosaic row ``y``; it also fills row ``y`` of the saturation mask. A
    row some neighbouring band recomputes writes the same mask values again."""
    black4, inv4, white, saturation = args
    p = 2 * (y & 1)
    _normalize_mosaic_row(src_row, black4[p:p + 2], inv4[p:p + 2], out_row)
    _saturation_row(src_row, white, saturation[y])


def saturated_fractions(mask, *, cfa=None) -> dict:
    """The fraction of each colour's samples that :func:`saturation_mask` marks: per CFA colour
    for a mosaic's mask (``cfa`` given), per channel for a linear raw's ``H x W x 3`` mask.

    Examples
    --------
    >>> import numpy as np
    >>> saturated_fractions(np.array([[True, False], [False, False]]), cfa="RGGB")
    {'R': 1.0, 'G': 0.0, 'B': 0.0}
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 3:
        return {c: float(m[..., i].mean()) for i, c in enumerate("RGB")}
    code = cfa_code(validate_cfa(cfa)).reshape(2, 2)
    hits, counts = np.zeros(3), np.zeros(3)
    for dy in range(2):
        for dx in range(2):
            plane = m[dy::2, dx::2]
            hits[code[dy, dx]] += plane.sum()
            counts[code[dy, dx]] += plane.size
    return {c: float(hits[i] / counts[i]) if counts[i] else 0.0 for i, c in enumerate("RGB")}


# --- the stage --------------------------------------------------------------------------------

@register_stage
class BlackLevel(Stage):
    name = "black_level"
    doc = "Subtract the per-CFA-position black level and normalise by the white level; records the saturation mask."
    params = (
        Param("black", "floats", None, "override the file's black level (4 values, CFA raster order)", length=4),
        Param("white", "float", None, "override the file's white level"),
    )
    accepts = (RAW, RAW_RGB)

    def produces(self, kind):
        return RGB if kind == RAW_RGB else MOSAIC

    def levels(self, meta):
        black = self.black if self.black is not None else meta.black_level
        white = self.white if self.white is not None else meta.white_level
        return black, white

    def apply(self, frame):
        black, white = self.levels(frame.meta)
        out = subtract_black_level(frame.data, black=black, white=white)
        mask = saturation_mask(frame.data, white=white)
        return frame.with_data(out, self.produces(frame.kind), saturation=mask)

    def fusion(self, kind):
        return Fusion.POINTWISE if kind == RAW else None

    def fused_op(self, ctx):
        black, white = self.levels(ctx.meta)
        black4, inv4 = level_tables(black, white)
        saturation = np.empty(ctx.shape, dtype=np.bool_)
        return FusedOp(_black_level_fused_row, (black4, inv4, float(white), saturation),
                       changes={"saturation": saturation})
