"""Demosaicing (bilinear, Malvar-He-Cutler, GBTF) and mosaicking in torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...isp.demosaic import DEMOSAIC_MIN_SIDE, HALF_MIN_SIDE, MALVAR_MIN_SIDE, half_positions, pixel_kinds
from ...isp.gbtf import GBTF_MIN_SIDE
from ...isp.demosaic import Demosaic as DemosaicStage
from ...meta import cfa_code
from ..tensors import _batched, cfa_codes
from ._common import _check_channels, _float, _group_by_cfa
from .gbtf import gbtf_one


def _bilinear_position(at, kind: int):
    """(R, G, B) of the pixels of one tile position; ``at(oy, ox)`` gives their neighbours.

    Sums run in the Numba twin's order (``_bilinear_pixel``), so the two agree bit for bit.
    """
    c = at(0, 0)
    if kind >= 2:
        cross = (at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)) * 0.25
        diag = (at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)) * 0.25
        return (c, cross, diag) if kind == 2 else (diag, cross, c)
    hor = (at(0, -1) + at(0, 1)) * 0.5
    ver = (at(-1, 0) + at(1, 0)) * 0.5
    return (hor, c, ver) if kind == 0 else (ver, c, hor)


def _demosaic_one(x: torch.Tensor, cfa: str) -> torch.Tensor:
    n, _, h, w = x.shape
    kinds = pixel_kinds(cfa_code(cfa))
    if h % 2 == 0 and w % 2 == 0:
        # Even size: work on the four CFA planes, where every neighbour read is a shifted
        # contiguous window. Reflect-101 padding of the mosaic is edge replication of each plane
        # (mosaic row -1 mirrors to row 1: row 0 of the odd-row plane).
        hh, ww = h // 2, w // 2
        planes = F.pad(F.pixel_unshuffle(x, 2), (1, 1, 1, 1), mode="replicate")
        per_position = []
        for dy in range(2):
            for dx in range(2):
                def at(oy, ox, dy=dy, dx=dx):
                    ch = 2 * ((dy + oy) % 2) + (dx + ox) % 2
                    y0, x0 = 1 + (dy + oy) // 2, 1 + (dx + ox) // 2
                    return planes[:, ch:ch + 1, y0:y0 + hh, x0:x0 + ww]

                per_position.append(_bilinear_position(at, int(kinds[2 * dy + dx])))
        stacked = torch.cat([per_position[pos][c] for c in range(3) for pos in range(4)], dim=1)
        return F.pixel_shuffle(stacked, 2)
    return _by_position(x, kinds, 1, _bilinear_position)


def _by_position(x: torch.Tensor, kinds, radius: int, position) -> torch.Tensor:
    """RGB ``N x 3 x H x W`` from ``position(at, kind)``, the (R, G, B) of the pixels at one
    position of the 2 x 2 tile, where ``at(oy, ox)`` gives their neighbours at that offset
    (``|oy|, |ox| <= radius``) from the mosaic padded reflect-101, which keeps the CFA phase."""
    n, _, h, w = x.shape
    p = F.pad(x, (radius,) * 4, mode="reflect")
    out = x.new_empty((n, 3, h, w))
    for dy in range(2):
        for dx in range(2):
            ny, nx = (h - dy + 1) // 2, (w - dx + 1) // 2

            def at(oy, ox, dy=dy, dx=dx, ny=ny, nx=nx):
                y0, x0 = radius + dy + oy, radius + dx + ox
                return p[:, :, y0:y0 + 2 * ny - 1:2, x0:x0 + 2 * nx - 1:2]

            out[:, :, dy::2, dx::2] = torch.cat(position(at, int(kinds[2 * dy + dx])), dim=1)
    return out


def _malvar_position(at, kind: int):
    """(R, G, B) of the pixels of one tile position by Malvar-He-Cutler's 5 x 5 filters;
    ``at(oy, ox)`` gives their neighbours. Sums run in the Numba twin's order (``_malvar_pixel``)."""
    c = at(0, 0)
    n1 = at(-1, 0) + at(1, 0)
    w1 = at(0, -1) + at(0, 1)
    n2 = at(-2, 0) + at(2, 0)
    w2 = at(0, -2) + at(0, 2)
    d1 = at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)
    if kind >= 2:       # R or B: G from the cross, the other colour from the diagonals
        cross = (c * 4 + (n1 + w1) * 2 - (n2 + w2)) * 0.125
        diag = (c * 6 + d1 * 2 - (n2 + w2) * 1.5) * 0.125
        return (c, cross, diag) if kind == 2 else (diag, cross, c)
    along_row = (c * 5 + w1 * 4 - d1 - w2 + n2 * 0.5) * 0.125
    along_col = (c * 5 + n1 * 4 - d1 - n2 + w2 * 0.5) * 0.125
    return (along_row, c, along_col) if kind == 0 else (along_col, c, along_row)


def _malvar_one(x: torch.Tensor, cfa: str) -> torch.Tensor:
    return _by_position(x, pixel_kinds(cfa_code(cfa)), 2, _malvar_position)


def _demosaic_batch(mosaic, cfa, what: str, min_side: int, one) -> torch.Tensor:
    """Check a mosaic batch and run ``one(sub_batch, pattern)`` per CFA pattern in it."""
    x, restore = _batched(_float(mosaic), "mosaic")
    _check_channels(x, (1,), what)
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"mosaic must be at least {min_side} x {min_side} to demosaic, got {tuple(x.shape[-2:])}")
    return restore(_group_by_cfa(x, cfa, one))


def demosaic_bilinear(mosaic: torch.Tensor, *, cfa) -> torch.Tensor:
    """Bilinear demosaicing: mosaic ``N x 1 x H x W`` -> RGB ``N x 3 x H x W``.

    Each missing colour is the mean of its 2 or 4 nearest same-colour neighbours, borders
    mirrored (reflect-101, ``F.pad(mode="reflect")``; for even sizes the work runs on the four
    CFA planes). Twin of :func:`rawcv.isp.demosaic_bilinear`, bit for bit.

    Parameters
    ----------
    mosaic : Tensor
        ``N x 1 x H x W`` (or ``1 x H x W`` / ``H x W``), H and W >= 3.
    cfa : str or sequence of str
        The pattern, or one per sample.

    Examples
    --------
    >>> out = demosaic_bilinear(torch.full((4, 6), 0.5), cfa="GBRG")
    >>> out.shape, bool((out == 0.5).all())
    (torch.Size([3, 4, 6]), True)
    """
    return _demosaic_batch(mosaic, cfa, "demosaic_bilinear", DEMOSAIC_MIN_SIDE, _demosaic_one)


def demosaic_malvar(mosaic: torch.Tensor, *, cfa) -> torch.Tensor:
    """Malvar-He-Cutler demosaicing: mosaic ``N x 1 x H x W`` -> RGB ``N x 3 x H x W``.

    Bilinear interpolation corrected by the Laplacian of the sampled colour, with the paper's
    fixed 5 x 5 filters (Malvar, He, Cutler, ICASSP 2004); linear, so differentiable everywhere
    and unclipped. Borders mirror (reflect-101, ``F.pad(mode="reflect")``). Twin of
    :func:`rawcv.isp.demosaic.demosaic_malvar`, operation for operation.

    Parameters
    ----------
    mosaic : Tensor
        ``N x 1 x H x W`` (or ``1 x H x W`` / ``H x W``), H and W >= 3.
    cfa : str or sequence of str
        The pattern, or one per sample.

    Returns
    -------
    Tensor
        ``N x 3 x H x W`` (the input's rank, with 3 channels), float32 or the input's float dtype.

    Examples
    --------
    >>> ramp = (torch.arange(6.0)[:, None] + 2 * torch.arange(8.0)).expand(2, 1, 6, 8)
    >>> rgb = demosaic_malvar(ramp, cfa=["RGGB", "GBRG"])   # a grey ramp: every channel is the ramp
    >>> bool((rgb[..., 2:-2, 2:-2] == ramp[..., 2:-2, 2:-2]).all())
    True
    """
    return _demosaic_batch(mosaic, cfa, "demosaic_malvar", MALVAR_MIN_SIDE, _malvar_one)


def demosaic_gbtf(mosaic: torch.Tensor, *, cfa) -> torch.Tensor:
    """GBTF (edge-directed) demosaicing: mosaic ``N x 1 x H x W`` -> RGB ``N x 3 x H x W``.

    Colour differences blended from four directions by inverse-square gradient weights
    (:mod:`rawcv.isp.gbtf`). Twin of :func:`rawcv.isp.demosaic.demosaic_gbtf`, bit for
    bit in float32. Differentiable almost everywhere (not where a gradient sum sits at its floor
    or a difference at 0 under an absolute value).

    Parameters
    ----------
    mosaic : Tensor
        ``N x 1 x H x W`` (or ``1 x H x W`` / ``H x W``), H and W >= 3.
    cfa : str or sequence of str
        The pattern, or one per sample.

    Returns
    -------
    Tensor
        ``N x 3 x H x W`` (the input's rank, with 3 channels), float32 or the input's float dtype.

    Examples
    --------
    >>> grey = (torch.arange(32.0)[:, None] + torch.arange(36.0)) / 64
    >>> rgb = demosaic_gbtf(grey, cfa="GRBG")   # a grey ramp stays grey where the window
    >>> bool((rgb[:, 12:-12, 12:-12] == grey[12:-12, 12:-12]).all())   # ends inside the image
    True
    """
    return _demosaic_batch(mosaic, cfa, "demosaic_gbtf", GBTF_MIN_SIDE, gbtf_one)


def _half_one(x: torch.Tensor, cfa: str) -> torch.Tensor:
    n, _, h, w = x.shape
    r, g1, g2, b = (int(k) for k in half_positions(cfa_code(cfa)))
    tiles = F.pixel_unshuffle(x[:, :, :h - h % 2, :w - w % 2], 2)      # channel k: tile position k
    return torch.cat([tiles[:, r:r + 1], (tiles[:, g1:g1 + 1] + tiles[:, g2:g2 + 1]) * 0.5, tiles[:, b:b + 1]], dim=1)


def demosaic_half(mosaic: torch.Tensor, *, cfa) -> torch.Tensor:
    """Half-size: each 2 x 2 CFA tile becomes one RGB pixel, ``N x 1 x H x W`` -> ``N x 3 x H/2 x W/2``.

    Red and blue are the tile's samples, green the mean of its two; an odd last row or column is
    left out. Twin of :func:`rawcv.isp.demosaic.demosaic_half`, bit for bit.

    Examples
    --------
    >>> demosaic_half(torch.tensor([[1.0, 2.0], [4.0, 8.0]]), cfa="RGGB").flatten().tolist()
    [1.0, 3.0, 8.0]
    """
    return _demosaic_batch(mosaic, cfa, "demosaic_half", HALF_MIN_SIDE, _half_one)


def mosaic_rgb(image: torch.Tensor, *, cfa) -> torch.Tensor:
    """Sample RGB ``N x 3 x H x W`` through a Bayer CFA: ``N x 1 x H x W``. Twin of :func:`rawcv.isp.mosaic_rgb`.

    Examples
    --------
    >>> rgb = torch.zeros(3, 2, 2); rgb[0] = 1; rgb[2] = 3
    >>> mosaic_rgb(rgb, cfa="RGGB").tolist()
    [[[1.0, 0.0], [0.0, 3.0]]]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (3,), "mosaic_rgb")
    n, _, h, w = x.shape
    codes = cfa_codes(cfa, n, x.device)
    out = x.new_empty((n, 1, h, w))
    for dy in range(2):
        for dx in range(2):
            idx = codes[:, 2 * dy + dx].reshape(n, 1, 1, 1).expand(n, 1, (h - dy + 1) // 2, (w - dx + 1) // 2)
            out[:, :, dy::2, dx::2] = torch.gather(x[:, :, dy::2, dx::2], 1, idx)
    return restore(out)


class _DemosaicModule(nn.Module):
    """Module form of a demosaic function (``function``), with a default pattern ``cfa`` that a
    call may override."""

    function = None

    def __init__(self, cfa=None):
        super().__init__()
        self.cfa = cfa

    def forward(self, mosaic, cfa=None):
        return type(self).function(mosaic, cfa=cfa if cfa is not None else self.cfa)


class DemosaicBilinear(_DemosaicModule):
    """Module form of :func:`demosaic_bilinear`.

    Examples
    --------
    >>> DemosaicBilinear("RGGB")(torch.ones(1, 1, 4, 4)).shape
    torch.Size([1, 3, 4, 4])
    """

    function = staticmethod(demosaic_bilinear)


class DemosaicMalvar(_DemosaicModule):
    """Module form of :func:`demosaic_malvar`.

    Examples
    --------
    >>> DemosaicMalvar("GRBG")(torch.ones(2, 1, 5, 7)).shape
    torch.Size([2, 3, 5, 7])
    """

    function = staticmethod(demosaic_malvar)


class DemosaicHalf(_DemosaicModule):
    """Module form of :func:`demosaic_half`.

    Examples
    --------
    >>> DemosaicHalf("BGGR")(torch.ones(2, 1, 6, 7)).shape
    torch.Size([2, 3, 3, 3])
    """

    function = staticmethod(demosaic_half)


class DemosaicGBTF(_DemosaicModule):
    """Module form of :func:`demosaic_gbtf`.

    Examples
    --------
    >>> DemosaicGBTF("BGGR")(torch.ones(2, 1, 6, 7)).shape
    torch.Size([2, 3, 6, 7])
    """

    function = staticmethod(demosaic_gbtf)


# the twin of each method the stage declares (rawcv.isp.demosaic.DEMOSAIC_METHODS)
DEMOSAIC_TWINS = {"bilinear": demosaic_bilinear, "malvar": demosaic_malvar, "gbtf": demosaic_gbtf,
                  "half": demosaic_half}


@DemosaicStage.torch_twin
def _demosaic_stage(stage, x, ctx):
    # a linear raw is already RGB
    return DEMOSAIC_TWINS[stage.method](x, cfa=ctx.cfas) if x.shape[1] == 1 else x
