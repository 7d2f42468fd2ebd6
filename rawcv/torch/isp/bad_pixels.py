"""Bad-pixel detection and correction in torch: the twin of :mod:`rawcv.isp.bad_pixels`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...isp.bad_pixels import DETECT_FLOOR, DETECT_MIN_SIDE, DETECT_THRESHOLD
from ...isp.bad_pixels import BadPixels as BadPixelsStage
from ...isp.bad_pixels import detect_constants
from ...isp.denoise import _neighbour_table
from ...isp.frame import RAW
from ..tensors import _batched, cfa_list
from ._common import _check_channels, _float

_DETECT_CHUNK = 1 << 24         # elements of the stacked 24 neighbours processed at once
# which of the 24 same-phase photosites of the 5 x 5 box (raster order, centre left out) are the 8 nearest
_NEAREST = frozenset(i for i, (a, b) in enumerate((a, b) for a in range(5) for b in range(5) if a != 2 or b != 2)
                     if 1 <= a <= 3 and 1 <= b <= 3)


def _table(n: int, device) -> torch.Tensor:
    """Per row (column) index, those of the same-phase photosites at -4, -2, 0, 2, 4 pixels,
    mirrored within each phase: the Numba kernel's own table."""
    return torch.from_numpy(_neighbour_table(n, 2, 2)).to(device)


def _middle(sorted_values: torch.Tensor) -> torch.Tensor:
    """The median of an even count along the last axis: the mean of the middle two, as the kernel."""
    m = sorted_values.shape[-1] // 2
    return (sorted_values[..., m - 1] + sorted_values[..., m]) * 0.5


def detect_bad_pixels(image: torch.Tensor, *, cfa, threshold: float = DETECT_THRESHOLD,
                      floor: float = DETECT_FLOOR, white: float = 1.0) -> torch.Tensor:
    """Hot and dead photosites of mosaics: twin of :func:`rawcv.isp.bad_pixels.detect_bad_pixels`.

    A photosite is flagged when it lies beyond all 8 nearest photosites of its CFA tile position,
    on one side, by more than ``threshold * 1.4826 * MAD + floor * white`` (MAD: of the 24 such
    photosites of its 9 x 9 box), each step in the kernel's float32 order, so the two agree.
    ``cfa`` (one pattern or one per sample) is only checked: the rule reads no colour.

    Examples
    --------
    >>> x = torch.full((1, 1, 8, 8), 0.25); x[0, 0, 3, 4] = 0.9
    >>> detect_bad_pixels(x, cfa="RGGB").nonzero().tolist()
    [[0, 0, 3, 4]]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1,), "detect_bad_pixels")
    cfa_list(cfa, x.shape[0])
    n, _, h, w = x.shape
    if min(h, w) < DETECT_MIN_SIDE:
        raise ValueError(f"detecting bad pixels needs a mosaic of at least {DETECT_MIN_SIDE} x {DETECT_MIN_SIDE} "
                         f"(three rows and columns of each CFA position), got {h} x {w}")
    gain, limit0 = (float(v) for v in detect_constants(threshold, floor, white))
    rows, cols = _table(h, x.device), _table(w, x.device)
    x = x.detach()                    # a yes / no answer: nothing to differentiate
    band = max(1, _DETECT_CHUNK // max(1, 24 * n * w))
    parts = []
    for y0 in range(0, h, band):
        r = rows[y0:y0 + band]
        around = [x.index_select(2, r[:, a]).index_select(3, cols[:, b])
                  for a in range(5) for b in range(5) if a != 2 or b != 2]
        near = torch.stack([v for i, v in enumerate(around) if i in _NEAREST], -1)
        lo, hi = near.amin(-1), near.amax(-1)
        values = torch.stack(around, -1).sort(-1).values
        med = _middle(values)
        spread = _middle((values - med.unsqueeze(-1)).abs().sort(-1).values)
        limit = gain * spread + limit0
        p = x[:, :, y0:y0 + band]
        parts.append(((p - hi) > limit) | ((lo - p) > limit))
    return restore(torch.cat(parts, 2))


def _box(v: torch.Tensor, k: int) -> torch.Tensor:
    """Sums over the (2k + 1)^2 box around each element of ``v`` (N x 1 x h x w), zero outside."""
    return F.avg_pool2d(v, 2 * k + 1, stride=1, padding=k, divisor_override=1)


def _fix_plane(plane: torch.Tensor, bad: torch.Tensor, integer: bool, phase: tuple) -> torch.Tensor:
    """One CFA tile position (a plane of same-phase photosites): each bad one from the good ones
    of the nearest ring around it that has any. The box of ring k holds only bad photosites inside
    ring k, so its sums are the ring's; where every ring is still bad, a box around the remaining
    ones (cropped to them) keeps large k cheap."""
    values = torch.where(bad, torch.zeros((), dtype=torch.float64, device=plane.device), plane.to(torch.float64))
    good = (~bad).to(torch.float64)
    result = plane.to(torch.float64)
    todo = bad.clone()
    h, w = plane.shape[-2:]
    k = 1
    while bool(todo.any()):
        if k > max(h, w):               # the box covers the plane: all of it is bad
            y, x = (2 * v + d for v, d in zip(torch.nonzero(todo[:, 0])[0, 1:].tolist(), phase))
            raise ValueError(f"every photosite at CFA position (row {phase[0]}, col {phase[1]}) is bad: "
                             f"nothing to replace pixel (row {y}, col {x}) with")
        ys, xs = torch.nonzero(todo.any(0).any(0), as_tuple=True)
        y0, y1 = max(0, int(ys.min()) - k), min(h, int(ys.max()) + k + 1)
        x0, x1 = max(0, int(xs.min()) - k), min(w, int(xs.max()) + k + 1)
        window = (slice(None), slice(None), slice(y0, y1), slice(x0, x1))
        sums, count = _box(values[window], k), _box(good[window], k)
        mean = sums / count.clamp(min=1)
        if integer:
            mean = torch.floor(mean)          # dcraw's integer tot / n (the sums are exact)
        hit = todo[window] & (count > 0)
        result = result.clone()
        result[window] = torch.where(hit, mean, result[window])
        todo[window] &= ~hit
        k += 1
    return result


def fix_bad_pixels(image: torch.Tensor, bad: torch.Tensor, *, cfa) -> torch.Tensor:
    """Replace the photosites ``bad`` marks by the mean of the good photosites of the same CFA tile
    position on the nearest ring around them that has any: twin of
    :func:`rawcv.isp.bad_pixels.fix_bad_pixels` (sums in float64; integer input keeps its dtype
    and is rounded down, as dcraw's ``tot / n``). Differentiable in the good photosites.

    Parameters
    ----------
    image : Tensor
        ``N x 1 x H x W`` mosaics (``1 x H x W`` and ``H x W`` too).
    bad : Tensor of bool
        The photosites to replace, the shape of ``image``.
    cfa : str or sequence of str
        The pattern, or one per sample (only checked: the rule reads no colour).

    Examples
    --------
    >>> x = torch.arange(64.0).reshape(8, 8); x[2, 2] = 1e4
    >>> bad = torch.zeros(8, 8, dtype=torch.bool); bad[2, 2] = True
    >>> float(fix_bad_pixels(x, bad, cfa="RGGB")[2, 2])     # the mean of the 8 at distance 2
    18.0
    """
    x, restore = _batched(image, "image")
    mask, _ = _batched(torch.as_tensor(bad, device=x.device).to(torch.bool), "bad")
    return restore(_fix(x, mask, cfa, integer=not x.is_floating_point()))


def _fix(x: torch.Tensor, mask: torch.Tensor, cfa, *, integer: bool) -> torch.Tensor:
    """:func:`fix_bad_pixels` on ``N x 1 x H x W``; ``integer``: round the means down (sensor
    values, which may sit in a float tensor)."""
    _check_channels(x, (1,), "fix_bad_pixels")
    cfa_list(cfa, x.shape[0])
    if mask.shape != x.shape:
        raise ValueError(f"bad must be a mask of the image's shape {tuple(x.shape)}, got {tuple(mask.shape)}")
    if not bool(mask.any()):
        return x
    out = x.clone()
    for dy in range(2):
        for dx in range(2):
            plane_bad = mask[:, :, dy::2, dx::2]
            if bool(plane_bad.any()):
                out[:, :, dy::2, dx::2] = _fix_plane(x[:, :, dy::2, dx::2], plane_bad, integer, (dy, dx)).to(x.dtype)
    return out


class BadPixels(nn.Module):
    """Module form of the ``bad_pixels`` stage's work: the photosites of ``bad`` (given at call
    time) and, with ``detect``, those :func:`detect_bad_pixels` finds, fixed by
    :func:`fix_bad_pixels`."""

    def __init__(self, detect: bool = False, threshold: float = DETECT_THRESHOLD, cfa=None):
        super().__init__()
        self.detect, self.threshold, self.cfa = detect, threshold, cfa

    def forward(self, image, cfa=None, bad=None):
        cfa = cfa if cfa is not None else self.cfa
        mask = torch.zeros(image.shape, dtype=torch.bool, device=image.device) if bad is None \
            else torch.as_tensor(bad, device=image.device).to(torch.bool)
        if self.detect:
            mask = mask | detect_bad_pixels(image, cfa=cfa, threshold=self.threshold)
        return fix_bad_pixels(image, mask, cfa=cfa)


@BadPixelsStage.torch_twin
def _bad_pixels_stage(stage, x, ctx):
    _check_channels(x, (1,), "the bad_pixels stage")
    raw = getattr(ctx, "kind", None) == RAW      # stored sensor values (in a float tensor)
    listed = stage.listed(tuple(x.shape[-2:]))
    mask = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    if listed is not None:
        mask |= torch.from_numpy(np.ascontiguousarray(listed)).to(x.device)
    if stage.constant is not None:
        levels = x if raw else torch.floor(x.clamp(0.0, 1.0) * 65535.0 + 0.5)   # level16's float32 steps
        mask |= levels == stage.constant
    if stage.detect == "on":
        spans = [stage.span(ctx.kind if raw else None, m) for m in ctx.metas]
        if len(set(spans)) == 1:
            mask |= detect_bad_pixels(x, cfa=ctx.cfas, threshold=stage.threshold, white=spans[0])
        else:
            mask |= torch.cat([detect_bad_pixels(x[i:i + 1], cfa=ctx.cfas[i], threshold=stage.threshold,
                                                 white=spans[i]) for i in range(x.shape[0])])
    return _fix(x, mask, ctx.cfas, integer=raw)


__all__ = ["detect_bad_pixels", "fix_bad_pixels", "BadPixels"]
