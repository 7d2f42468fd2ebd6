"""GBTF (gradient-based threshold-free) demosaicing in torch: the twin of
:mod:`rawcv.isp.gbtf` (the public function is :func:`rawcv.torch.isp.demosaic.demosaic_gbtf`).

Every plane is computed over the whole extended mosaic (the Numba kernel computes each only
where a later step reads it); each value comes from the same float32 operations in the same
order, so the two agree bit for bit.
"""

from __future__ import annotations

import torch

from ...isp._cfa import KIND_BLUE, KIND_G_RED_ROW, KIND_RED, pixel_kinds
from ...isp.gbtf import (DIRECTIONAL_TAPS, GBTF_MARGIN, GRADIENT_EPS, OPPOSITE_NEAR, OPPOSITE_SCALE,
                                  reflect_indices)
from ...meta import cfa_code


def _shifted(plane: torch.Tensor, margin: int):
    """``at(dy, dx)``: ``plane`` shifted by (dy, dx) over the region ``margin`` in from its edges."""
    hp, wp = plane.shape[-2:]

    def at(dy: int, dx: int) -> torch.Tensor:
        return plane[..., margin + dy:hp - margin + dy, margin + dx:wp - margin + dx]
    return at


def _embed(region: torch.Tensor, margin: int) -> torch.Tensor:
    """A region computed ``margin`` in from the edges, back at full size (zeros around it)."""
    return torch.nn.functional.pad(region, (margin,) * 4)


def _inverse_square(s: torch.Tensor) -> torch.Tensor:
    t = torch.clamp_min(s, float(GRADIENT_EPS))
    return torch.reciprocal(t * t)


def _weights(vsum: torch.Tensor, hsum: torch.Tensor, margin: int):
    """North, south, west and east weights over the region ``margin`` in (``_side_weights``)."""
    v, hz = _shifted(vsum, margin), _shifted(hsum, margin)
    n, s, w, e = v(-4, 0), v(0, 0), hz(0, -4), hz(0, 0)
    for k in range(1, 5):
        n = n + v(-4 + k, 0)
        s = s + v(k, 0)
        w = w + hz(0, -4 + k)
        e = e + hz(0, k)
    return _inverse_square(n), _inverse_square(s), _inverse_square(w), _inverse_square(e)


def _tile_plane(values, hp: int, wp: int, like: torch.Tensor) -> torch.Tensor:
    """An ``hp x wp`` plane repeating the 2 x 2 tile ``values`` (raster order) from the top-left."""
    tile = torch.tensor(values, dtype=like.dtype, device=like.device).reshape(2, 2)
    return tile.repeat((hp + 1) // 2, (wp + 1) // 2)[:hp, :wp]


def gbtf_one(x: torch.Tensor, cfa: str) -> torch.Tensor:
    """GBTF of an ``N x 1 x H x W`` float batch of one pattern ``cfa``: ``N x 3 x H x W``."""
    n, _, h, w = x.shape
    m = GBTF_MARGIN
    rows = torch.as_tensor(reflect_indices(h, m), device=x.device)
    cols = torch.as_tensor(reflect_indices(w, m), device=x.device)
    p = x[:, :, rows][:, :, :, cols]
    hp, wp = p.shape[-2:]
    kinds = [int(k) for k in pixel_kinds(cfa_code(cfa))]
    kind = _tile_plane(kinds, hp, wp, torch.empty(0, dtype=torch.int64, device=x.device))
    sign = _tile_plane([1.0 if k < KIND_RED else -1.0 for k in kinds], hp, wp, p)

    # Hamilton-Adams differences (_hamilton_adams_differences), 2 in
    at = _shifted(p, 2)
    c = at(0, 0)
    est_h = (at(0, -1) + at(0, 1)) * 0.5 + ((c * 2.0 - at(0, -2)) - at(0, 2)) * 0.25
    est_v = (at(-1, 0) + at(1, 0)) * 0.5 + ((c * 2.0 - at(-2, 0)) - at(2, 0)) * 0.25
    s = _shifted(sign, 2)(0, 0)
    dh, dv = _embed((c - est_h) * s, 2), _embed((c - est_v) * s, 2)

    # gradient sums (_gradient_sums), 4 in (the Numba kernel's valid regions are wider; unread here)
    v, hz = _shifted(dv, 4), _shifted(dh, 4)
    vsum = (v(-1, -2) - v(1, -2)).abs()
    hsum = (hz(-2, -1) - hz(-2, 1)).abs()
    for k in range(-1, 3):
        vsum = vsum + (v(-1, k) - v(1, k)).abs()
        hsum = hsum + (hz(k, -1) - hz(k, 1)).abs()
    vsum, hsum = _embed(vsum, 4), _embed(hsum, 4)

    # green difference (_green_difference), 8 in
    f0, f1, f2, f3 = (float(t) for t in DIRECTIONAL_TAPS)
    wn, ws, ww, we = _weights(vsum, hsum, 8)
    v, hz = _shifted(dv, 8), _shifted(dh, 8)
    centre_v, centre_h = v(0, 0) * f0, hz(0, 0) * f0
    north = ((centre_v + v(-1, 0) * f1) + v(-2, 0) * f2) + v(-3, 0) * f3
    south = ((centre_v + v(1, 0) * f1) + v(2, 0) * f2) + v(3, 0) * f3
    west = ((centre_h + hz(0, -1) * f1) + hz(0, -2) * f2) + hz(0, -3) * f3
    east = ((centre_h + hz(0, 1) * f1) + hz(0, 2) * f2) + hz(0, 3) * f3
    delta = _embed((((wn * north + ws * south) + ww * west) + we * east) / (((wn + ws) + ww) + we), 8)

    # opposite colour's difference (_opposite_difference), 10 in
    d = _shifted(delta, 10)
    near = ((d(-1, -1) + d(-1, 1)) + d(1, -1)) + d(1, 1)
    far = (((d(-3, -1) + d(-3, 1)) + (d(-1, -3) + d(-1, 3))) + ((d(1, -3) + d(1, 3)) + (d(3, -1) + d(3, 1))))
    opposite = _embed((near * float(OPPOSITE_NEAR) - far) * float(OPPOSITE_SCALE), 10)

    # output (_gbtf_output), the margin in
    wn, ws, ww, we = _weights(vsum, hsum, m)
    d, o = _shifted(delta, m), _shifted(opposite, m)
    c, k = _shifted(p, m)(0, 0), _shifted(kind, m)(0, 0)
    total = ((wn + ws) + ww) + we
    d_row = (((wn * o(-1, 0) + ws * o(1, 0)) + ww * d(0, -1)) + we * d(0, 1)) / total
    d_col = (((wn * d(-1, 0) + ws * d(1, 0)) + ww * o(0, -1)) + we * o(0, 1)) / total
    g_rb = c + d(0, 0)
    other_rb = g_rb - o(0, 0)
    row_colour, col_colour = c - d_row, c - d_col
    green = k < KIND_RED
    g = torch.where(green, c, g_rb)
    # red: its own sample at red, the opposite estimate at blue, the row or column colour at green
    r = torch.where(k == KIND_RED, c, torch.where(k == KIND_BLUE, other_rb,
                                                  torch.where(k == KIND_G_RED_ROW, row_colour, col_colour)))
    b = torch.where(k == KIND_BLUE, c, torch.where(k == KIND_RED, other_rb,
                                                   torch.where(k == KIND_G_RED_ROW, col_colour, row_colour)))
    return torch.cat([r, g, b], dim=1)
