"""Vignetting correction in torch."""

from __future__ import annotations

import torch
from torch import nn

from ...isp.vignetting import geometry

from ...isp.vignetting import Vignetting as VignettingStage
from ..tensors import _batched
from ._common import _float, stage_default

K1 = stage_default("vignetting", "k1")
K2 = stage_default("vignetting", "k2")
K3 = stage_default("vignetting", "k3")
K4 = stage_default("vignetting", "k4")
K5 = stage_default("vignetting", "k5")
CENTER = tuple(stage_default("vignetting", "center"))


def _coef(k, dtype, device):
    if isinstance(k, torch.Tensor):
        return k.to(device=device, dtype=dtype).reshape(-1, 1, 1, 1)
    return float(k)


def vignetting_gain(shape, *, k1=K1, k2=K2, k3=K3, k4=K4, k5=K5, center=CENTER, dtype=torch.float32,
                    device=None) -> torch.Tensor:
    """The ``1 x 1 x H x W`` correction gain ``1 + k1 r^2 + ... + k5 r^10`` (``N x 1 x H x W`` for
    per-sample tensor coefficients). Twin of :func:`rawcv.isp.vignetting_gain`.

    Examples
    --------
    >>> g = vignetting_gain((5, 5), k1=0.5)
    >>> float(g[0, 0, 2, 2]), float(g[0, 0, 0, 0])
    (1.0, 1.5)
    """
    h, w = int(shape[-2]), int(shape[-1])
    cy, cx, inv_rmax2 = geometry((h, w), tuple(float(c) for c in center))
    dy = (torch.arange(h, dtype=dtype, device=device) - float(cy)).reshape(1, 1, h, 1)
    dx = (torch.arange(w, dtype=dtype, device=device) - float(cx)).reshape(1, 1, 1, w)
    r2 = (dy * dy + dx * dx) * float(inv_rmax2)
    k1, k2, k3, k4, k5 = (_coef(k, dtype, device) for k in (k1, k2, k3, k4, k5))
    return 1.0 + r2 * (k1 + r2 * (k2 + r2 * (k3 + r2 * (k4 + r2 * k5))))


def correct_vignetting(image: torch.Tensor, *, k1=K1, k2=K2, k3=K3, k4=K4, k5=K5, center=CENTER) -> torch.Tensor:
    """Multiply every pixel (all channels; mosaic or RGB) by the radial gain of :func:`vignetting_gain`.

    ``r`` is the distance to ``center`` (``(cx, cy)`` as fractions of width and height) over the
    distance to the farthest corner. ``k1..k5`` may be tensors (0-d or one per sample, with
    gradients). Twin of :func:`rawcv.isp.correct_vignetting`.

    Examples
    --------
    >>> float(correct_vignetting(torch.full((1, 1, 5, 5), 0.5), k1=1.0)[0, 0, 0, 0])
    1.0
    """
    x, restore = _batched(_float(image), "image")
    gain = vignetting_gain(x.shape, k1=k1, k2=k2, k3=k3, k4=k4, k5=k5, center=center, dtype=x.dtype,
                           device=x.device)
    return restore(x * gain)


class CorrectVignetting(nn.Module):
    """Module form of :func:`correct_vignetting` (parameters as the ``vignetting`` stage declares them)."""

    def __init__(self, k1=K1, k2=K2, k3=K3, center=CENTER, k4=K4, k5=K5):
        super().__init__()
        self.k1, self.k2, self.k3, self.k4, self.k5, self.center = k1, k2, k3, k4, k5, tuple(center)

    @classmethod
    def from_stage(cls, stage) -> "CorrectVignetting":
        return cls(k1=stage.k1, k2=stage.k2, k3=stage.k3, k4=stage.k4, k5=stage.k5, center=tuple(stage.center))

    def forward(self, image):
        return correct_vignetting(image, k1=self.k1, k2=self.k2, k3=self.k3, k4=self.k4, k5=self.k5,
                                  center=self.center)


@VignettingStage.torch_twin
def _vignetting_stage(stage, x, ctx):
    return correct_vignetting(x, k1=stage.k1, k2=stage.k2, k3=stage.k3, k4=stage.k4, k5=stage.k5,
                              center=tuple(stage.center))
