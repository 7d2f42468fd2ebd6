"""Exposure in torch: the twin of :mod:`rawcv.isp.exposure`."""

from __future__ import annotations

import torch
from torch import nn

from ...isp.exposure import Exposure as ExposureStage
from ...isp.exposure import exposure_gain
from ._common import _float


def apply_exposure(image: torch.Tensor, *, stops) -> torch.Tensor:
    """Multiply by ``2 ** stops``: one float for the batch (the Numba twin's float32 gain for
    float32 data), or a tensor of one value per sample, which keeps autograd.

    Examples
    --------
    >>> apply_exposure(torch.full((1, 1, 2, 2), 0.25), stops=1.0).flatten().tolist()
    [0.5, 0.5, 0.5, 0.5]
    """
    x = _float(image)
    if isinstance(stops, torch.Tensor):
        gain = torch.exp2(stops.to(x.dtype)).reshape(-1, *([1] * (x.dim() - 1)))
        return x * gain
    gain = exposure_gain(stops)
    return x * (float(gain) if x.dtype != torch.float64 else 2.0 ** float(stops))


class ApplyExposure(nn.Module):
    """Module form of :func:`apply_exposure`."""

    def __init__(self, stops: float = 0.0):
        super().__init__()
        self.stops = stops

    def forward(self, image):
        return apply_exposure(image, stops=self.stops)


@ExposureStage.torch_twin
def _exposure_stage(stage, x, ctx):
    return apply_exposure(x, stops=stage.stops)


__all__ = ["apply_exposure", "ApplyExposure"]
