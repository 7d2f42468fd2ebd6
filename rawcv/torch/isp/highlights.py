"""Highlights in torch: the twin of :mod:`rawcv.isp.highlights`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...isp.highlights import RING, WHITE_POINT, clipped_level
from ...isp.highlights import Highlights as HighlightsStage
from ...meta import cfa_channel_map
from ..tensors import _batched, cfa_list
from ._common import _check_channels, _float


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


def _colours(pattern: str, h: int, w: int, oy: int, ox: int, device) -> torch.Tensor:
    """The colour id of the photosite ``(oy, ox)`` away from each photosite (reflect-101 keeps parity)."""
    m = torch.as_tensor(cfa_channel_map(pattern), device=device).roll((-oy, -ox), (0, 1))
    return m.repeat((h + 1) // 2, (w + 1) // 2)[:h, :w]


def _reconstruct_one(x: torch.Tensor, clipped: torch.Tensor, pattern: str, white: float) -> torch.Tensor:
    """:func:`reconstruct_highlights` on a batch of one pattern, each float32 operation in the Numba
    kernel's order (``_opposed``: raster order), so the two agree but for the order of the chroma
    offsets' float64 sums."""
    n, _, h, w = x.shape
    own = _colours(pattern, h, w, 0, 0, x.device)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    blown = F.pad(clipped.to(x.dtype), (1, 1, 1, 1), mode="reflect") > 0
    total = torch.zeros_like(x)
    count = torch.zeros_like(x)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            other = _colours(pattern, h, w, oy, ox, x.device) != own
            ok = other & ~blown[:, :, 1 + oy:1 + oy + h, 1 + ox:1 + ox + w]
            total = torch.where(ok, total + padded[:, :, 1 + oy:1 + oy + h, 1 + ox:1 + ox + w], total)
            count = count + ok.to(x.dtype)
    # clamped: where no neighbour counts the mean is never used, and 0 / 0 would poison the gradient
    opposed = total / count.clamp(min=1)
    near = F.max_pool2d(clipped.to(x.dtype), 2 * RING + 1, stride=1, padding=RING) > 0
    diff = x - opposed
    ring = near & ~clipped & (count > 0) & torch.isfinite(diff)
    offsets = []
    for c in range(3):
        sel = ring & (own == c)
        number = sel.sum(dim=(1, 2, 3)).to(torch.float64)
        sums = torch.where(sel, diff, 0).to(torch.float64).sum(dim=(1, 2, 3))
        offsets.append(torch.where(number > 0, sums / number.clamp(min=1), 0).to(x.dtype))
    offset = torch.stack(offsets, 1)[:, own].unsqueeze(1)         # n x 1 x h x w
    estimate = opposed + offset
    white_t = torch.as_tensor(white, dtype=x.dtype, device=x.device)
    raised = torch.where((count > 0) & (estimate > white_t), estimate, white_t)
    return torch.where(clipped, raised, x)


def reconstruct_highlights(image: torch.Tensor, *, cfa, saturation=None,
                           white: float = float(WHITE_POINT)) -> torch.Tensor:
    """Rebuild the clipped photosites of white-balanced mosaics from the unclipped colours around them.

    Twin of :func:`rawcv.isp.highlights.reconstruct_highlights` (same steps, same numbers to the
    float32 rounding of the chroma offsets' sums); differentiable through the estimates.

    Parameters
    ----------
    image : Tensor
        ``N x 1 x H x W`` mosaics (``1 x H x W`` and ``H x W`` too).
    cfa : str or sequence of str
        The pattern, or one per sample.
    saturation : Tensor of bool, optional
        Which photosites clipped, the shape of ``image``; by default those at or above ``white``.
    white : float
        The white point, and the value of photosites blown in every colour.

    Examples
    --------
    >>> light = torch.linspace(0.2, 1.0, 9)                  # a ramp of orange light
    >>> from rawcv.torch.isp import mosaic_rgb
    >>> truth = mosaic_rgb(torch.stack([1.5 * light, light, 0.7 * light])[:, None].repeat(1, 4, 1), cfa="RGGB")
    >>> out = reconstruct_highlights(truth.clamp(max=1.0), cfa="RGGB")
    >>> [round(v, 2) for v in out[0, 0, 4::2].tolist()]     # the truth: 0.9, 1.2, 1.5
    [0.9, 1.07, 1.11]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1,), "reconstruct_highlights")
    if saturation is None:
        clipped = x >= float(clipped_level(white))
    else:
        clipped, _ = _batched(torch.as_tensor(saturation, device=x.device).to(torch.bool), "saturation")
        if clipped.shape != x.shape:
            raise ValueError(f"saturation must be a mask of the image's shape {tuple(x.shape)}, "
                             f"got {tuple(clipped.shape)}")
    if not bool(clipped.any()):
        return restore(x)
    names = cfa_list(cfa, x.shape[0])
    if len(set(names)) == 1:
        return restore(_reconstruct_one(x, clipped, names[0], float(white)))
    parts = [None] * len(names)
    for pattern in dict.fromkeys(names):
        idx = [i for i, c in enumerate(names) if c == pattern]
        for j, y in zip(idx, _reconstruct_one(x[idx], clipped[idx], pattern, float(white))):
            parts[j] = y
    return restore(torch.stack(parts))

class ReconstructHighlights(nn.Module):
    """Module form of :func:`reconstruct_highlights` (``cfa`` at call time overrides the stored one)."""

    def __init__(self, cfa=None, white: float = float(WHITE_POINT)):
        super().__init__()
        self.cfa = cfa
        self.white = white

    def forward(self, image, cfa=None, saturation=None):
        return reconstruct_highlights(image, cfa=cfa if cfa is not None else self.cfa, saturation=saturation,
                                      white=self.white)


@HighlightsStage.torch_twin
def _highlights_stage(stage, x, ctx):
    if stage.method == "reconstruct" and x.shape[1] == 1:
        return reconstruct_highlights(x, cfa=ctx.cfas)
    return clip_highlights(x)     # clip, and reconstruct's fallback on RGB (as in rawcv.isp)


__all__ = ["clip_highlights", "ClipHighlights", "reconstruct_highlights", "ReconstructHighlights"]
