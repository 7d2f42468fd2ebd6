"""Bilinear demosaicing of the four Bayer layouts, and its inverse (mosaicking an RGB image).

Each missing colour is the mean of its 2 or 4 nearest same-colour neighbours; borders are
handled by mirroring (reflect-101: index -1 reads index 1), which keeps the CFA phase.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._validate import as_mosaic, as_rgb

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


@njit(cache=True, nogil=True)
def _bilinear_pixel(src, ym, y, yp, xm, x, xp, kind):
    """(R, G, B) at one pixel from rows ``ym, y, yp`` and columns ``xm, x, xp`` of ``src``.

    Shared by the stand-alone kernel and the fused pipeline path, which feeds it a band of
    rows computed on the fly.
    """
    c = src[y, x]
    if kind >= 2:
        cross = (src[ym, x] + src[yp, x] + src[y, xm] + src[y, xp]) * np.float32(0.25)
        diag = (src[ym, xm] + src[ym, xp] + src[yp, xm] + src[yp, xp]) * np.float32(0.25)
        if kind == 2:
            return c, cross, diag
        return diag, cross, c
    h = (src[y, xm] + src[y, xp]) * np.float32(0.5)
    v = (src[ym, x] + src[yp, x]) * np.float32(0.5)
    if kind == 0:
        return h, c, v
    return v, c, h


@njit(cache=True, nogil=True)
def _demosaic_row(src, ym, y, yp, kinds_row, out_row, w):
    # the two edge columns mirror; the interior runs without index checks
    for x in (0, w - 1):
        r, g, b = _bilinear_pixel(src, ym, y, yp, _mirror(x - 1, w), x, _mirror(x + 1, w), kinds_row[x & 1])
        out_row[x, 0] = r
        out_row[x, 1] = g
        out_row[x, 2] = b
    k0 = kinds_row[1]
    k1 = kinds_row[0]
    for x in range(1, w - 1):
        r, g, b = _bilinear_pixel(src, ym, y, yp, x - 1, x, x + 1, k0 if x & 1 else k1)
        out_row[x, 0] = r
        out_row[x, 1] = g
        out_row[x, 2] = b


@njit(parallel=True, cache=True, nogil=True)
def _demosaic_kernel(src, kinds, out):
    h, w = src.shape
    for y in prange(h):
        row = 2 * (y & 1)
        _demosaic_row(src, _mirror(y - 1, h), y, _mirror(y + 1, h), kinds[row:row + 2], out[y], w)


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
    arr, code, _ = as_mosaic(mosaic, cfa)
    if min(arr.shape) < 3:
        raise ValueError(f"mosaic must be at least 3 x 3 to demosaic, got shape {arr.shape}")
    out = np.empty(arr.shape + (3,), dtype=np.float32)
    _demosaic_kernel(arr, pixel_kinds(code), out)
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
    from ..meta import cfa_code
    out = np.empty(arr.shape[:2], dtype=np.float32)
    _mosaic_kernel(arr, cfa_code(cfa), out)
    return out
