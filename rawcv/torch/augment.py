"""Bayer-aware augmentation: geometric transforms that keep the meaning of every raw value.

A crop of a mosaic at an odd offset, or a flip, changes which colour sits at the top-left corner;
left unnoticed, a network would be fed the wrong colours. Here

* crops of mosaics start at **even** offsets (the CFA is unchanged);
* flips and transposes of a mosaic return the re-mapped pattern (:func:`rawcv.meta.cfa_flip`);
* flips and transposes of a packed ``R, G1, G2, B`` tensor re-order its channels so the order
  stays ``R, G1, G2, B`` (a transpose turns the red-row green into the blue-row green);
* exposure scaling multiplies linear values (optionally clipping at the saturation level);
* :func:`add_raw_noise` draws the heteroscedastic Gaussian noise of the synthetic camera,
  variance ``lambda_shot * max(x, 0) + lambda_read`` (Brooks et al. 2019).

Transforms act on the last two dimensions, so one call handles ``C x H x W`` samples or whole
``N x C x H x W`` batches (with one set of random parameters for the call).

Examples
--------
>>> import torch
>>> m = torch.arange(16.).reshape(1, 4, 4)
>>> flipped, cfa = flip_mosaic(m, "RGGB", horizontal=True)
>>> cfa
'GRBG'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import torch
from torch import nn

from ..meta import cfa_flip, validate_cfa

LAYOUTS = ("packed", "mosaic")


def _pair(size) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _randint(high: int, generator) -> int:
    """Uniform integer in [0, high)."""
    return int(torch.randint(0, high, (1,), generator=generator).item())


def _rand(generator) -> float:
    return float(torch.rand((), generator=generator).item())


# --------------------------------------------------------------------------- rotation


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate the images of ``x`` (``C x H x W`` or ``N x C x H x W``) by ``angle`` radians about
    their centre: bilinear, the corners filled by reflection.

    Unlike flips and transposes this is not exact on packed Bayer planes (each plane turns about
    the same centre, so their half-pixel offsets turn too): it is for inputs already reduced to
    a resolution where a sub-pixel shift between colours does not matter, such as a classifier's.

    Examples
    --------
    >>> x = torch.arange(9.).reshape(1, 3, 3)
    >>> torch.allclose(rotate(x, math.pi / 2), x.rot90(1, (-2, -1)), atol=1e-5)
    True
    """
    batch = x if x.dim() == 4 else x[None]
    c, s = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=batch.dtype, device=batch.device)
    theta = theta[None].expand(batch.shape[0], 2, 3)
    grid = torch.nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection",
                                          align_corners=False)
    return out if x.dim() == 4 else out[0]


class RandomRotation(nn.Module):
    """:func:`rotate` by an angle drawn uniformly from [0, 2 pi) per call."""

    def __init__(self, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rotate(x, 2 * math.pi * _rand(self.generator))


# --------------------------------------------------------------------------- crop


def crop(x: torch.Tensor, top: int, left: int, size, *, layout: str = "mosaic") -> torch.Tensor:
    """Crop ``x[..., top:top+h, left:left+w]``; for a mosaic ``top``, ``left``, ``h``, ``w`` must be even.

    Examples
    --------
    >>> crop(torch.zeros(1, 8, 8), 2, 4, 4).shape
    torch.Size([1, 4, 4])
    """
    h, w = _pair(size)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if layout == "mosaic" and (top % 2 or left % 2 or h % 2 or w % 2):
        raise ValueError(f"a mosaic crop needs even offsets and size to keep the CFA, got "
                         f"offset ({top}, {left}) size ({h}, {w})")
    H, W = x.shape[-2:]
    if top < 0 or left < 0 or top + h > H or left + w > W or h <= 0 or w <= 0:
        raise ValueError(f"crop ({top}, {left}) + ({h}, {w}) does not fit in {H} x {W}")
    return x[..., top:top + h, left:left + w]


def random_crop(x: torch.Tensor, size, *, layout: str = "mosaic", generator: Optional[torch.Generator] = None):
    """A random ``size`` crop; on a mosaic at even offsets (the CFA phase is kept).

    Parameters
    ----------
    x : Tensor
        ``... x H x W``.
    size : int or (int, int)
        Crop height and width (even for a mosaic).
    layout : {"mosaic", "packed"}
        ``"packed"`` tensors (and RGB) may start anywhere.
    generator : torch.Generator, optional

    Returns
    -------
    (Tensor, (int, int))
        The crop and its ``(top, left)`` offset.

    Examples
    --------
    >>> c, (top, left) = random_crop(torch.zeros(1, 10, 12), 4, generator=torch.Generator().manual_seed(0))
    >>> c.shape, top % 2, left % 2
    (torch.Size([1, 4, 4]), 0, 0)
    """
    h, w = _pair(size)
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"crop size ({h}, {w}) exceeds the image ({H}, {W})")
    step = 2 if layout == "mosaic" else 1
    top = step * _randint((H - h) // step + 1, generator)
    left = step * _randint((W - w) // step + 1, generator)
    return crop(x, top, left, (h, w), layout=layout), (top, left)


# --------------------------------------------------------------------------- flips


def flip_spatial(x: torch.Tensor, *, horizontal: bool = False, vertical: bool = False,
                 transpose: bool = False) -> torch.Tensor:
    """Transpose, then flip horizontally, then vertically the last two axes of any tensor (the
    order of :func:`rawcv.meta.cfa_flip`); what an image, a mask or a mosaic's pixels undergo."""
    if transpose:
        x = x.transpose(-2, -1)
    if horizontal:
        x = x.flip(-1)
    if vertical:
        x = x.flip(-2)
    return x


def flip_mosaic(mosaic: torch.Tensor, cfa: str, *, horizontal: bool = False, vertical: bool = False,
                transpose: bool = False):
    """Flip / transpose a mosaic (``... x H x W``, even H and W); returns ``(tensor, new cfa)``.

    The transpose is applied first, then the horizontal and the vertical flip, the order of
    :func:`rawcv.meta.cfa_flip`.

    Examples
    --------
    >>> m = torch.tensor([[1., 2.], [3., 4.]])
    >>> t, cfa = flip_mosaic(m, "GRBG", transpose=True)
    >>> t.tolist(), cfa
    ([[1.0, 3.0], [2.0, 4.0]], 'GBRG')
    """
    H, W = mosaic.shape[-2:]
    if H % 2 or W % 2:
        raise ValueError(f"flipping a mosaic needs even height and width to re-map the CFA, got {H} x {W}")
    x = flip_spatial(mosaic, horizontal=horizontal, vertical=vertical, transpose=transpose)
    return x, cfa_flip(validate_cfa(cfa), horizontal=horizontal, vertical=vertical, transpose=transpose)


def flip_packed(packed: torch.Tensor, *, horizontal: bool = False, vertical: bool = False,
                transpose: bool = False) -> torch.Tensor:
    """The packed tensor (``... x 4 x h x w``, order R, G1, G2, B) of the flipped / transposed mosaic.

    Flips keep every pixel on its row, so the channels only flip; a transpose turns rows into
    columns, so the red-row green becomes the blue-row green: G1 and G2 swap. The result equals
    ``pack(flip_mosaic(unpack(packed, cfa), cfa, ...))`` for any ``cfa``.

    Examples
    --------
    >>> p = torch.arange(4.).reshape(4, 1, 1)
    >>> flip_packed(p, transpose=True).flatten().tolist()
    [0.0, 2.0, 1.0, 3.0]
    """
    if packed.dim() < 3 or packed.shape[-3] != 4:
        raise ValueError(f"packed tensors are ... x 4 x h x w, got shape {tuple(packed.shape)}")
    x = packed[..., [0, 2, 1, 3], :, :] if transpose else packed
    return flip_spatial(x, horizontal=horizontal, vertical=vertical, transpose=transpose)


def bayer_self_ensemble(fn: Callable[..., torch.Tensor], *packed: torch.Tensor) -> torch.Tensor:
    """Mean of ``fn`` over the 8 flips and transposes of packed RGGB inputs, each kept RGGB.

    Geometric self-ensemble (Lim et al. 2017) for a network that takes packed RGGB raw
    (``N x 4 x h x w`` tensors, e.g. the image and its noise-variance map) and returns a
    full-resolution image (``N x C x 2h x 2w``). A transpose keeps an RGGB mosaic RGGB; a flip
    would make it GRBG / GBRG / BGGR, so the flipped mosaic loses its first and last column (row)
    and is RGGB again ("Bayer preserving augmentation", Liu et al. 2019). Each output is mapped
    back to the input's frame and every pixel is the mean of the estimates that cover it (8
    inside, at least 2 on the outermost rows and columns).

    Examples
    --------
    >>> from rawcv.torch.isp import demosaic_bilinear
    >>> from rawcv.torch.tensors import unpack
    >>> bilinear = lambda p: demosaic_bilinear(unpack(p, "RGGB"), cfa="RGGB")
    >>> p = torch.rand(1, 4, 8, 8, dtype=torch.float64)
    >>> y = bayer_self_ensemble(bilinear, p)
    >>> bool(torch.allclose(y[..., 2:-2, 2:-2], bilinear(p)[..., 2:-2, 2:-2]))   # bilinear is symmetric
    True
    """
    from .tensors import pack, unpack

    if not packed or any(p.dim() != 4 or p.shape[1] != 4 for p in packed):
        raise ValueError("bayer_self_ensemble takes N x 4 x h x w packed RGGB tensors")
    mosaics = [unpack(p, "RGGB") for p in packed]
    height, width = mosaics[0].shape[-2:]
    total = count = None
    for transpose in (False, True):
        for horizontal in (False, True):
            for vertical in (False, True):
                flips = dict(horizontal=horizontal, vertical=vertical, transpose=transpose)
                rows = slice(1, -1) if vertical else slice(None)
                cols = slice(1, -1) if horizontal else slice(None)
                y = fn(*[pack(flip_spatial(m, **flips)[..., rows, cols], "RGGB") for m in mosaics])
                frame = y.new_zeros(y.shape[:2] + ((width, height) if transpose else (height, width)))
                covered = torch.zeros(frame.shape[-2:], dtype=y.dtype, device=y.device)
                frame[..., rows, cols] = y
                covered[rows, cols] = 1
                # undo in reverse order: the flips, then the transpose
                undo = lambda t: flip_spatial(flip_spatial(t, horizontal=horizontal, vertical=vertical),  # noqa: E731
                                              transpose=transpose)
                total = undo(frame) if total is None else total + undo(frame)
                count = undo(covered) if count is None else count + undo(covered)
    return total / count


# --------------------------------------------------------------------------- photometric


def adjust_exposure(x: torch.Tensor, factor, *, clip: bool = False, saturation: float = 1.0) -> torch.Tensor:
    """Multiply linear values by ``factor`` (a number, or one per sample for ``N x ...`` tensors).

    With ``clip`` the result is clipped at ``saturation`` (what a sensor does when over-exposed).

    Examples
    --------
    >>> adjust_exposure(torch.tensor([0.25, 0.75]), 2.0, clip=True).tolist()
    [0.5, 1.0]
    """
    f = factor
    if isinstance(f, torch.Tensor) and f.dim() == 1 and f.numel() == x.shape[0] and x.dim() > 1:
        f = f.to(x).reshape((-1,) + (1,) * (x.dim() - 1))
    out = x * f
    return out.clamp(max=saturation) if clip else out


def _per_sample(v, x: torch.Tensor):
    if isinstance(v, torch.Tensor):
        v = v.to(x)
        if v.dim() == 1 and v.numel() == x.shape[0] and x.dim() > 1 and v.numel() > 1:
            v = v.reshape((-1,) + (1,) * (x.dim() - 1))
    return v


def raw_noise_variance(x: torch.Tensor, lambda_shot, lambda_read) -> torch.Tensor:
    """The model variance ``lambda_shot * max(x, 0) + lambda_read`` (NumPy twin: ``NoiseParams.variance``).

    Examples
    --------
    >>> raw_noise_variance(torch.tensor([-0.5, 0.5]), 0.01, 0.001).tolist()
    [0.0010000000474974513, 0.006000000052154064]
    """
    return _per_sample(lambda_shot, x) * x.clamp(min=0) + _per_sample(lambda_read, x)


def add_raw_noise(x: torch.Tensor, lambda_shot, lambda_read,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``x + sqrt(lambda_shot * max(x, 0) + lambda_read) * N(0, 1)``: the synthetic camera's noise.

    The Gaussian approximation of shot (Poisson) plus read noise on normalised linear raw values
    (Brooks et al., CVPR 2019), the law of :func:`rawcv.synth.noise.add_noise`; not clipped.

    Parameters
    ----------
    x : Tensor
        Clean normalised linear raw values, any shape.
    lambda_shot, lambda_read : float or Tensor
        Variance parameters (a tensor of ``N`` values gives one pair per sample).
    generator : torch.Generator, optional
        On ``x``'s device.

    Examples
    --------
    >>> y = add_raw_noise(torch.full((1000,), 0.5), 1e-3, 1e-5, torch.Generator().manual_seed(0))
    >>> abs(float(y.var()) - (1e-3 * 0.5 + 1e-5)) < 1e-4
    True
    """
    std = raw_noise_variance(x, lambda_shot, lambda_read).clamp(min=0).sqrt()
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + std * z


# --------------------------------------------------------------------------- the module


@dataclass
class AugmentParams:
    """One draw of :class:`BayerAugment`'s random parameters (apply it to several tensors alike)."""

    top: int = 0
    left: int = 0
    size: Optional[Tuple[int, int]] = None
    horizontal: bool = False
    vertical: bool = False
    transpose: bool = False
    exposure: float = 1.0
    lambda_shot: float = 0.0
    lambda_read: float = 0.0


NoiseSpec = Union[None, Tuple[float, float], Callable]


class BayerAugment(nn.Module):
    """Random crop, flips, transpose, exposure and noise for mosaics or packed tensors.

    Parameters
    ----------
    crop : int or (int, int), optional
        Output size in the tensor's own pixels (even for a mosaic); ``None``: no crop.
    flip : bool
        Random horizontal and vertical flips (each with probability 1/2).
    transpose : bool
        Random transpose (probability 1/2); needs square crops to keep batch shapes equal.
    exposure : (float, float), optional
        Range of the exposure factor, drawn log-uniformly; ``None``: no scaling.
    noise : (float, float), callable or None
        ``(lambda_shot, lambda_read)``, an object with those attributes (e.g. rawcv's
        ``NoiseParams``), or a callable ``generator -> (lambda_shot, lambda_read)`` for random
        levels; ``None``: no noise.
    layout : {"packed", "mosaic"}
        ``"packed"``: ``... x 4 x h x w`` in R, G1, G2, B order, returned in that order;
        ``"mosaic"``: ``... x H x W`` with its CFA; ``forward`` returns ``(tensor, new cfa)``.
    clip : bool
        Clip at ``saturation`` after the exposure scaling.
    generator : torch.Generator, optional
        Source of the random parameters (and of the noise on CPU tensors).

    Examples
    --------
    >>> aug = BayerAugment(crop=4, layout="mosaic", generator=torch.Generator().manual_seed(1))
    >>> out, cfa = aug(torch.rand(1, 8, 8), "RGGB")
    >>> out.shape, cfa in ("RGGB", "BGGR", "GRBG", "GBRG")
    (torch.Size([1, 4, 4]), True)
    """

    def __init__(self, crop=None, flip: bool = True, transpose: bool = True, exposure=(0.5, 2.0),
                 noise: NoiseSpec = None, *, layout: str = "packed", clip: bool = False,
                 saturation: float = 1.0, generator: Optional[torch.Generator] = None):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
        self.crop = None if crop is None else _pair(crop)
        if self.crop is not None and layout == "mosaic" and (self.crop[0] % 2 or self.crop[1] % 2):
            raise ValueError(f"a mosaic crop size must be even, got {self.crop}")
        if exposure is not None:
            lo, hi = (float(v) for v in exposure)
            if not 0 < lo <= hi:
                raise ValueError(f"exposure range must satisfy 0 < lo <= hi, got {exposure!r}")
            exposure = (lo, hi)
        self.flip, self.transpose, self.exposure, self.noise = flip, transpose, exposure, noise
        self.layout, self.clip, self.saturation, self.generator = layout, clip, saturation, generator

    def _noise_levels(self):
        spec = self.noise
        if spec is None:
            return 0.0, 0.0
        if hasattr(spec, "lambda_shot") and hasattr(spec, "lambda_read"):
            return float(spec.lambda_shot), float(spec.lambda_read)
        if callable(spec):
            spec = spec(self.generator)
            if hasattr(spec, "lambda_shot"):
                return float(spec.lambda_shot), float(spec.lambda_read)
        shot, read = spec
        return float(shot), float(read)

    def sample_params(self, shape) -> AugmentParams:
        """Draw the random parameters for a tensor of ``shape``."""
        g = self.generator
        p = AugmentParams()
        if self.crop is not None:
            H, W = shape[-2:]
            h, w = self.crop
            if h > H or w > W:
                raise ValueError(f"crop size ({h}, {w}) exceeds the image ({H}, {W})")
            step = 2 if self.layout == "mosaic" else 1
            p.top = step * _randint((H - h) // step + 1, g)
            p.left = step * _randint((W - w) // step + 1, g)
            p.size = (h, w)
        if self.flip:
            p.horizontal = _rand(g) < 0.5
            p.vertical = _rand(g) < 0.5
        if self.transpose:
            p.transpose = _rand(g) < 0.5
        if self.exposure is not None:
            lo, hi = self.exposure
            p.exposure = math.exp(math.log(lo) + _rand(g) * (math.log(hi) - math.log(lo)))
        p.lambda_shot, p.lambda_read = self._noise_levels()
        return p

    def apply(self, x: torch.Tensor, params: AugmentParams, cfa: Optional[str] = None, *, noise: bool = True):
        """Apply drawn ``params``; ``noise=False`` for a clean target that must match geometrically."""
        if params.size is not None:
            x = crop(x, params.top, params.left, params.size, layout=self.layout)
        flips = dict(horizontal=params.horizontal, vertical=params.vertical, transpose=params.transpose)
        if self.layout == "mosaic":
            if cfa is None:
                raise ValueError("BayerAugment(layout='mosaic') needs the mosaic's cfa")
            x, cfa = flip_mosaic(x, cfa, **flips)
        else:
            x = flip_packed(x, **flips)
        if params.exposure != 1.0:
            x = adjust_exposure(x, params.exposure, clip=self.clip, saturation=self.saturation)
        if noise and (params.lambda_shot > 0 or params.lambda_read > 0):
            gen = self.generator if self.generator is None or self.generator.device == x.device else None
            x = add_raw_noise(x, params.lambda_shot, params.lambda_read, generator=gen)
        return (x, cfa) if self.layout == "mosaic" else x

    def forward(self, x: torch.Tensor, cfa: Optional[str] = None):
        return self.apply(x, self.sample_params(x.shape), cfa)


__all__ = ["rotate", "RandomRotation", "crop", "random_crop", "flip_spatial", "flip_mosaic", "flip_packed",
           "bayer_self_ensemble", "adjust_exposure", "raw_noise_variance", "add_raw_noise", "AugmentParams", "BayerAugment"]
