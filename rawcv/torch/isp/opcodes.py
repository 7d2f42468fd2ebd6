"""The DNG opcode stages in torch: polynomial and gain maps, the rectilinear warp and the trim.

Twins of :mod:`rawcv.isp.opcodes`: the per-pixel maths runs in float64 where the Numba kernels do
(the polynomial, the gain map's interpolation), so the two agree to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from ...isp.frame import RAW, RAW_RGB
from ...isp.opcodes import (GainMapStage, MapPolynomialStage, TrimBoundsStage, WarpRectilinearStage, area_array,
                            gain_map_tables, warp_geometry)
from ..tensors import _batched
from ._common import _check_channels, _float

_RAW_SCALE = 65535.0


def _area_mask(shape, area, device) -> torch.Tensor:
    """``1 x C x H x W`` bool: the samples a per-pixel opcode with ``area`` touches."""
    _, c, h, w = shape
    a = area_array(area, (h, w))
    top, left, bottom, right, plane, planes, row_pitch, col_pitch = (int(v) for v in a)
    rows = torch.zeros(h, dtype=torch.bool, device=device)
    rows[top:bottom:row_pitch] = True
    cols = torch.zeros(w, dtype=torch.bool, device=device)
    cols[left:right:col_pitch] = True
    planes_mask = torch.zeros(c, dtype=torch.bool, device=device)
    planes_mask[plane:min(plane + planes, c)] = True
    return planes_mask.reshape(1, c, 1, 1) & rows.reshape(1, 1, h, 1) & cols.reshape(1, 1, 1, w)


def map_polynomial(image: torch.Tensor, *, coefficients, area=None) -> torch.Tensor:
    """Twin of :func:`rawcv.isp.opcodes.map_polynomial` (``N x C x H x W``, C = 1 or 3).

    Examples
    --------
    >>> map_polynomial(torch.full((1, 1, 2, 2), 0.5), coefficients=[0.0, 0.0, 1.0]).flatten().tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "map_polynomial")
    v = x.to(torch.float64)
    acc = torch.full_like(v, float(coefficients[-1]))
    for c in reversed(coefficients[:-1]):
        acc = acc * v + float(c)
    return restore(torch.where(_area_mask(x.shape, area, x.device), acc.to(x.dtype), x))


def gain_map(shape, *, grid, points, spacing, origin, device=None) -> torch.Tensor:
    """``1 x C x H x W`` gains of a gain map for an image of ``shape`` (``N x C x H x W``)."""
    _, c, h, w = shape
    (r1, r2, rf), (c1, c2, cf) = (tuple(torch.as_tensor(a, device=device) for a in t)
                                  for t in gain_map_tables((h, w), points, spacing, origin))
    g = torch.as_tensor(np.asarray(grid, dtype=np.float64), device=device)
    planes = torch.clamp(torch.arange(c, device=device), max=g.shape[2] - 1)
    g = g[:, :, planes].permute(2, 0, 1)                                       # C x rows x cols of the map
    rf, cf = rf.reshape(1, h, 1), cf.reshape(1, 1, w)
    left = g[:, r1][:, :, c1] * (1.0 - rf) + g[:, r2][:, :, c1] * rf
    right = g[:, r1][:, :, c2] * (1.0 - rf) + g[:, r2][:, :, c2] * rf
    return (left * (1.0 - cf) + right * cf).unsqueeze(0)


def apply_gain_map(image: torch.Tensor, *, gains, spacing=(1.0, 1.0), origin=(0.0, 0.0), area=None) -> torch.Tensor:
    """Twin of :func:`rawcv.isp.opcodes.apply_gain_map`.

    Examples
    --------
    >>> ramp = np.array([1.0, 3.0]).reshape(1, 2, 1)
    >>> apply_gain_map(torch.ones(1, 1, 2, 4), gains=ramp)[0, 0, 0].tolist()
    [1.25, 1.75, 2.25, 2.75]
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (1, 3), "apply_gain_map")
    grid = np.asarray(gains, dtype=np.float64)
    gain = gain_map(x.shape, grid=grid, points=grid.shape[:2], spacing=spacing, origin=origin,
                    device=x.device).to(torch.float32)
    out = (x.to(torch.float32) * gain).to(x.dtype) if x.dtype == torch.float32 else x * gain.to(x.dtype)
    return restore(torch.where(_area_mask(x.shape, area, x.device), out, x))


def warp_rectilinear(image: torch.Tensor, *, coefficients, center=(0.5, 0.5)) -> torch.Tensor:
    """Twin of :func:`rawcv.isp.opcodes.warp_rectilinear` (``N x 3 x H x W``), bilinear, edges clamped.

    Examples
    --------
    >>> img = torch.rand(1, 3, 6, 8)
    >>> bool(torch.allclose(warp_rectilinear(img, coefficients=[1, 0, 0, 0, 0, 0]), img))
    True
    """
    x, restore = _batched(_float(image), "image")
    _check_channels(x, (3,), "warp_rectilinear")
    n, c, h, w = x.shape
    cy, cx, m = (float(v) for v in warp_geometry((h, w), center))
    k = torch.as_tensor(np.asarray(coefficients, dtype=np.float64).reshape(-1, 6), device=x.device)
    k = k[torch.clamp(torch.arange(c, device=x.device), max=k.shape[0] - 1)].reshape(c, 6, 1, 1)
    dy = ((torch.arange(h, dtype=torch.float64, device=x.device) - cy) / m).reshape(1, h, 1)
    dx = ((torch.arange(w, dtype=torch.float64, device=x.device) - cx) / m).reshape(1, 1, w)
    r2 = dx * dx + dy * dy
    f = k[:, 0] + r2 * (k[:, 1] + r2 * (k[:, 2] + r2 * k[:, 3]))
    sx = cx + m * (f * dx + k[:, 4] * 2.0 * dx * dy + k[:, 5] * (r2 + 2.0 * dx * dx))
    sy = cy + m * (f * dy + k[:, 5] * 2.0 * dx * dy + k[:, 4] * (r2 + 2.0 * dy * dy))
    sy, sx = sy.clamp(0.0, h - 1.0), sx.clamp(0.0, w - 1.0)
    y0 = sy.to(torch.int64).clamp(max=max(h - 2, 0))
    x0 = sx.to(torch.int64).clamp(max=max(w - 2, 0))
    fy, fx = sy - y0, sx - x0
    y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
    flat = x.to(torch.float64).reshape(n, c, h * w)

    def tap(yy, xx):
        return torch.gather(flat, 2, (yy * w + xx).reshape(1, c, h * w).expand(n, c, h * w)).reshape(n, c, h, w)

    top = tap(y0, x0) * (1.0 - fx) + tap(y0, x1) * fx
    bottom = tap(y1, x0) * (1.0 - fx) + tap(y1, x1) * fx
    return restore((top * (1.0 - fy) + bottom * fy).to(x.dtype))


def _on_raw_values(fn, x, ctx):
    """``fn`` on fractions of 65535 where ``x`` holds stored raw values (list 1), rounded back."""
    if getattr(ctx, "kind", None) not in (RAW, RAW_RGB):
        return fn(x)
    y = fn(x / _RAW_SCALE)
    return torch.floor(torch.clamp(y, 0.0, 1.0) * _RAW_SCALE + 0.5)


@MapPolynomialStage.torch_twin
def _map_polynomial_stage(stage, x, ctx):
    return _on_raw_values(lambda v: map_polynomial(v, coefficients=stage.coefficients, area=stage.area), x, ctx)


@GainMapStage.torch_twin
def _gain_map_stage(stage, x, ctx):
    return _on_raw_values(lambda v: apply_gain_map(v, gains=stage.grid(), spacing=stage.spacing,
                                                   origin=stage.origin, area=stage.area), x, ctx)


@WarpRectilinearStage.torch_twin
def _warp_rectilinear_stage(stage, x, ctx):
    return warp_rectilinear(x, coefficients=stage.coefficients, center=tuple(stage.center))


@TrimBoundsStage.torch_twin
def _trim_bounds_stage(stage, x, ctx):
    t, l, b, r = stage.window(tuple(x.shape[-2:]))
    return x[..., t:b, l:r]


__all__ = ["map_polynomial", "apply_gain_map", "gain_map", "warp_rectilinear"]
