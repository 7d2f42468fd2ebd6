"""Colour matrices in torch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...isp.color import ColorMatrix as ColorMatrixStage
from ..tensors import _batched
from ._common import _check_channels, _float


def apply_color_matrix(image: torch.Tensor, matrix) -> torch.Tensor:
    """``out[:, i] = sum_j matrix[i, j] * image[:, j]`` on ``N x 3 x H x W``.

    ``matrix`` is 3x3 (or 9 values) or ``N x 3 x 3`` (per sample). The sum runs in the Numba
    twin's order (:func:`rawcv.isp.apply_color_matrix`).

    Examples
    --------
    >>> img = torch.ones(1, 3, 2, 2)
    >>> apply_color_matrix(img, torch.diag(torch.tensor([2.0, 1.0, 0.5])))[0, :, 0, 0].tolist()
    [2.0, 1.0, 0.5]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (3,), "apply_color_matrix")
    n = x.shape[0]
    if isinstance(matrix, torch.Tensor):
        m = matrix.to(device=x.device, dtype=x.dtype)
    else:
        m = torch.as_tensor(np.asarray(matrix, dtype=np.float64), device=x.device).to(x.dtype)
    if m.numel() == 9:
        m = m.reshape(1, 3, 3)
    if m.dim() != 3 or m.shape[1:] != (3, 3) or m.shape[0] not in (1, n):
        raise ValueError(f"matrix must be 3 x 3 or N x 3 x 3, got shape {tuple(m.shape)}")
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    e = lambda i, j: m[:, i, j].reshape(-1, 1, 1, 1)   # noqa: E731
    out = torch.cat([e(i, 0) * r + e(i, 1) * g + e(i, 2) * b for i in range(3)], dim=1)
    return restore(out)


class ApplyColorMatrix(nn.Module):
    """Module form of :func:`apply_color_matrix`; the matrix is a buffer (moves with ``.to``)."""

    def __init__(self, matrix):
        super().__init__()
        m = matrix if isinstance(matrix, torch.Tensor) else torch.as_tensor(np.asarray(matrix, dtype=np.float64))
        self.register_buffer("matrix", m.reshape(-1, 3, 3).squeeze(0) if m.numel() == 9 else m)

    def forward(self, image):
        return apply_color_matrix(image, self.matrix)


@ColorMatrixStage.torch_twin
def _color_matrix_stage(stage, x, ctx):
    # each sample its own matrix; a file without one passes through unchanged
    mats = [stage.resolve_matrix(m) for m in ctx.metas]
    if all(m is None for m in mats):
        return x
    have = torch.tensor([m is not None for m in mats], device=x.device).reshape(-1, 1, 1, 1)
    stack = np.stack([np.eye(3) if m is None else np.asarray(m, dtype=np.float64) for m in mats])
    return torch.where(have, apply_color_matrix(x, stack), x)
