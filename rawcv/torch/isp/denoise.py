"""Mean and median denoising in torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...isp.denoise import Denoise as DenoiseStage
from ..tensors import _batched, cfa_list
from ._common import _check_channels, _float, stage_choices, stage_default

DENOISE_METHOD = stage_default("denoise", "method")
DENOISE_SIZE = stage_default("denoise", "size")
DENOISE_SIZES = stage_choices("denoise", "size")
_MEDIAN_CHUNK = 1 << 24         # elements of the unfolded window tensor processed at once


def _check_size(size: int):
    if size not in DENOISE_SIZES:
        raise ValueError(f"denoise size must be one of {DENOISE_SIZES}, got {size!r}")


def _pad(x: torch.Tensor, r: int) -> torch.Tensor:
    if min(x.shape[-2:]) < r + 1:
        raise ValueError(f"image too small for a {2 * r + 1}x{2 * r + 1} filter")
    return F.pad(x, (r, r, r, r), mode="reflect")


def _mean_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    # window sums in float64 times the float64 1 / size^2, rounded once: the Numba twin's arithmetic
    n, c, h, w = x.shape
    p = _pad(x.reshape(n * c, 1, h, w).to(torch.float64), size // 2)
    sums = F.avg_pool2d(p, size, stride=1, divisor_override=1)
    return (sums * (1.0 / (size * size))).to(x.dtype).reshape(n, c, h, w)


def _median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    r = size // 2
    p = _pad(x, r)
    n, c, h, w = x.shape
    rows = max(1, _MEDIAN_CHUNK // max(1, n * c * w * size * size))
    parts = []
    for y0 in range(0, h, rows):
        band = p[:, :, y0:min(h, y0 + rows) + 2 * r]
        win = band.unfold(2, size, 1).unfold(3, size, 1)           # n, c, rows, w, size, size
        parts.append(win.reshape(win.shape[:4] + (size * size,)).median(dim=-1).values)
    return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]


def _filter(image: torch.Tensor, size: int, cfa, fn, what: str) -> torch.Tensor:
    _check_size(size)
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1, 3), what)
    if x.shape[1] == 3:
        return restore(fn(x, size))
    cfa_list(cfa, x.shape[0])   # validates; every pattern filters the four CFA planes alike
    h, w = x.shape[-2:]
    if h % 2 == 0 and w % 2 == 0:
        return restore(F.pixel_shuffle(fn(F.pixel_unshuffle(x, 2), size), 2))
    out = torch.empty_like(x)
    for dy in range(2):
        for dx in range(2):
            out[:, :, dy::2, dx::2] = fn(x[:, :, dy::2, dx::2], size)
    return restore(out)


def denoise_mean(image: torch.Tensor, *, size: int = DENOISE_SIZE, cfa=None) -> torch.Tensor:
    """Box (mean) filter ``size x size`` per RGB channel, or per CFA plane of a mosaic (``cfa`` given).

    Twin of :func:`rawcv.isp.denoise_mean` (reflect-101 borders; sums accumulate in float64).

    Examples
    --------
    >>> img = torch.zeros(1, 3, 5, 5); img[..., 2, 2] = 9.0
    >>> float(denoise_mean(img)[0, 0, 2, 2])
    1.0
    """
    return _filter(image, size, cfa, _mean_filter, "denoise_mean")


def denoise_median(image: torch.Tensor, *, size: int = DENOISE_SIZE, cfa=None) -> torch.Tensor:
    """Median filter ``size x size`` per RGB channel, or per CFA plane of a mosaic (``cfa`` given).

    Twin of :func:`rawcv.isp.denoise_median`: the windows come from ``unfold`` on the
    reflect-101 padded image (in row bands, to bound memory).

    Examples
    --------
    >>> img = torch.zeros(1, 3, 5, 5); img[..., 2, 2] = 1.0   # a hot pixel
    >>> float(denoise_median(img).max())
    0.0
    """
    return _filter(image, size, cfa, _median_filter, "denoise_median")


def denoise(image: torch.Tensor, *, method: str = DENOISE_METHOD, size: int = DENOISE_SIZE, cfa=None) -> torch.Tensor:
    """Dispatch to :func:`denoise_median` or :func:`denoise_mean` by name (the ``denoise`` stage).

    Examples
    --------
    >>> x = torch.zeros(1, 3, 5, 5); x[..., 2, 2] = 9.0
    >>> float(denoise(x, method="mean")[0, 0, 2, 2]), float(denoise(x, method="median")[0, 0, 2, 2])
    (1.0, 0.0)
    """
    if method == "median":
        return denoise_median(image, size=size, cfa=cfa)
    if method == "mean":
        return denoise_mean(image, size=size, cfa=cfa)
    raise ValueError(f"unknown denoise method {method!r}: expected 'median' or 'mean'")


class Denoise(nn.Module):
    """Module form of :func:`denoise` (``method`` and ``size`` as the ``denoise`` stage declares them)."""

    def __init__(self, method: str = DENOISE_METHOD, size: int = DENOISE_SIZE, cfa=None):
        super().__init__()
        if method not in ("median", "mean"):
            raise ValueError(f"unknown denoise method {method!r}: expected 'median' or 'mean'")
        _check_size(size)
        self.method, self.size, self.cfa = method, size, cfa

    @classmethod
    def from_stage(cls, stage, cfa=None) -> "Denoise":
        return cls(method=stage.method, size=stage.size, cfa=cfa)

    def forward(self, image, cfa=None):
        return denoise(image, method=self.method, size=self.size, cfa=cfa if cfa is not None else self.cfa)


class DenoiseMean(Denoise):
    """Module form of :func:`denoise_mean`."""

    def __init__(self, size: int = DENOISE_SIZE, cfa=None):
        super().__init__("mean", size, cfa)


class DenoiseMedian(Denoise):
    """Module form of :func:`denoise_median`."""

    def __init__(self, size: int = DENOISE_SIZE, cfa=None):
        super().__init__("median", size, cfa)


@DenoiseStage.torch_twin
def _denoise_stage(stage, x, ctx):
    return denoise(x, method=stage.method, size=stage.size, cfa=ctx.cfas if x.shape[1] == 1 else None)
