"""Where each colour sits in the 2 x 2 Bayer tile, as the demosaic kernels read it."""

from __future__ import annotations

import numpy as np
from numba import njit

# Pixel kinds within the 2x2 tile: which neighbours give which colour.
KIND_G_RED_ROW = 0   # green pixel whose horizontal neighbours are red
KIND_G_BLUE_ROW = 1  # green pixel whose horizontal neighbours are blue
KIND_RED = 2
KIND_BLUE = 3


def pixel_kinds(code) -> np.ndarray:
    """Per position of the 2x2 tile (raster order), the kind used by :func:`_bilinear_pixel`
    and :func:`_malvar_pixel`."""
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


@njit(cache=True, nogil=True, inline="always")
def rgb_of_kind(kind, c, cross, diag, along_row, along_col):
    """(R, G, B) of a pixel of ``kind`` from its own value ``c`` and a method's estimates: the
    other colours at a red or blue site (``cross``: green, ``diag``: the opposite colour) and
    at a green site (``along_row``: the colour of its row neighbours, ``along_col``: of its
    column neighbours). Every method computes all of them, so a row loop has no branches."""
    if kind == KIND_RED:
        return c, cross, diag
    if kind == KIND_BLUE:
        return diag, cross, c
    if kind == KIND_G_RED_ROW:
        return along_row, c, along_col
    return along_col, c, along_row
