"""Bilinear demosaicing of the four Bayer layouts, and its inverse (mosaicking an RGB image).

Each missing colour is the mean of its 2 or 4 nearest same-colour neighbours; borders are
handled by mirroring (reflect-101: index -1 reads index 1), which keeps the CFA phase.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..meta import cfa_code, validate_cfa
from ._validate import MIN_SIDE, as_mosaic, as_rgb
from .frame import MOSAIC, RGB
from .stage import FusedOp, Fusion, Param, Stage, register_stage

# the 3 x 3 window needs three rows and columns (mirroring a 2-pixel side would read outside it)
DEMOSAIC_MIN_SIDE = 3

# Pixel kinds within the 2x2 tile: which neighbours give which colour.
KIND_G_RED_ROW = 0   # green pixel whose horizontal neighbours are red
KIND_G_BLUE_ROW = 1  # green pixel whose horizontal neighbours are blue
KIND_RED = 2
KIND_BLUE = 3


def pixel_kinds(code) -> np.ndarray:
    """Per position of the 2x2 tile (raster order), the kind used by :func:`_bilinear_pixel`."""
    m = np.asarray(code).reshape(2, 2)
    kinds = np.empty(4, dtype=np.int64)
    for dy in range(2):
        for dx in range(2):
            c = m[dy, dx]
            if c == 0:
                kinds[2 * dy + dx] = KIND_RED
            elif c == 2:
                kinds[2 * dy + dx] = KIND_BLUE
            else:
                kinds[2 * dy + dx] = KIND_G_RED_ROW if m[dy, 1 - dx] == 0 else KIND_G_BLUE_ROW
    return kinds


@njit(cache=True, nogil=True)
def _mirror(i, n):
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@njit(cache=True, nogil=True, inline="always")
def _bilinear_pixel(above, row, below, xm, x, xp, kind):
    """(R, G, B) at column ``x`` of ``row``, from its columns ``xm, x, xp`` and the rows ``above``
    and ``below`` it (1-D rows, already mirrored at the image's edges).

    Every candidate mean is computed and the pixel's kind picks among them, so that a loop over
    a row has no branches and vectorises. Shared by the stand-alone kernel and the fused pipeline
    path, which feeds it rows computed on the fly.
    """
    c = row[x]
    cross = (above[x] + below[x] + row[xm] + row[xp]) * np.float32(0.25)
    diag = (above[xm] + above[xp] + below[xm] + below[xp]) * np.float32(0.25)
    h = (row[xm] + row[xp]) * np.float32(0.5)
    v = (above[x] + below[x]) * np.float32(0.5)
    if kind == KIND_RED:
        return c, cross, diag
    if kind == KIND_BLUE:
        return diag, cross, c
    if kind == KIND_G_RED_ROW:
        return h, c, v
    return v, c, h


@njit(cache=True, nogil=True)
def _demosaic_row(above, row, below, kinds_row, out_row):
    """Demosaic one row from the 1-D rows ``above``, ``row``, ``below`` into the flat
    ``out_row`` (R, G, B interleaved, 3 W); ``kinds_row`` holds the kinds of its even and odd
    columns. The two edge columns mirror; the interior runs with plain offsets."""
    w = row.size
    k_even, k_odd = kinds_row[0], kinds_row[1]
    for x in (0, w - 1):
        r, g, b = _bilinear_pixel(above, row, below, _mirror(x - 1, w), x, _mirror(x + 1, w), kinds_row[x & 1])
        out_row[3 * x] = r
        out_row[3 * x + 1] = g
        out_row[3 * x + 2] = b
    for k in range(w - 2):
        # column x = k + 1, its neighbours k and k + 2: indices Numba need not wrap around
        r, g, b = _bilinear_pixel(above, row, below, k, k + 1, k + 2, k_even if k & 1 else k_odd)
        out_row[3 * k + 3] = r
        out_row[3 * k + 4] = g
        out_row[3 * k + 5] = b


@njit(cache=True, nogil=True)
def _demosaic_fused_row(above, row, below, y, args, scratch, out_row):
    """Fused-pass row function (:class:`~rawcv.isp.stage.Fusion` ``DEMOSAIC``) of
    :class:`Demosaic`: RGB row ``y`` from mosaic rows ``y - 1, y, y + 1``; ``args[0]`` holds
    the pixel kinds of the 2 x 2 tile."""
    kinds = args[0]
    p = 2 * (y & 1)
    _demosaic_row(above, row, below, kinds[p:p + 2], out_row)


@njit(parallel=True, cache=True, nogil=True)
def _demosaic_kernel(src, kinds, out):
    # out: (h, 3 w) flat RGB rows
    h = src.shape[0]
    for y in prange(h):
        row = 2 * (y & 1)
        _demosaic_row(src[_mirror(y - 1, h)], src[y], src[_mirror(y + 1, h)], kinds[row:row + 2], out[y])


BAND_ROWS = 32


@njit(cache=True, nogil=True)
def _ring_slot(ring, tags, r):
    """The slot of a 3-row ring buffer that holds source row ``r``, and whether it is already
    filled (rows y-1, y, y+1 are distinct mod 3, so consecutive rows never evict each other)."""
    slot = r % 3
    fresh = tags[slot] == r
    tags[slot] = r
    return ring[slot], fresh


@njit(parallel=True, cache=True, nogil=True)
def _demosaic_int_kernel(src, kinds, out):
    # small integer input: converted to float32 a row at a time (exactly, as NumPy would) in a
    # ring buffer instead of a full-size float32 copy of the mosaic; out: (h, 3 w)
    h, w = src.shape
    for band in prange((h + BAND_ROWS - 1) // BAND_ROWS):
        ring = np.empty((3, w), dtype=np.float32)
        tags = np.full(3, -1, dtype=np.int64)
        for y in range(band * BAND_ROWS, min(h, (band + 1) * BAND_ROWS)):
            ym, yp = _mirror(y - 1, h), _mirror(y + 1, h)
            for r in (ym, y, yp):
                buf, fresh = _ring_slot(ring, tags, r)
                if not fresh:
                    for x in range(w):
                        buf[x] = np.float32(src[r, x])
            row = 2 * (y & 1)
            _demosaic_row(ring[ym % 3], ring[y % 3], ring[yp % 3], kinds[row:row + 2], out[y])


@njit(parallel=True, cache=True, nogil=True)
def _mosaic_kernel(rgb, code, out):
    h, w, _ = rgb.shape
    for y in prange(h):
        row = 2 * (y & 1)
        for x in range(w):
            out[y, x] = rgb[y, x, code[row + (x & 1)]]


def demosaic_bilinear(mosaic, *, cfa: str) -> np.ndarray:
    """Bilinear demosaicing: H x W mosaic -> H x W x 3 float32 RGB.

    Parameters
    ----------
    mosaic : ndarray
        2-D Bayer mosaic (any real dtype; converted to float32 once). Height and width >= 3.
    cfa : {"RGGB", "BGGR", "GRBG", "GBRG"}
        The layout of the mosaic's top-left 2x2 tile.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((4, 6), 0.5, np.float32)
    >>> bool(np.all(demosaic_bilinear(flat, cfa="GBRG") == 0.5))
    True
    """
    raw = np.asarray(mosaic)
    if raw.ndim == 2 and raw.dtype in (np.uint8, np.uint16) and min(raw.shape) >= DEMOSAIC_MIN_SIDE:
        # converted row by row inside the kernel (exact for these types), not as a full copy
        arr = np.ascontiguousarray(raw)
        out = np.empty(arr.shape + (3,), dtype=np.float32)
        _demosaic_int_kernel(arr, pixel_kinds(cfa_code(validate_cfa(cfa))), out.reshape(arr.shape[0], -1))
        return out
    arr, code, _ = as_mosaic(mosaic, cfa)
    if min(arr.shape) < DEMOSAIC_MIN_SIDE:
        raise ValueError(f"mosaic must be at least {DEMOSAIC_MIN_SIDE} x {DEMOSAIC_MIN_SIDE} to demosaic, "
                         f"got shape {arr.shape}")
    out = np.empty(arr.shape + (3,), dtype=np.float32)
    _demosaic_kernel(arr, pixel_kinds(code), out.reshape(arr.shape[0], -1))
    return out


def mosaic_rgb(image, *, cfa: str) -> np.ndarray:
    """Sample an H x W x 3 image through a Bayer CFA: the inverse of demosaicing's sampling.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.zeros((2, 2, 3), np.float32); rgb[..., 0] = 1; rgb[..., 2] = 3
    >>> mosaic_rgb(rgb, cfa="RGGB").tolist()
    [[1.0, 0.0], [0.0, 3.0]]
    """
    arr = as_rgb(image)
    out = np.empty(arr.shape[:2], dtype=np.float32)
    _mosaic_kernel(arr, cfa_code(cfa), out)
    return out


# --- the stage --------------------------------------------------------------------------------

@register_stage
class Demosaic(Stage):
    name = "demosaic"
    doc = "Bilinear demosaicing (skipped for linear raw, which is already RGB)."
    params = (Param("method", "str", "bilinear", "interpolation", choices=("bilinear",)),)
    accepts = (MOSAIC,)

    def produces(self, kind):
        return RGB

    def min_side(self, kind):
        return DEMOSAIC_MIN_SIDE if kind == MOSAIC else MIN_SIDE

    def apply(self, frame):
        if frame.kind == RGB:  # a linear DNG: nothing to interpolate
            self.note(frame, skipped="input is already RGB (linear raw)")
            return frame
        return frame.with_data(demosaic_bilinear(frame.data, cfa=frame.cfa), RGB)

    def fusion(self, kind):
        return Fusion.DEMOSAIC if kind == MOSAIC else None

    def fused_op(self, ctx):
        return FusedOp(_demosaic_fused_row, (pixel_kinds(cfa_code(ctx.meta.cfa)),))
