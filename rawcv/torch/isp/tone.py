"""Tone curves (the output colour spaces' transfer curves and power laws), quantisation and the
exact encode + quantise levels in torch."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
from torch import nn

from ...colorspaces import TRANSFER_CURVES
from ...isp.tone import encode_quantize_table

from ...isp.tone import Gamma as GammaStage, Quantize as QuantizeStage, EncodeQuantize as EncodeQuantizeStage
from ._common import _float, stage_choices, stage_default

GAMMA = stage_default("gamma", "gamma")
CURVE = stage_default("gamma", "curve")
CURVES = stage_choices("gamma", "curve")
BITS = stage_default("quantize", "bits")
QUANTIZE_BITS = stage_choices("quantize", "bits")
SRGB_LINEAR_MAX = 0.0031308     # encode: linear segment up to here
SRGB_ENCODED_MAX = 0.04045      # decode: linear segment up to here
ADOBE_GAMMA = TRANSFER_CURVES["adobe"].gamma
_ROMM = TRANSFER_CURVES["prophoto"]


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


def romm_encode(image: torch.Tensor) -> torch.Tensor:
    """ProPhoto's ROMM RGB curve: ``16 x`` below ``1/512``, ``x^(1/1.8)`` above (both 1/32 there).

    The power branch is evaluated on ``max(x, 1/512)`` so its gradient stays finite where it is
    not selected. Twin of :func:`rawcv.isp.encode` with ``curve="prophoto"``.

    Examples
    --------
    >>> [round(v, 4) for v in romm_encode(torch.tensor([0.001, 1 / 512, 0.5])).tolist()]
    [0.016, 0.0312, 0.6804]
    """
    x = _float(image)
    knee = _exponent(_ROMM.linear_knee, x.dtype)
    curve = x.clamp(min=knee).pow(_exponent(1.0 / _ROMM.gamma, x.dtype))
    return torch.where(x < knee, x * (1.0 / _ROMM.c), curve)


def encode(image: torch.Tensor, *, curve: str = CURVE, gamma: float = GAMMA) -> torch.Tensor:
    """The named tone curve (one of :data:`CURVES`; ``"power"`` with ``gamma``): the ``gamma`` stage.

    Examples
    --------
    >>> encode(torch.tensor([0.25]), curve="power", gamma=2.0).tolist()
    [0.5]
    >>> encode(torch.tensor([0.25]), curve="linear").tolist()
    [0.25]
    """
    if curve == "srgb":
        return srgb_encode(image)
    if curve == "power":
        return gamma_encode(image, gamma=gamma)
    if curve == "adobe":
        return gamma_encode(image, gamma=ADOBE_GAMMA)
    if curve == "prophoto":
        return romm_encode(image)
    if curve == "linear":
        return _float(image)
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


@GammaStage.torch_twin
def _gamma_stage(stage, x, ctx):
    return encode(x, curve=stage.curve, gamma=stage.gamma)


@QuantizeStage.torch_twin
def _quantize_stage(stage, x, ctx):
    return quantize(x, bits=stage.bits, dtype=level_dtype(stage.bits))


@EncodeQuantizeStage.torch_twin
def _encode_quantize_stage(stage, x, ctx):
    return encode_quantize(x, curve=stage.curve, gamma=stage.gamma, bits=stage.bits, dtype=level_dtype(stage.bits))
