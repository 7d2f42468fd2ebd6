"""Gradient-based threshold-free (GBTF) demosaicing: an edge-directed method.

Pekkucuksen and Altunbasak, "Gradient based threshold free color filter array interpolation",
ICIP 2010. Green is interpolated as a colour difference (G - R or G - B), which varies far more
slowly than either colour: Hamilton-Adams estimates of that difference along the rows and along
the columns, then at each red or blue site a blend of the differences towards the north,
south, west and east, each weighted by the inverse square of how much the difference changes
in a 5 x 5 window on that side. No threshold decides a direction, so edges at any angle blend
smoothly. Red and blue follow from the colour differences: at each other's sites through the
paper's 7 x 7 diagonal filter, at green sites from the four neighbours with the same
directional weights.

One change from the paper: the directional estimate averages the differences with a one-sided
Gaussian (sigma 1 pixel, taps 0 to 3) instead of a flat 5-tap mean, the decaying filter of the
authors' later multiscale-gradients method; it is the larger part of the gain over Menon 2007
on the benchmark photographs (docs/DEMOSAIC_RESULTS.md).

Borders: the mosaic is extended by :data:`GBTF_MARGIN` pixels by reflection (reflect-101,
repeated for small images, which keeps the CFA phase), the method runs on the extended mosaic
and the result is cropped. The torch twin (:func:`rawcv.torch.isp.demosaic.demosaic_gbtf`) runs the same
float32 operations in the same order, so the two agree bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._cfa import KIND_BLUE, KIND_RED, rgb_of_kind

# the widest reach of the method: the output needs the differences 1 pixel out, they need the
# opposite-colour estimate 3 pixels out, which needs the green difference at 7 (5 x 5 gradient
# windows 4 pixels off-centre, gradients 1 more, Hamilton-Adams 2 more); even, to keep the phase
GBTF_MARGIN = 12
GBTF_MIN_SIDE = 3

# one-sided Gaussian, sigma 1 pixel, over distances 0..3 from the pixel, normalised
_GAUSS = np.exp(-0.5 * np.arange(4.0) ** 2)
DIRECTIONAL_TAPS = tuple(np.float32(t) for t in _GAUSS / _GAUSS.sum())
# a window whose difference never changes (a flat area) gets weight 1 / EPS^2 on every side
GRADIENT_EPS = np.float32(1e-10)
# 7 x 7 filter for the opposite colour's difference: weight 10 on the 4 diagonal neighbours,
# -1 on the 8 sites (1, 3) away, over 32
OPPOSITE_NEAR = np.float32(10.0)
OPPOSITE_SCALE = np.float32(1.0 / 32.0)


def reflect_indices(n: int, margin: int) -> np.ndarray:
    """Indices ``-margin .. n + margin - 1`` folded into ``0 .. n - 1`` by repeated reflect-101
    (period ``2 (n - 1)``), which keeps the parity of every index and so the CFA phase.

    >>> reflect_indices(3, 4).tolist()
    [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]
    """
    period = 2 * (n - 1)
    i = np.abs(np.arange(-margin, n + margin)) % period
    return np.where(i >= n, period - i, i)


# Tiles of the output: each is computed from its own extended window (the tile plus the margin
# on every side), so the nine working planes of a tile stay in cache and are reused tile after
# tile; even sizes keep the CFA phase of every tile the image's.
TILE_ROWS = 128
TILE_COLS = 512


@njit(cache=True, nogil=True)
def _extend_tile(src, rows, cols, y0, x0, n, nw, p):
    """The window of the extended mosaic whose top-left is (y0, x0), ``n x nw``, as float32
    (exact for 8- and 16-bit integers); ``rows``/``cols`` map extended to source indices."""
    for y in range(n):
        sy = rows[y0 + y]
        for x in range(nw):
            p[y, x] = np.float32(src[sy, cols[x0 + x]])


@njit(cache=True, nogil=True)
def _hamilton_adams_differences(p, n, nw, green_sign, dh, dv):
    """G minus the row's (``dh``) and the column's (``dv``) other colour at every pixel of the
    ``n x nw`` window, from Hamilton-Adams estimates of the missing one; ``green_sign`` is +1 at
    green sites, -1 else. Valid 2 pixels in from the window's edges."""
    half, quarter, two = np.float32(0.5), np.float32(0.25), np.float32(2.0)
    for y in range(2, n - 2):
        s0, s1 = green_sign[2 * (y & 1)], green_sign[2 * (y & 1) + 1]
        for x in range(2, nw - 2):
            c = p[y, x]
            s = s0 if x & 1 == 0 else s1
            est_h = (p[y, x - 1] + p[y, x + 1]) * half + ((c * two - p[y, x - 2]) - p[y, x + 2]) * quarter
            est_v = (p[y - 1, x] + p[y + 1, x]) * half + ((c * two - p[y - 2, x]) - p[y + 2, x]) * quarter
            dh[y, x] = (c - est_h) * s
            dv[y, x] = (c - est_v) * s


@njit(cache=True, nogil=True)
def _gradient_sums(dh, dv, n, nw, vsum, hsum):
    """``vsum``: the vertical gradient of ``dv`` (``|dv[y - 1] - dv[y + 1]|``) summed over the 5
    columns x - 2 .. x + 2; ``hsum``: the horizontal gradient of ``dh`` over the 5 rows
    y - 2 .. y + 2. Together they give each 5 x 5 window sum as 5 terms."""
    for y in range(3, n - 3):
        for x in range(4, nw - 4):
            acc = abs(dv[y - 1, x - 2] - dv[y + 1, x - 2])
            for k in range(-1, 3):
                acc += abs(dv[y - 1, x + k] - dv[y + 1, x + k])
            vsum[y, x] = acc
    for y in range(4, n - 4):
        for x in range(3, nw - 3):
            acc = abs(dh[y - 2, x - 1] - dh[y - 2, x + 1])
            for k in range(-1, 3):
                acc += abs(dh[y + k, x - 1] - dh[y + k, x + 1])
            hsum[y, x] = acc


@njit(cache=True, nogil=True, inline="always")
def _inverse_square(s):
    t = max(s, GRADIENT_EPS)
    return np.float32(1.0) / (t * t)


@njit(cache=True, nogil=True)
def _side_weights(vsum, hsum, n, nw, wv, wh):
    """The inverse square of each 5 x 5 window's gradient sum, by the window's far corner:
    ``wv[y, x]`` over the rows y - 4 .. y (the north window of (y, x), the south window of
    (y - 4, x)), ``wh[y, x]`` over the columns x - 4 .. x (west of (y, x), east of (y, x - 4))."""
    for y in range(7, n - 3):
        for x in range(4, nw - 4):
            acc = vsum[y - 4, x]
            for k in range(-3, 1):
                acc += vsum[y + k, x]
            wv[y, x] = _inverse_square(acc)
    for y in range(4, n - 4):
        for x in range(7, nw - 3):
            acc = hsum[y, x - 4]
            for k in range(-3, 1):
                acc += hsum[y, x + k]
            wh[y, x] = _inverse_square(acc)


@njit(cache=True, nogil=True)
def _green_difference(dh, dv, wv, wh, n, nw, rb_column, delta):
    """G minus the sampled colour at every red and blue site (``rb_column[y & 1]``: the parity
    of their columns in row y): the directional estimates blended by the weights of the
    windows on each side (:func:`_side_weights`). Valid 7 pixels in from the window's edges."""
    f0, f1, f2, f3 = DIRECTIONAL_TAPS
    for y in range(7, n - 7):
        for x in range(7 + (rb_column[y & 1] + 1) % 2, nw - 7, 2):
            wn, ws, ww, we = wv[y, x], wv[y + 4, x], wh[y, x], wh[y, x + 4]
            centre_v, centre_h = f0 * dv[y, x], f0 * dh[y, x]
            north = ((centre_v + f1 * dv[y - 1, x]) + f2 * dv[y - 2, x]) + f3 * dv[y - 3, x]
            south = ((centre_v + f1 * dv[y + 1, x]) + f2 * dv[y + 2, x]) + f3 * dv[y + 3, x]
            west = ((centre_h + f1 * dh[y, x - 1]) + f2 * dh[y, x - 2]) + f3 * dh[y, x - 3]
            east = ((centre_h + f1 * dh[y, x + 1]) + f2 * dh[y, x + 2]) + f3 * dh[y, x + 3]
            delta[y, x] = (((wn * north + ws * south) + ww * west) + we * east) / (((wn + ws) + ww) + we)


@njit(cache=True, nogil=True)
def _opposite_difference(delta, n, nw, rb_column, opposite):
    """At every red and blue site, G minus the other of the two, from ``delta`` at its sites:
    the 4 diagonal neighbours and the 8 sites one row and three columns (or three and one)
    away. Valid 10 pixels in from the window's edges."""
    for y in range(10, n - 10):
        for x in range(10 + rb_column[y & 1] % 2, nw - 10, 2):
            near = ((delta[y - 1, x - 1] + delta[y - 1, x + 1]) + delta[y + 1, x - 1]) + delta[y + 1, x + 1]
            far = (((delta[y - 3, x - 1] + delta[y - 3, x + 1]) + (delta[y - 1, x - 3] + delta[y - 1, x + 3]))
                   + ((delta[y + 1, x - 3] + delta[y + 1, x + 3]) + (delta[y + 3, x - 1] + delta[y + 3, x + 1])))
            opposite[y, x] = (near * OPPOSITE_NEAR - far) * OPPOSITE_SCALE


@njit(cache=True, nogil=True)
def _gbtf_output(p, delta, opposite, wv, wh, n, nw, kinds, y0, x0, out):
    """RGB of the window's pixels at least :data:`GBTF_MARGIN` in from its edges into ``out``
    (h, 3 w), the window's top-left being the output's (y0, x0) minus the margin: at red and
    blue sites green is the sample plus ``delta``, the opposite colour green minus
    ``opposite``; at green sites each colour is the sample minus its difference at the four
    neighbours, blended with the same directional weights."""
    m = GBTF_MARGIN
    for y in range(m, n - m):
        o = out[y0 + y - m]
        for parity in range(2):
            kind = kinds[2 * (y & 1) + parity]
            # each column parity on its own: one kind per loop, no branch inside it
            if kind >= KIND_RED:
                for x in range(m + parity, nw - m, 2):
                    c = p[y, x]
                    g = c + delta[y, x]
                    r, gg, b = rgb_of_kind(kind, c, g, g - opposite[y, x], c, c)
                    ox = 3 * (x0 + x - m)
                    o[ox] = r
                    o[ox + 1] = gg
                    o[ox + 2] = b
            else:
                for x in range(m + parity, nw - m, 2):
                    c = p[y, x]
                    wn, ws, ww, we = wv[y, x], wv[y + 4, x], wh[y, x], wh[y, x + 4]
                    total = ((wn + ws) + ww) + we
                    # the row neighbours sample the colour of the row: their delta; the column
                    # neighbours sample the other one, whose difference to the row colour is opposite
                    d_row = (((wn * opposite[y - 1, x] + ws * opposite[y + 1, x]) + ww * delta[y, x - 1])
                             + we * delta[y, x + 1]) / total
                    d_col = (((wn * delta[y - 1, x] + ws * delta[y + 1, x]) + ww * opposite[y, x - 1])
                             + we * opposite[y, x + 1]) / total
                    r, gg, b = rgb_of_kind(kind, c, c, c, c - d_row, c - d_col)
                    ox = 3 * (x0 + x - m)
                    o[ox] = r
                    o[ox + 1] = gg
                    o[ox + 2] = b


@njit(parallel=True, cache=True, nogil=True)
def _gbtf_tiles(src, rows, cols, kinds, workers, out):
    """GBTF of ``src`` into ``out`` (h, 3 w), tile by tile; ``rows``/``cols`` map the extended
    mosaic's indices to the source's. Each of ``workers`` parallel loops owns one set of working
    planes and takes every ``workers``-th tile."""
    h, w = src.shape
    m = GBTF_MARGIN
    tiles_y = (h + TILE_ROWS - 1) // TILE_ROWS
    tiles_x = (w + TILE_COLS - 1) // TILE_COLS
    green_sign = np.empty(4, dtype=np.float32)
    for i in range(4):
        green_sign[i] = np.float32(1) if kinds[i] < KIND_RED else np.float32(-1)
    # the column parity of the red and blue sites in even and odd rows
    rb_column = np.empty(2, dtype=np.int64)
    rb_column[0] = 1 if kinds[1] >= KIND_RED else 0
    rb_column[1] = 1 if kinds[3] >= KIND_RED else 0
    for worker in prange(workers):
        shape = (TILE_ROWS + 2 * m, TILE_COLS + 2 * m)
        p = np.empty(shape, dtype=np.float32)
        dh, dv = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
        vsum, hsum = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
        wv, wh = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
        delta, opposite = np.empty(shape, dtype=np.float32), np.empty(shape, dtype=np.float32)
        for t in range(worker, tiles_y * tiles_x, workers):
            y0 = (t // tiles_x) * TILE_ROWS
            x0 = (t % tiles_x) * TILE_COLS
            n = min(TILE_ROWS, h - y0) + 2 * m
            nw = min(TILE_COLS, w - x0) + 2 * m
            _extend_tile(src, rows, cols, y0, x0, n, nw, p)
            _hamilton_adams_differences(p, n, nw, green_sign, dh, dv)
            _gradient_sums(dh, dv, n, nw, vsum, hsum)
            _side_weights(vsum, hsum, n, nw, wv, wh)
            _green_difference(dh, dv, wv, wh, n, nw, rb_column, delta)
            _opposite_difference(delta, n, nw, rb_column, opposite)
            _gbtf_output(p, delta, opposite, wv, wh, n, nw, kinds, y0, x0, out)


def gbtf_kernel(src, kinds, out) -> None:
    """Run GBTF on the mosaic ``src`` (any real dtype, H x W >= 3 x 3) with the tile's pixel
    ``kinds`` into ``out`` (H x 3 W float32)."""
    h, w = src.shape
    workers = min(numba.get_num_threads(), -(-h // TILE_ROWS) * -(-w // TILE_COLS))
    _gbtf_tiles(src, reflect_indices(h, GBTF_MARGIN), reflect_indices(w, GBTF_MARGIN), kinds, workers, out)
