"""The ISP stages of :mod:`rawcv.isp` in torch: batched, any device, differentiable where the maths is.

Every function takes ``N x C x H x W`` tensors (``C x H x W`` and, for mosaics, ``H x W`` too, and
returns the same rank): a Bayer mosaic has ``C = 1``, an RGB image ``C = 3``. Floating inputs keep
their dtype (float32, or float64 for ``gradcheck``); integer inputs are converted to float32. In
float32 each function reproduces its Numba twin operation for operation, so the two agree to a
few units in the last place (``tests/test_torch_isp.py`` checks 1e-5 for every stage and Bayer
layout). Where a CFA applies, ``cfa`` is one pattern name or a sequence of one per sample.

Each function has a thin :class:`torch.nn.Module` (kornia style) that only stores the parameters
and delegates; the parameters' defaults come from the stage registry
(:data:`rawcv.pipeline.STAGES`), where they are declared once for every backend.

Examples
--------
>>> import torch
>>> m = torch.full((1, 1, 4, 4), 0.5)
>>> demosaic_bilinear(m, cfa="RGGB").shape
torch.Size([1, 3, 4, 4])
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..isp.demosaic import pixel_kinds
from ..isp.tone import encode_quantize_table
from ..isp.vignetting import geometry
from ..meta import bayer_positions_of, cfa_code
from ..pipeline.stages import STAGES
from .tensors import _batched, cfa_codes, cfa_list


def _stage_default(stage: str, param: str):
    """The default of ``param`` as declared once in the stage registry."""
    for p in STAGES[stage].params:
        if p.name == param:
            return p.default
    raise KeyError(f"stage {stage!r} declares no parameter {param!r}")


GAMMA = _stage_default("gamma", "gamma")
CURVE = _stage_default("gamma", "curve")
CURVES = STAGES["gamma"].params[0].choices
DENOISE_METHOD = _stage_default("denoise", "method")
DENOISE_SIZE = _stage_default("denoise", "size")
DENOISE_SIZES = next(p.choices for p in STAGES["denoise"].params if p.name == "size")
PERCENTILE = _stage_default("white_balance", "percentile")
BITS = _stage_default("quantize", "bits")
QUANTIZE_BITS = STAGES["quantize"].params[0].choices
K1 = _stage_default("vignetting", "k1")
K2 = _stage_default("vignetting", "k2")
K3 = _stage_default("vignetting", "k3")
CENTER = tuple(_stage_default("vignetting", "center"))

SRGB_LINEAR_MAX = 0.0031308     # encode: linear segment up to here
SRGB_ENCODED_MAX = 0.04045      # decode: linear segment up to here
_MEDIAN_CHUNK = 1 << 24         # elements of the unfolded window tensor processed at once


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- black level


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


# --------------------------------------------------------------------------- white balance


def white_balance(image: torch.Tensor, gains, *, cfa=None) -> torch.Tensor:
    """Multiply each colour by its gain, on a mosaic (``cfa`` given) or an RGB image.

    Twin of :func:`rawcv.isp.white_balance`.

    Parameters
    ----------
    image : Tensor
        ``N x 1 x H x W`` mosaic or ``N x 3 x H x W`` RGB.
    gains : sequence of 3 float or Tensor (3 or N x 3)
        R, G, B multipliers (per sample if ``N x 3``).
    cfa : str or sequence of str
        Required for a mosaic.

    Examples
    --------
    >>> m = torch.full((2, 2), 0.5)
    >>> white_balance(m, (2.0, 1.0, 1.5), cfa="RGGB").tolist()
    [[1.0, 0.5], [0.5, 0.75]]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "white_balance")
    n = x.shape[0]
    if not isinstance(gains, torch.Tensor):
        g_np = np.asarray(gains, dtype=np.float64)
        if not np.all(np.isfinite(g_np)) or np.any(g_np <= 0):
            raise ValueError(f"white-balance gains must be positive finite numbers, got {gains!r}")
    g = _rows(gains, n, 3, "gains", x.device, dtype=x.dtype)
    if x.shape[1] == 1:
        g4 = torch.gather(g, 1, cfa_codes(cfa, n, x.device))
        return restore(_per_position(x, lambda a, gg: a * gg, g4))
    return restore(x * g.reshape(n, 3, 1, 1))


def _gains_from_stats(stats: torch.Tensor, what: str, dtype) -> torch.Tensor:
    bad = ~torch.isfinite(stats) | (stats <= 0)
    if bool(bad.any()):
        raise ValueError(f"cannot estimate white balance: channel {what} {stats.tolist()} must be positive")
    ones = torch.ones_like(stats[:, 1])
    return torch.stack([stats[:, 1] / stats[:, 0], ones, stats[:, 1] / stats[:, 2]], dim=1).to(dtype)


def gains_gray_world(image: torch.Tensor, *, cfa=None, saturation: float = 1.0) -> torch.Tensor:
    """Gray-world gains ``(G/R, 1, G/B)`` from channel means, per sample; returns ``N x 3``.

    Values at or above ``saturation`` are left out of the means (on RGB, pixels with any
    channel at or above it). Twin of :func:`rawcv.isp.gains_gray_world`; means accumulate in
    float64.

    Examples
    --------
    >>> m = torch.tensor([[0.2, 0.4], [0.4, 0.1]]).repeat(4, 4)
    >>> gains_gray_world(m, cfa="RGGB").tolist()
    [[2.0, 1.0, 4.0]]
    """
    x, _ = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "gains_gray_world")
    n = x.shape[0]
    if x.shape[1] == 1:
        sums, counts = [], []
        for dy in range(2):
            for dx in range(2):
                plane = x[:, 0, dy::2, dx::2]
                keep = plane < saturation
                sums.append(torch.where(keep, plane, 0).to(torch.float64).sum(dim=(-2, -1)))
                counts.append(keep.sum(dim=(-2, -1)).to(torch.float64))
        onehot = F.one_hot(cfa_codes(cfa, n, x.device), 3).to(torch.float64)      # n x 4 x 3
        sums = torch.einsum("np,npc->nc", torch.stack(sums, 1), onehot)
        counts = torch.einsum("np,npc->nc", torch.stack(counts, 1), onehot)
    else:
        keep = (x < saturation).all(dim=1, keepdim=True)
        sums = torch.where(keep, x, 0).to(torch.float64).sum(dim=(-2, -1))
        counts = keep.sum(dim=(-2, -1)).to(torch.float64).expand(n, 3)
        sums = torch.where(counts > 0, sums, 0)
    means = sums / counts.clamp(min=1)
    return _gains_from_stats(means, "means", x.dtype)


def _percentile_rows(values: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per row, NumPy's default ('linear') percentile, with NumPy's interpolation arithmetic."""
    m = values.shape[1]
    virtual = (m - 1) * (float(percentile) / 100.0)
    lo = int(math.floor(virtual))
    if virtual >= m - 1:
        return values.max(dim=1).values
    a = torch.kthvalue(values, lo + 1, dim=1).values
    b = torch.kthvalue(values, lo + 2, dim=1).values
    t = virtual - lo
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def gains_white_world(image: torch.Tensor, *, cfa=None, percentile: float = PERCENTILE) -> torch.Tensor:
    """White-world gains from each channel's ``percentile`` (not its single maximum); ``N x 3``.

    The percentile is NumPy's default linear interpolation (``torch.quantile``'s too), computed
    with ``kthvalue`` so that there is no limit on the image size. Twin of
    :func:`rawcv.isp.gains_white_world`.

    Examples
    --------
    >>> m = torch.tensor([[0.2, 0.4], [0.4, 0.1]]).repeat(4, 4)
    >>> gains_white_world(m, cfa="RGGB").tolist()
    [[2.0, 1.0, 4.0]]
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}")
    x, _ = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "gains_white_world")
    if x.shape[1] == 3:
        highs = torch.stack([_percentile_rows(x[:, c].reshape(x.shape[0], -1), percentile) for c in range(3)], 1)
    else:
        def per_pattern(sub, pattern):
            cols = []
            for c in range(3):
                planes = [sub[:, 0, dy::2, dx::2].reshape(sub.shape[0], -1)
                          for dy, dx in bayer_positions_of(pattern, c)]
                cols.append(_percentile_rows(torch.cat(planes, 1), percentile))
            return torch.stack(cols, 1)

        highs = _group_by_cfa(x, cfa, per_pattern)
    return _gains_from_stats(highs.to(torch.float64), f"{percentile:g}th percentiles", x.dtype)


# --------------------------------------------------------------------------- demosaicing


def _bilinear_position(at, kind: int):
    """(R, G, B) of the pixels of one tile position; ``at(oy, ox)`` gives their neighbours.

    Sums run in the Numba twin's order (``_bilinear_pixel``), so the two agree bit for bit.
    """
    c = at(0, 0)
    if kind >= 2:
        cross = (at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)) * 0.25
        diag = (at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)) * 0.25
        return (c, cross, diag) if kind == 2 else (diag, cross, c)
    hor = (at(0, -1) + at(0, 1)) * 0.5
    ver = (at(-1, 0) + at(1, 0)) * 0.5
    return (hor, c, ver) if kind == 0 else (ver, c, hor)


def _demosaic_one(x: torch.Tensor, cfa: str) -> torch.Tensor:
    n, _, h, w = x.shape
    kinds = pixel_kinds(cfa_code(cfa))
    if h % 2 == 0 and w % 2 == 0:
        # Even size: work on the four CFA planes, where every neighbour read is a shifted
        # contiguous window. Reflect-101 padding of the mosaic is edge replication of each plane
        # (mosaic row -1 mirrors to row 1: row 0 of the odd-row plane).
        hh, ww = h // 2, w // 2
        planes = F.pad(F.pixel_unshuffle(x, 2), (1, 1, 1, 1), mode="replicate")
        per_position = []
        for dy in range(2):
            for dx in range(2):
                def at(oy, ox, dy=dy, dx=dx):
                    ch = 2 * ((dy + oy) % 2) + (dx + ox) % 2
                    y0, x0 = 1 + (dy + oy) // 2, 1 + (dx + ox) // 2
                    return planes[:, ch:ch + 1, y0:y0 + hh, x0:x0 + ww]

                per_position.append(_bilinear_position(at, int(kinds[2 * dy + dx])))
        stacked = torch.cat([per_position[pos][c] for c in range(3) for pos in range(4)], dim=1)
        return F.pixel_shuffle(stacked, 2)
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")   # reflect-101, keeps the CFA phase
    out = x.new_empty((n, 3, h, w))
    for dy in range(2):
        for dx in range(2):
            ny, nx = (h - dy + 1) // 2, (w - dx + 1) // 2

            def at(oy, ox, dy=dy, dx=dx, ny=ny, nx=nx):
                y0, x0 = 1 + dy + oy, 1 + dx + ox
                return p[:, :, y0:y0 + 2 * ny - 1:2, x0:x0 + 2 * nx - 1:2]

            out[:, :, dy::2, dx::2] = torch.cat(_bilinear_position(at, int(kinds[2 * dy + dx])), dim=1)
    return out


def demosaic_bilinear(mosaic: torch.Tensor, *, cfa) -> torch.Tensor:
    """Bilinear demosaicing: mosaic ``N x 1 x H x W`` -> RGB ``N x 3 x H x W``.

    Each missing colour is the mean of its 2 or 4 nearest same-colour neighbours, borders
    mirrored (reflect-101, ``F.pad(mode="reflect")``; for even sizes the work runs on the four
    CFA planes). Twin of :func:`rawcv.isp.demosaic_bilinear`, bit for bit.

    Parameters
    ----------
    mosaic : Tensor
        ``N x 1 x H x W`` (or ``1 x H x W`` / ``H x W``), H and W >= 3.
    cfa : str or sequence of str
        The pattern, or one per sample.

    Examples
    --------
    >>> out = demosaic_bilinear(torch.full((4, 6), 0.5), cfa="GBRG")
    >>> out.shape, bool((out == 0.5).all())
    (torch.Size([3, 4, 6]), True)
    """
    x, restore = _batched(_float(mosaic), "mosaic")
    _check_channels(x, (1,), "demosaic_bilinear")
    if min(x.shape[-2:]) < 3:
        raise ValueError(f"mosaic must be at least 3 x 3 to demosaic, got {tuple(x.shape[-2:])}")
    return restore(_group_by_cfa(x, cfa, _demosaic_one))


def mosaic_rgb(image: torch.Tensor, *, cfa) -> torch.Tensor:
    """Sample RGB ``N x 3 x H x W`` through a Bayer CFA: ``N x 1 x H x W``. Twin of :func:`rawcv.isp.mosaic_rgb`.

    Examples
    --------
    >>> rgb = torch.zeros(3, 2, 2); rgb[0] = 1; rgb[2] = 3
    >>> mosaic_rgb(rgb, cfa="RGGB").tolist()
    [[[1.0, 0.0], [0.0, 3.0]]]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (3,), "mosaic_rgb")
    n, _, h, w = x.shape
    codes = cfa_codes(cfa, n, x.device)
    out = x.new_empty((n, 1, h, w))
    for dy in range(2):
        for dx in range(2):
            idx = codes[:, 2 * dy + dx].reshape(n, 1, 1, 1).expand(n, 1, (h - dy + 1) // 2, (w - dx + 1) // 2)
            out[:, :, dy::2, dx::2] = torch.gather(x[:, :, dy::2, dx::2], 1, idx)
    return restore(out)


# --------------------------------------------------------------------------- denoising


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


# --------------------------------------------------------------------------- vignetting


def _coef(k, dtype, device):
    if isinstance(k, torch.Tensor):
        return k.to(device=device, dtype=dtype).reshape(-1, 1, 1, 1)
    return float(k)


def vignetting_gain(shape, *, k1=K1, k2=K2, k3=K3, center=CENTER, dtype=torch.float32, device=None) -> torch.Tensor:
    """The ``1 x 1 x H x W`` correction gain ``1 + k1 r^2 + k2 r^4 + k3 r^6`` (``N x 1 x H x W`` for
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
    k1, k2, k3 = (_coef(k, dtype, device) for k in (k1, k2, k3))
    return 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))


def correct_vignetting(image: torch.Tensor, *, k1=K1, k2=K2, k3=K3, center=CENTER) -> torch.Tensor:
    """Multiply every pixel (all channels; mosaic or RGB) by the radial gain of :func:`vignetting_gain`.

    ``r`` is the distance to ``center`` (``(cx, cy)`` as fractions of width and height) over the
    distance to the farthest corner. ``k1..k3`` may be tensors (0-d or one per sample, with
    gradients). Twin of :func:`rawcv.isp.correct_vignetting`.

    Examples
    --------
    >>> float(correct_vignetting(torch.full((1, 1, 5, 5), 0.5), k1=1.0)[0, 0, 0, 0])
    1.0
    """
    x, restore = _batched(_float(image), "image")
    gain = vignetting_gain(x.shape, k1=k1, k2=k2, k3=k3, center=center, dtype=x.dtype, device=x.device)
    return restore(x * gain)


# --------------------------------------------------------------------------- colour


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


# --------------------------------------------------------------------------- tone curves


def _check_gamma(gamma) -> float:
    gamma = float(gamma)
    if not math.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"gamma must be a positive number, got {gamma!r}")
    return gamma


def _signed_power(x: torch.Tensor, exponent: float) -> torch.Tensor:
    # negative values keep their sign (invertible curve); both branches stay finite for autograd
    p = x.abs().pow(exponent)
    return torch.where(x < 0, -p, p)


def _exponent(value: float, dtype) -> float:
    """The exponent as the Numba twin holds it: rounded to float32 for float32 data."""
    return float(np.float32(value)) if dtype != torch.float64 else float(value)


def gamma_encode(image: torch.Tensor, *, gamma: float = GAMMA) -> torch.Tensor:
    """Power law ``sign(x) |x|^(1/gamma)``. Twin of :func:`rawcv.isp.gamma_encode`.

    Examples
    --------
    >>> gamma_encode(torch.tensor([0.25, -0.25]), gamma=2.0).tolist()
    [0.5, -0.5]
    """
    x = _float(image)
    return _signed_power(x, _exponent(1.0 / _check_gamma(gamma), x.dtype))


def gamma_decode(image: torch.Tensor, *, gamma: float = GAMMA) -> torch.Tensor:
    """Inverse of :func:`gamma_encode`: ``sign(x) |x|^gamma``. Twin of :func:`rawcv.isp.gamma_decode`.

    Examples
    --------
    >>> gamma_decode(torch.tensor([0.5]), gamma=2.0).tolist()
    [0.25]
    """
    x = _float(image)
    return _signed_power(x, _exponent(_check_gamma(gamma), x.dtype))


def srgb_encode(image: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer curve (IEC 61966-2-1): ``12.92 x`` up to 0.0031308, then ``1.055 x^(1/2.4) - 0.055``.

    The power branch is evaluated on ``max(x, 0.0031308)`` so its gradient stays finite where it
    is not selected. Twin of :func:`rawcv.isp.srgb_encode`.

    Examples
    --------
    >>> round(float(srgb_encode(torch.tensor(0.18))), 4)
    0.4614
    """
    x = _float(image)
    exponent = _exponent(1.0 / 2.4, x.dtype)
    curve = 1.055 * x.clamp(min=SRGB_LINEAR_MAX).pow(exponent) - 0.055
    return torch.where(x <= SRGB_LINEAR_MAX, x * 12.92, curve)


def srgb_decode(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`srgb_encode`; uint8 input is scaled by 1/255 and uint16 by 1/65535 first.

    Twin of :func:`rawcv.isp.srgb_decode`.

    Examples
    --------
    >>> round(float(srgb_decode(torch.tensor(0.5))), 4)
    0.214
    """
    x = image
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    elif x.dtype == torch.uint16:
        x = x.to(torch.float32) / 65535.0
    x = _float(x)
    curve = ((x.clamp(min=SRGB_ENCODED_MAX) + 0.055) / 1.055).pow(2.4)
    return torch.where(x <= SRGB_ENCODED_MAX, x / 12.92, curve)


def encode(image: torch.Tensor, *, curve: str = CURVE, gamma: float = GAMMA) -> torch.Tensor:
    """The named tone curve (``"srgb"`` or ``"power"`` with ``gamma``): the ``gamma`` stage.

    Examples
    --------
    >>> encode(torch.tensor([0.25]), curve="power", gamma=2.0).tolist()
    [0.5]
    """
    if curve == "srgb":
        return srgb_encode(image)
    if curve == "power":
        return gamma_encode(image, gamma=gamma)
    raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")


def level_dtype(bits: int) -> torch.dtype:
    """The integer dtype of ``bits``-bit levels: uint8 or uint16.

    Examples
    --------
    >>> level_dtype(8), level_dtype(16)
    (torch.uint8, torch.uint16)
    """
    if bits not in QUANTIZE_BITS:
        raise ValueError(f"bits must be one of {QUANTIZE_BITS}, got {bits!r}")
    return torch.uint8 if bits == 8 else torch.uint16


def quantize(image: torch.Tensor, *, bits: int = BITS, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Clip to [0, 1] and round to ``bits``: ``floor(x * (2^bits - 1) + 0.5)``; NaN -> 0.

    Parameters
    ----------
    bits : {8, 16}
    dtype : torch.dtype, optional
        ``None`` returns the levels as floats in the input's dtype; an integer dtype (see
        :func:`level_dtype`) returns them as integers, like :func:`rawcv.isp.quantize`.

    Examples
    --------
    >>> quantize(torch.tensor([0.0, 0.5, 1.0, 2.0]), dtype=torch.uint8).tolist()
    [0, 128, 255, 255]
    """
    level_dtype(bits)   # validates
    maxval = (1 << bits) - 1
    x = _float(image)
    q = torch.floor(x * maxval + 0.5).clamp(0, maxval)
    q = torch.nan_to_num(q, nan=0.0)
    return q if dtype is None else q.to(dtype)


@lru_cache(maxsize=16)
def _level_thresholds(curve: str, gamma: float, bits: int) -> torch.Tensor:
    thresholds, _ = encode_quantize_table(curve, gamma, bits)
    return torch.from_numpy(np.ascontiguousarray(thresholds[1:(1 << bits)], dtype=np.float32))


def encode_quantize(image: torch.Tensor, *, curve: str = CURVE, gamma: float = GAMMA, bits: int = BITS,
                    dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Tone curve then quantisation in one exact step: the level of every float32 value as rawcv computes it.

    The same threshold table as rawcv's fused path (:func:`rawcv.isp.tone.encode_quantize_table`:
    ``thresholds[k]`` is the smallest float32 whose encoded, quantised level is ``k``) is searched
    with :func:`torch.searchsorted`, so the levels equal :func:`rawcv.isp.quantize` of
    :func:`rawcv.isp.encode` bit for bit, where ``quantize(encode(x))`` may differ by one level
    on rare values (``pow`` is not rounded identically by libm and torch). Not differentiable.
    Input is rounded to float32 first. ``dtype`` as in :func:`quantize`.

    Examples
    --------
    >>> encode_quantize(torch.tensor([-1.0, 0.18, 1.0, float("nan")]), dtype=torch.uint8).tolist()
    [0, 118, 255, 0]
    """
    if curve not in CURVES:
        raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")
    level_dtype(bits)
    x = _float(image)
    thr = _level_thresholds(curve, _check_gamma(gamma), bits).to(x.device)
    x32 = x.to(torch.float32).contiguous()
    q = torch.searchsorted(thr, x32, right=True)
    q = torch.where(torch.isnan(x32), 0, q)
    return q.to(x.dtype if dtype is None else dtype)


# --------------------------------------------------------------------------- modules


class EncodeQuantize(nn.Module):
    """Module form of :func:`encode_quantize`."""

    def __init__(self, curve: str = CURVE, gamma: float = GAMMA, bits: int = BITS, dtype: Optional[torch.dtype] = None):
        super().__init__()
        if curve not in CURVES:
            raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")
        level_dtype(bits)
        self.curve, self.gamma, self.bits, self.dtype = curve, _check_gamma(gamma), bits, dtype

    @classmethod
    def from_stages(cls, gamma_stage, quantize_stage, dtype: Optional[torch.dtype] = None) -> "EncodeQuantize":
        """From a ``gamma`` stage and the ``quantize`` stage that follows it."""
        return cls(curve=gamma_stage.curve, gamma=gamma_stage.gamma, bits=quantize_stage.bits, dtype=dtype)

    def forward(self, image):
        return encode_quantize(image, curve=self.curve, gamma=self.gamma, bits=self.bits, dtype=self.dtype)


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


class WhiteBalance(nn.Module):
    """Module form of :func:`white_balance` (``cfa`` at call time overrides the stored one)."""

    def __init__(self, gains, cfa=None):
        super().__init__()
        self.gains = gains
        self.cfa = cfa

    def forward(self, image, cfa=None):
        return white_balance(image, self.gains, cfa=cfa if cfa is not None else self.cfa)


class GainsGrayWorld(nn.Module):
    """Module form of :func:`gains_gray_world` (returns ``N x 3`` gains)."""

    def __init__(self, cfa=None, saturation: float = 1.0):
        super().__init__()
        self.cfa = cfa
        self.saturation = saturation

    def forward(self, image, cfa=None):
        return gains_gray_world(image, cfa=cfa if cfa is not None else self.cfa, saturation=self.saturation)


class GainsWhiteWorld(nn.Module):
    """Module form of :func:`gains_white_world` (returns ``N x 3`` gains)."""

    def __init__(self, cfa=None, percentile: float = PERCENTILE):
        super().__init__()
        self.cfa = cfa
        self.percentile = percentile

    def forward(self, image, cfa=None):
        return gains_white_world(image, cfa=cfa if cfa is not None else self.cfa, percentile=self.percentile)


class DemosaicBilinear(nn.Module):
    """Module form of :func:`demosaic_bilinear`.

    Examples
    --------
    >>> DemosaicBilinear("RGGB")(torch.ones(1, 1, 4, 4)).shape
    torch.Size([1, 3, 4, 4])
    """

    def __init__(self, cfa=None):
        super().__init__()
        self.cfa = cfa

    def forward(self, mosaic, cfa=None):
        return demosaic_bilinear(mosaic, cfa=cfa if cfa is not None else self.cfa)


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


class CorrectVignetting(nn.Module):
    """Module form of :func:`correct_vignetting` (parameters as the ``vignetting`` stage declares them)."""

    def __init__(self, k1=K1, k2=K2, k3=K3, center=CENTER):
        super().__init__()
        self.k1, self.k2, self.k3, self.center = k1, k2, k3, tuple(center)

    @classmethod
    def from_stage(cls, stage) -> "CorrectVignetting":
        return cls(k1=stage.k1, k2=stage.k2, k3=stage.k3, center=tuple(stage.center))

    def forward(self, image):
        return correct_vignetting(image, k1=self.k1, k2=self.k2, k3=self.k3, center=self.center)


class ApplyColorMatrix(nn.Module):
    """Module form of :func:`apply_color_matrix`; the matrix is a buffer (moves with ``.to``)."""

    def __init__(self, matrix):
        super().__init__()
        m = matrix if isinstance(matrix, torch.Tensor) else torch.as_tensor(np.asarray(matrix, dtype=np.float64))
        self.register_buffer("matrix", m.reshape(-1, 3, 3).squeeze(0) if m.numel() == 9 else m)

    def forward(self, image):
        return apply_color_matrix(image, self.matrix)


class SRGBEncode(nn.Module):
    """Module form of :func:`srgb_encode`."""

    def forward(self, image):
        return srgb_encode(image)


class SRGBDecode(nn.Module):
    """Module form of :func:`srgb_decode`."""

    def forward(self, image):
        return srgb_decode(image)


class GammaEncode(nn.Module):
    """Module form of :func:`gamma_encode`."""

    def __init__(self, gamma: float = GAMMA):
        super().__init__()
        self.gamma = _check_gamma(gamma)

    def forward(self, image):
        return gamma_encode(image, gamma=self.gamma)


class GammaDecode(nn.Module):
    """Module form of :func:`gamma_decode`."""

    def __init__(self, gamma: float = GAMMA):
        super().__init__()
        self.gamma = _check_gamma(gamma)

    def forward(self, image):
        return gamma_decode(image, gamma=self.gamma)


class Encode(nn.Module):
    """Module form of :func:`encode` (the ``gamma`` stage: ``curve`` and ``gamma``)."""

    def __init__(self, curve: str = CURVE, gamma: float = GAMMA):
        super().__init__()
        if curve not in CURVES:
            raise ValueError(f"unknown tone curve {curve!r}: expected one of {', '.join(CURVES)}")
        self.curve, self.gamma = curve, _check_gamma(gamma)

    @classmethod
    def from_stage(cls, stage) -> "Encode":
        return cls(curve=stage.curve, gamma=stage.gamma)

    def forward(self, image):
        return encode(image, curve=self.curve, gamma=self.gamma)


class Quantize(nn.Module):
    """Module form of :func:`quantize`."""

    def __init__(self, bits: int = BITS, dtype: Optional[torch.dtype] = None):
        super().__init__()
        level_dtype(bits)
        self.bits, self.dtype = bits, dtype

    @classmethod
    def from_stage(cls, stage, dtype: Optional[torch.dtype] = None) -> "Quantize":
        return cls(bits=stage.bits, dtype=dtype)

    def forward(self, image):
        return quantize(image, bits=self.bits, dtype=self.dtype)


__all__ = [
    "subtract_black_level", "saturation_mask", "white_balance", "gains_gray_world", "gains_white_world",
    "demosaic_bilinear", "mosaic_rgb", "denoise", "denoise_mean", "denoise_median", "vignetting_gain",
    "correct_vignetting", "apply_color_matrix", "gamma_encode", "gamma_decode", "srgb_encode", "srgb_decode",
    "encode", "quantize", "encode_quantize", "level_dtype",
    "SubtractBlackLevel", "EncodeQuantize", "WhiteBalance", "GainsGrayWorld", "GainsWhiteWorld", "DemosaicBilinear",
    "Denoise", "DenoiseMean", "DenoiseMedian", "CorrectVignetting", "ApplyColorMatrix", "SRGBEncode", "SRGBDecode",
    "GammaEncode", "GammaDecode", "Encode", "Quantize",
]
