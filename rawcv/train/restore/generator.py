"""The generator's input and output: packed raw + its noise variance in, white-balanced linear
camera RGB out (optionally as a correction of the bilinear demosaic)."""

from __future__ import annotations

import torch

from ...options import VARIANCE_SCALE

DEFAULT_GENERATOR = "unet_generator"
DEFAULT_GENERATOR_KWARGS = {"base_width": 16}
#: Input channels of a generator: 4 packed raw planes and their 4 noise-variance maps.
GENERATOR_CHANNELS = 8


def generator_input(packed: torch.Tensor, variance: torch.Tensor, variance_scale: float = VARIANCE_SCALE):
    """``concat(packed, variance_scale * variance)``: the generator's 8 input channels."""
    return torch.cat([packed, variance * variance_scale], dim=1)


def bilinear_base(packed: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaic (the ISP's torch twin) of packed RGGB raw: ``N x 4 x h x w`` -> camera RGB
    ``N x 3 x 2h x 2w``, the starting point a ``residual`` generator corrects."""
    from ...torch.isp import demosaic_bilinear
    from ...torch.tensors import unpack

    return demosaic_bilinear(unpack(packed.float(), "RGGB"), cfa="RGGB")


def apply_gains(rgb: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Camera RGB (``N x 3 x H x W``) times per-image white-balance gains (``N x 3``)."""
    return rgb * gains.to(rgb)[:, :, None, None]


def generate_batch(model, batch: dict, *, variance_scale: float = VARIANCE_SCALE, residual: bool = False):
    """The generator's white-balanced linear RGB for a batch of :class:`rawcv.data.restore.RestorePairs`
    (``input``, ``variance``, ``gains``); ``residual``: its output corrects the bilinear demosaic."""
    y = model(generator_input(batch["input"], batch["variance"], variance_scale))
    if residual:
        y = y + bilinear_base(batch["input"])
    return apply_gains(y, batch["gains"])


def generator_options(ckpt: dict) -> dict:
    """The :func:`~rawcv.train.restore.restore_packed` keywords a trained generator was trained
    with (its checkpoint's ``variance_scale`` and ``residual``)."""
    cfg = ckpt["config"]
    return {"variance_scale": float(cfg.get("variance_scale", VARIANCE_SCALE)),
            "residual": bool(cfg.get("residual", False))}


__all__ = ["generator_input", "bilinear_base", "apply_gains", "generate_batch", "generator_options",
           "DEFAULT_GENERATOR", "DEFAULT_GENERATOR_KWARGS", "GENERATOR_CHANNELS"]
