"""Fully-convolutional inference on images of any size, tile by tile, without seams."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _axis_starts(n: int, tile: int, overlap: int) -> tuple:
    if n <= tile:
        return [0], n
    stride = tile - overlap
    starts = list(range(0, n - tile, stride)) + [n - tile]
    return starts, tile


def _ramp(length: int, before: bool, after: bool, overlap: int, dtype, device) -> torch.Tensor:
    """1-D blending weights of a tile: 0 in the outer quarter of the overlap next to a neighbouring
    tile, a linear ramp over the middle half, 1 inside."""
    w = torch.ones(length, dtype=dtype, device=device)
    if overlap <= 0:
        return w
    t = torch.arange(length, dtype=dtype, device=device) + 0.5
    margin, ramp = overlap / 4.0, overlap / 2.0
    if before:
        w = torch.minimum(w, ((t - margin) / ramp).clamp(0, 1))
    if after:
        w = torch.minimum(w, ((length - t - margin) / ramp).clamp(0, 1))
    return w


def tiled_apply(fn, x: torch.Tensor, *, tile: int = 128, overlap: int = 16, align: int = 1, scale: int = 1):
    """Apply a fully-convolutional ``fn`` to ``x`` (``N x C x h x w``) tile by tile.

    Tiles of ``tile`` input pixels overlap by ``overlap``; each output pixel is a weighted mean of
    the tiles covering it, with weights that are zero within ``overlap / 4`` of a tile edge shared
    with another tile and ramp to one over the next ``overlap / 2``. So when ``fn``'s receptive
    field reaches less than ``overlap / 4`` pixels, the result equals ``fn(x)`` (to rounding).
    ``align``: tile origins are multiples of it (a U-Net's ``2**depth``, so its pooling grid is the
    same in every tile); ``x`` is replicate-padded at the bottom/right to a multiple of it, as the
    U-Net itself does. ``scale``: output size / input size (2 for packed raw -> RGB).

    Examples
    --------
    >>> x = torch.rand(1, 2, 40, 30)
    >>> torch.allclose(tiled_apply(lambda t: 2 * t, x, tile=16, overlap=8), 2 * x)
    True
    """
    n, c, h, w = x.shape
    align = max(int(align), 1)
    tile = max(int(tile) // align * align, align)
    overlap = min(int(math.ceil(int(overlap) / align)) * align, tile - align)
    ph, pw = (-h) % align, (-w) % align
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    H, W = x.shape[-2:]
    ys, th = _axis_starts(H, tile, overlap)
    xs, tw = _axis_starts(W, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return fn(x)[..., :h * scale, :w * scale]
    out = wsum = None
    dtype = torch.promote_types(x.dtype, torch.float32)     # float32, or float64 for a float64 input
    for y0 in ys:
        wy = _ramp(th * scale, y0 > 0, y0 + th < H, overlap * scale, dtype, x.device)
        for x0 in xs:
            wx = _ramp(tw * scale, x0 > 0, x0 + tw < W, overlap * scale, dtype, x.device)
            o = fn(x[..., y0:y0 + th, x0:x0 + tw]).to(dtype)
            if out is None:
                out = torch.zeros((n, o.shape[1], H * scale, W * scale), dtype=dtype, device=x.device)
                wsum = torch.zeros((H * scale, W * scale), dtype=dtype, device=x.device)
            weight = wy[:, None] * wx[None, :]
            ys_, xs_ = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            out[..., ys_, xs_] += o * weight
            wsum[ys_, xs_] += weight
    return (out / wsum)[..., :h * scale, :w * scale]


__all__ = ["tiled_apply"]
