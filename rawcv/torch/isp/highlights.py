"""Highlights in torch: the twin of :mod:`rawcv.isp.highlights`."""

from __future__ import annotations

import torch
from torch import nn

from ...isp.highlights import WHITE_POINT
from ...isp.highlights import Highlights as HighlightsStage
from ._common import _float


def clip_highlights(image: torch.Tensor, *, white: float = float(WHITE_POINT)) -> torch.Tensor:
    """Cap every value at ``white`` (NaN stays NaN); the gradient above it is 0.

    Examples
    --------
    >>> clip_highlights(torch.tensor([2.1, 1.0, 0.5])).tolist()
    [1.0, 1.0, 0.5]
    """
    x = _float(image)
    return torch.where(x > white, torch.as_tensor(white, dtype=x.dtype, device=x.device), x)


class ClipHighlights(nn.Module):
    """Module form of :func:`clip_highlights`."""

    def __init__(self, white: float = float(WHITE_POINT)):
        super().__init__()
        self.white = white

    def forward(self, image):
        return clip_highlights(image, white=self.white)


@HighlightsStage.torch_twin
def _highlights_stage(stage, x, ctx):
    return clip_highlights(x)


__all__ = ["clip_highlights", "ClipHighlights"]
