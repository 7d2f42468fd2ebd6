"""Exposure in torch: the twin of :mod:`rawcv.isp.exposure`, manual stops and the auto rule (per
sample: each image of a batch gets its own stops)."""

from __future__ import annotations

import torch
from torch import nn

from ...isp.exposure import Exposure as ExposureStage
from ...isp.exposure import check_auto_params, exposure_gain, interpolate, percentile_index, stops_for
from ...meta import bayer_positions_of
from ..tensors import _batched, cfa_list
from ._common import _check_channels, _float, stage_default

PERCENTILE = stage_default("exposure", "percentile")
LEVEL = stage_default("exposure", "level")
MAX_STOPS = stage_default("exposure", "max_stops")


def _gains(stops, n: int, dtype, device) -> torch.Tensor:
    """``n x 1 x 1 x 1`` gains from one Python number per sample: the NumPy twin's float32 gain for
    float32 data (so the products are the same bit for bit), ``2 ** stops`` in float64 otherwise."""
    values = [float(exposure_gain(s)) if dtype != torch.float64 else 2.0 ** float(s) for s in stops]
    if len(values) not in (1, n):
        raise ValueError(f"stops must be one value or one per sample ({n}), got {len(values)}")
    return torch.tensor(values, dtype=dtype, device=device).reshape(-1, 1, 1, 1)


def apply_exposure(image: torch.Tensor, *, stops) -> torch.Tensor:
    """Multiply by ``2 ** stops``: one float for the batch or a sequence of floats, one per sample
    (the Numba twin's float32 gain for float32 data), or a tensor of one value per sample, which
    keeps autograd.

    Examples
    --------
    >>> apply_exposure(torch.full((1, 1, 2, 2), 0.25), stops=1.0).flatten().tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> apply_exposure(torch.full((2, 1, 1, 2), 0.25), stops=[1.0, -1.0]).flatten().tolist()
    [0.5, 0.5, 0.125, 0.125]
    """
    x = _float(image)
    if isinstance(stops, torch.Tensor):
        gain = torch.exp2(stops.to(x.dtype)).reshape(-1, *([1] * (x.dim() - 1)))
        return x * gain
    if isinstance(stops, (list, tuple)):
        if x.dim() != 4:
            raise ValueError(f"per-sample stops need an N x C x H x W batch, got shape {tuple(x.shape)}")
        return x * _gains(stops, x.shape[0], x.dtype, x.device)
    gain = exposure_gain(stops)
    return x * (float(gain) if x.dtype != torch.float64 else 2.0 ** float(stops))


def _percentile(values: torch.Tensor, percentile: float) -> float:
    """NumPy's linear percentile of a 1-D tensor, as :func:`rawcv.isp.exposure.channel_highs`
    computes it: the order statistics by ``kthvalue``, interpolated in float64 in Python."""
    lo, t = percentile_index(values.numel(), percentile)
    a = float(torch.kthvalue(values, lo + 1).values)
    if t == 0.0:
        return a
    return interpolate(a, float(torch.kthvalue(values, lo + 2).values), t)


def channel_highs(image: torch.Tensor, *, cfa=None, percentile: float = PERCENTILE) -> list:
    """Per sample, the ``percentile`` of each colour channel: a list of ``[R, G, B]`` floats.

    Twin of :func:`rawcv.isp.exposure.channel_highs` (the same numbers: the same order
    statistics, interpolated in float64). On a mosaic each colour's CFA samples (both greens
    together); ``cfa`` is one pattern or one per sample.

    Examples
    --------
    >>> m = torch.tensor([[0.2, 0.4], [0.4, 0.1]]).repeat(4, 4)
    >>> [[round(v, 6) for v in row] for row in channel_highs(m, cfa="RGGB")]
    [[0.2, 0.4, 0.1]]
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    x, _ = _batched(_float(image).detach(), "image")
    _check_channels(x, (1, 3), "channel_highs")
    if x.shape[1] == 3:
        return [[_percentile(sample[c].reshape(-1), percentile) for c in range(3)] for sample in x]
    if cfa is None:
        raise ValueError("a mosaic needs its cfa= pattern for automatic exposure")
    patterns = cfa_list(cfa, x.shape[0])
    return [[_percentile(torch.cat([sample[0, dy::2, dx::2].reshape(-1) for dy, dx in bayer_positions_of(p, c)]),
                         percentile) for c in range(3)]
            for sample, p in zip(x, patterns)]


def auto_exposure_stops(image: torch.Tensor, *, cfa=None, percentile: float = PERCENTILE, level: float = LEVEL,
                        max_stops: float = MAX_STOPS) -> list:
    """The stops of the ``auto`` method for each sample: a list of floats, each the value
    :func:`rawcv.isp.exposure.auto_exposure_stops` gives that image.

    ``log2(level / high)`` with ``high`` the largest of the channels' ``percentile``, rounded to
    1/1000 EV, within ``[-max_stops, max_stops]``; 0.0 for an all-black sample. The stops are a
    decision, not a differentiable function of the image: no gradient flows through them.

    Examples
    --------
    >>> x = torch.stack([torch.full((3, 4, 4), 0.25), torch.full((3, 4, 4), 0.5), torch.zeros(3, 4, 4)])
    >>> auto_exposure_stops(x)
    [2.0, 1.0, 0.0]
    """
    check_auto_params(percentile, level, max_stops)
    return [stops_for(max(highs), level=level, max_stops=max_stops)
            for highs in channel_highs(image, cfa=cfa, percentile=percentile)]


class ApplyExposure(nn.Module):
    """Module form of :func:`apply_exposure`."""

    def __init__(self, stops: float = 0.0):
        super().__init__()
        self.stops = stops

    def forward(self, image):
        return apply_exposure(image, stops=self.stops)


class AutoExposure(nn.Module):
    """The ``auto`` method as a module: each sample times ``2 ** stops`` of
    :func:`auto_exposure_stops` (``cfa`` at call time overrides the stored one for a mosaic)."""

    def __init__(self, cfa=None, percentile: float = PERCENTILE, level: float = LEVEL, max_stops: float = MAX_STOPS):
        super().__init__()
        check_auto_params(percentile, level, max_stops)
        self.cfa, self.percentile, self.level, self.max_stops = cfa, percentile, level, max_stops

    def forward(self, image, cfa=None):
        x, restore = _batched(_float(image), "image")
        stops = auto_exposure_stops(x, cfa=cfa if cfa is not None else self.cfa, percentile=self.percentile,
                                    level=self.level, max_stops=self.max_stops)
        return restore(apply_exposure(x, stops=stops))


@ExposureStage.torch_twin
def _exposure_stage(stage, x, ctx):
    if stage.method == "auto":
        stops = auto_exposure_stops(x, cfa=ctx.cfas if x.shape[1] == 1 else None, percentile=stage.percentile,
                                    level=stage.level, max_stops=stage.max_stops)
    else:
        stops = [stage.stops] * x.shape[0]
    # a context that keeps records has one list of notes per sample (as a Frame has one)
    notes = getattr(ctx, "notes", None)
    if notes is not None:
        for sample_notes, s in zip(notes, stops):
            stage.note(sample_notes, stops=s)
    return apply_exposure(x, stops=stops)


__all__ = ["apply_exposure", "auto_exposure_stops", "channel_highs", "ApplyExposure", "AutoExposure"]
