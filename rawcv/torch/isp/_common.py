"""What the torch twins of :mod:`rawcv.isp` share: tensor checks, per-sample parameters, the
batch context the torch backend hands each stage's twin, and the registry's defaults."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...isp.stage import STAGES
from ..tensors import cfa_list


def stage_default(stage: str, param: str):
    """The default of ``param`` as declared once in the stage registry."""
    return STAGES[stage].param(param).default


def stage_choices(stage: str, param: str) -> tuple:
    """The choices of ``param`` as declared once in the stage registry."""
    return STAGES[stage].param(param).choices


@dataclass
class TorchContext:
    """What a stage's torch twin knows about the batch besides its tensor: each sample's
    :class:`~rawcv.meta.CameraMeta` (CFA, levels, gains, matrices). Whether the tensor is a
    mosaic or RGB, and its device, the tensor itself says."""

    metas: list
    kind: str = ""        # what the stage about to run sees (raw values, mosaic, rgb ...): the backend sets it

    @property
    def cfas(self) -> list:
        return [m.cfa for m in self.metas]


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.float32)


def _compute_dtype(x: torch.Tensor):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _rows(value, n: int, k: int, name: str, device, dtype=torch.float64) -> torch.Tensor:
    """``value`` as an ``n x k`` tensor: a scalar, ``k`` values, or ``n x k`` (``n`` if ``k == 1``).

    Tensors keep autograd; anything else goes through NumPy float64.
    """
    if isinstance(value, torch.Tensor):
        t = value.to(device=device, dtype=dtype)
    else:
        t = torch.as_tensor(np.asarray(value, dtype=np.float64), device=device).to(dtype)
    if t.dim() == 0 or t.numel() == 1:
        return t.reshape(1, 1).expand(n, k)
    if t.dim() == 1 and t.numel() == k:
        return t.reshape(1, k).expand(n, k)
    if k == 1 and t.dim() == 1 and t.numel() == n:
        return t.reshape(n, 1)
    if t.dim() == 2 and t.shape[1] == k and t.shape[0] in (1, n):
        return t.expand(n, k)
    raise ValueError(f"{name} must be one value, {k} values or {n} x {k} (one row per sample), "
                     f"got shape {tuple(t.shape)}")


def _per_position(x: torch.Tensor, fn, *values: torch.Tensor) -> torch.Tensor:
    """``fn(x, *v)`` where each ``v`` (``n x 4``, CFA raster order) is taken at each pixel's position."""
    n, _, h, w = x.shape
    if h % 2 == 0 and w % 2 == 0:
        xv = x.reshape(n, 1, h // 2, 2, w // 2, 2)
        return fn(xv, *(v.reshape(n, 1, 1, 2, 1, 2) for v in values)).reshape(n, 1, h, w)
    reps = (1, 1, (h + 1) // 2, (w + 1) // 2)
    maps = [v.reshape(n, 1, 2, 2).repeat(*reps)[:, :, :h, :w] for v in values]
    return fn(x, *maps)


def _check_channels(x: torch.Tensor, allowed, what: str):
    if x.shape[1] not in allowed:
        kinds = {1: "a mosaic (C = 1)", 3: "RGB (C = 3)"}
        raise ValueError(f"{what} takes {' or '.join(kinds[c] for c in allowed)}, got {x.shape[1]} channels")


def _group_by_cfa(x: torch.Tensor, cfa, fn):
    """Apply ``fn(sub_batch, pattern)`` per distinct pattern and reassemble the batch in order."""
    names = cfa_list(cfa, x.shape[0])
    if len(set(names)) == 1:
        return fn(x, names[0])
    parts = [None] * len(names)
    for pattern in dict.fromkeys(names):
        idx = [i for i, c in enumerate(names) if c == pattern]
        y = fn(x[idx], pattern)
        for j, i in enumerate(idx):
            parts[i] = y[j]
    return torch.stack(parts)
