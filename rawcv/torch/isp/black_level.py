"""Black level and the saturation mask in torch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...isp.black_level import BlackLevel as BlackLevelStage
from ..tensors import _batched
from ._common import _check_channels, _compute_dtype, _float, _per_position, _rows


def subtract_black_level(raw: torch.Tensor, *, black, white) -> torch.Tensor:
    """``(raw - black) / (white - black)`` per CFA position (mosaic) or per channel (RGB).

    Twin of :func:`rawcv.isp.subtract_black_level`; values are not clipped.

    Parameters
    ----------
    raw : Tensor
        Sensor values, ``N x 1 x H x W`` (mosaic) or ``N x 3 x H x W`` (linear raw); integers are
        converted to float32.
    black : float, sequence of 4 float, or N x 4 tensor
        Black level per CFA position in 2x2 raster order (per sample if ``N x 4``); for RGB
        input the first three are R, G, B.
    white : float or N tensor
        White (saturation) level.

    Examples
    --------
    >>> m = torch.tensor([[600., 15520.], [1000., 8060.]])
    >>> subtract_black_level(m, black=600, white=15520).double().round(decimals=3).tolist()
    [[0.0, 1.0], [0.027, 0.5]]
    """
    x, restore = _batched(raw, "raw")
    _check_channels(x, (1, 3), "subtract_black_level")
    dtype = _compute_dtype(_float(x))
    n = x.shape[0]
    b = _rows(black, n, 4, "black", x.device)
    wl = _rows(white, n, 1, "white", x.device)
    if x.shape[1] == 3:
        b = b[:, :3]
    if not bool((wl > b).all()):
        raise ValueError(f"white level must exceed every black level, got white {wl.flatten().tolist()} "
                         f"and black {b.tolist()}")
    inv = (1.0 / (wl - b)).to(dtype)   # as rawcv.isp: float64 reciprocal, rounded once
    b = b.to(dtype)
    x = x.to(dtype)
    if x.shape[1] == 1:
        out = _per_position(x, lambda a, bb, s: (a - bb) * s, b, inv)
    else:
        out = (x - b.reshape(n, 3, 1, 1)) * inv.reshape(n, 3, 1, 1)
    return restore(out)


def saturation_mask(raw: torch.Tensor, *, white) -> torch.Tensor:
    """Boolean mask of values at or above ``white`` (clipped highlights).

    Examples
    --------
    >>> saturation_mask(torch.tensor([[10, 99], [100, 120]]), white=100).tolist()
    [[False, False], [True, True]]
    """
    if isinstance(white, torch.Tensor) and white.dim() == 1 and raw.dim() == 4:
        white = white.reshape(-1, 1, 1, 1)
    return raw >= white


class SubtractBlackLevel(nn.Module):
    """Module form of :func:`subtract_black_level`.

    Examples
    --------
    >>> SubtractBlackLevel(black=10, white=110)(torch.tensor([[60.0]])).tolist()
    [[0.5]]
    """

    def __init__(self, black, white):
        super().__init__()
        self.black = black
        self.white = white

    @classmethod
    def from_stage(cls, stage, meta) -> "SubtractBlackLevel":
        """From a ``black_level`` stage and the capture's :class:`~rawcv.meta.CameraMeta`."""
        black, white = stage.levels(meta)
        return cls(black=black, white=white)

    def forward(self, raw):
        return subtract_black_level(raw, black=self.black, white=self.white)


@BlackLevelStage.torch_twin
def _black_level_stage(stage, x, ctx):
    levels = [stage.levels(m) for m in ctx.metas]
    black = torch.tensor(np.stack([np.broadcast_to(np.asarray(b, dtype=np.float64).reshape(-1), (4,))
                                   for b, _ in levels]), device=x.device)
    white = torch.tensor([float(w) for _, w in levels], dtype=torch.float64, device=x.device)
    return subtract_black_level(x, black=black, white=white)
