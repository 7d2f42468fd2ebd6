"""White balance and the gray-world / white-world estimators in torch."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...isp.white_balance import ClippedWhiteBalance as ClippedWhiteBalanceStage
from ...isp.white_balance import WhiteBalance as WhiteBalanceStage
from ...meta import bayer_positions_of
from ..tensors import _batched, cfa_codes, cfa_list
from ._common import _check_channels, _float, _per_position, _rows, stage_default

PERCENTILE = stage_default("white_balance", "percentile")


def white_balance(image: torch.Tensor, gains, *, cfa=None) -> torch.Tensor:
    """Multiply each colour by its gain, on a mosaic (``cfa`` given) or an RGB image.

    Twin of :func:`rawcv.isp.white_balance`.

    Parameters
    ----------
    image : Tensor
        ``N x 1 x H x W`` mosaic or ``N x 3 x H x W`` RGB.
    gains : sequence of 3 float or Tensor (3 or N x 3)
        R, G, B multipliers (per sample if ``N x 3``).
    cfa : str or sequence of str
        Required for a mosaic.

    Examples
    --------
    >>> m = torch.full((2, 2), 0.5)
    >>> white_balance(m, (2.0, 1.0, 1.5), cfa="RGGB").tolist()
    [[1.0, 0.5], [0.5, 0.75]]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "white_balance")
    n = x.shape[0]
    if not isinstance(gains, torch.Tensor):
        g_np = np.asarray(gains, dtype=np.float64)
        if not np.all(np.isfinite(g_np)) or np.any(g_np <= 0):
            raise ValueError(f"white-balance gains must be positive finite numbers, got {gains!r}")
    g = _rows(gains, n, 3, "gains", x.device, dtype=x.dtype)
    if x.shape[1] == 1:
        g4 = torch.gather(g, 1, cfa_codes(cfa, n, x.device))
        return restore(_per_position(x, lambda a, gg: a * gg, g4))
    return restore(x * g.reshape(n, 3, 1, 1))


def _gains_from_stats(stats: torch.Tensor, what: str, dtype) -> torch.Tensor:
    bad = ~torch.isfinite(stats) | (stats <= 0)
    if bool(bad.any()):
        raise ValueError(f"cannot estimate white balance: channel {what} {stats.tolist()} must be positive")
    ones = torch.ones_like(stats[:, 1])
    return torch.stack([stats[:, 1] / stats[:, 0], ones, stats[:, 1] / stats[:, 2]], dim=1).to(dtype)


def gains_gray_world(image: torch.Tensor, *, cfa=None, saturation: float = 1.0) -> torch.Tensor:
    """Gray-world gains ``(G/R, 1, G/B)`` from channel means, per sample; returns ``N x 3``.

    Values at or above ``saturation`` are left out of the means (on RGB, pixels with any
    channel at or above it). Twin of :func:`rawcv.isp.gains_gray_world`; means accumulate in
    float64.

    Examples
    --------
    >>> m = torch.tensor([[0.2, 0.4], [0.4, 0.1]]).repeat(4, 4)
    >>> gains_gray_world(m, cfa="RGGB").tolist()
    [[2.0, 1.0, 4.0]]
    """
    x, _ = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "gains_gray_world")
    n = x.shape[0]
    if x.shape[1] == 1:
        sums, counts = [], []
        for dy in range(2):
            for dx in range(2):
                plane = x[:, 0, dy::2, dx::2]
                keep = plane < saturation
                sums.append(torch.where(keep, plane, 0).to(torch.float64).sum(dim=(-2, -1)))
                counts.append(keep.sum(dim=(-2, -1)).to(torch.float64))
        onehot = F.one_hot(cfa_codes(cfa, n, x.device), 3).to(torch.float64)      # n x 4 x 3
        sums = torch.einsum("np,npc->nc", torch.stack(sums, 1), onehot)
        counts = torch.einsum("np,npc->nc", torch.stack(counts, 1), onehot)
    else:
        keep = (x < saturation).all(dim=1, keepdim=True)
        sums = torch.where(keep, x, 0).to(torch.float64).sum(dim=(-2, -1))
        counts = keep.sum(dim=(-2, -1)).to(torch.float64).expand(n, 3)
        sums = torch.where(counts > 0, sums, 0)
    _require_unclipped(counts, saturation)
    return _gains_from_stats(sums / counts, "means", x.dtype)


def _require_unclipped(counts: torch.Tensor, saturation: float) -> None:
    """``counts``: ``N x 3`` unclipped values per sample and channel; none is an error (as in Numba)."""
    empty = (counts == 0).nonzero()
    if len(empty):
        channel = "RGB"[int(empty[0, 1])]
        raise ValueError(f"cannot estimate white balance: every {channel} value is clipped (at or above "
                         f"{saturation:g}), so the image holds no colour of the light")


def _percentile_rows(values: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per row, NumPy's default ('linear') percentile, with NumPy's interpolation arithmetic."""
    m = values.shape[1]
    virtual = (m - 1) * (float(percentile) / 100.0)
    lo = int(math.floor(virtual))
    if virtual >= m - 1:
        return values.max(dim=1).values
    a = torch.kthvalue(values, lo + 1, dim=1).values
    b = torch.kthvalue(values, lo + 2, dim=1).values
    t = virtual - lo
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def gains_white_world(image: torch.Tensor, *, cfa=None, percentile: float = PERCENTILE,
                      saturation: float = 1.0) -> torch.Tensor:
    """White-world gains from each channel's ``percentile`` (not its single maximum); ``N x 3``.

    The percentile is NumPy's default linear interpolation (``torch.quantile``'s too), computed
    with ``kthvalue`` so that there is no limit on the image size. Values at or above
    ``saturation`` are left out (on RGB, pixels with any channel at or above it). Twin of
    :func:`rawcv.isp.gains_white_world`.

    Examples
    --------
    >>> m = torch.tensor([[0.2, 0.4], [0.4, 0.1]]).repeat(4, 4)
    >>> gains_white_world(m, cfa="RGGB").tolist()
    [[2.0, 1.0, 4.0]]
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    x, _ = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "gains_white_world")
    # the unclipped values differ in number per sample and channel: each is taken on its own
    patterns = cfa_list(cfa, x.shape[0]) if x.shape[1] == 1 else None
    kept = []
    for i, sample in enumerate(x):
        if patterns is None:
            pixels = sample.reshape(3, -1)[:, (sample < saturation).all(dim=0).reshape(-1)]
            kept.append(list(pixels))
        else:
            values = [torch.cat([sample[0, dy::2, dx::2].reshape(-1) for dy, dx in bayer_positions_of(patterns[i], c)])
                      for c in range(3)]
            kept.append([v[v < saturation] for v in values])
    _require_unclipped(torch.tensor([[len(v) for v in row] for row in kept]), saturation)
    highs = torch.stack([torch.stack([_percentile_rows(v[None], percentile)[0] for v in row]) for row in kept])
    return _gains_from_stats(highs.to(torch.float64), f"{percentile:g}th percentiles", x.dtype)


class WhiteBalance(nn.Module):
    """Module form of :func:`white_balance` (``cfa`` at call time overrides the stored one)."""

    def __init__(self, gains, cfa=None):
        super().__init__()
        self.gains = gains
        self.cfa = cfa

    def forward(self, image, cfa=None):
        return white_balance(image, self.gains, cfa=cfa if cfa is not None else self.cfa)


class GainsGrayWorld(nn.Module):
    """Module form of :func:`gains_gray_world` (returns ``N x 3`` gains)."""

    def __init__(self, cfa=None, saturation: float = 1.0):
        super().__init__()
        self.cfa = cfa
        self.saturation = saturation

    def forward(self, image, cfa=None):
        return gains_gray_world(image, cfa=cfa if cfa is not None else self.cfa, saturation=self.saturation)


class GainsWhiteWorld(nn.Module):
    """Module form of :func:`gains_white_world` (returns ``N x 3`` gains)."""

    def __init__(self, cfa=None, percentile: float = PERCENTILE):
        super().__init__()
        self.cfa = cfa
        self.percentile = percentile

    def forward(self, image, cfa=None):
        return gains_white_world(image, cfa=cfa if cfa is not None else self.cfa, percentile=self.percentile)


@WhiteBalanceStage.torch_twin
def _white_balance_stage(stage, x, ctx):
    cfa = ctx.cfas if x.shape[1] == 1 else None
    if stage.method == "gray_world":
        gains = gains_gray_world(x, cfa=cfa)
    elif stage.method == "white_world":
        gains = gains_white_world(x, cfa=cfa, percentile=stage.percentile)
    else:
        gains = torch.as_tensor(np.stack([stage.gains_from_metadata(m) for m in ctx.metas]).astype(np.float64),
                                device=x.device)
    return white_balance(x, gains, cfa=cfa)


@ClippedWhiteBalanceStage.torch_twin
def _clipped_white_balance_stage(stage, x, ctx):
    return stage.highlights.torch(stage.white_balance.torch(x, ctx), ctx)

