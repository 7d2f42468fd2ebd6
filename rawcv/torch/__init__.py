"""rawcv on torch: raw tensors, the ISP stages as torch twins, a torch pipeline backend, augmentation.

This is the only room of rawcv's core that imports torch; ``import rawcv`` never does.

* :mod:`rawcv.torch.tensors` -- the layouts, :func:`pack` / :func:`unpack`, :func:`sensor_tensor`,
  :func:`meta_dict`, :func:`collate_raw` and :class:`RawBatch`.
* :mod:`rawcv.torch.convert` -- :func:`to_tensor`: a capture as a network input (packed
  ``R, G1, G2, B`` or linear RGB).
* :mod:`rawcv.torch.device` -- :func:`resolve_device`.
* :mod:`rawcv.torch.isp` -- every :mod:`rawcv.isp` stage, batched and differentiable, with a
  thin ``nn.Module`` per function.
* :mod:`rawcv.torch.backend` -- :func:`run_pipeline_torch`, a rawcv ``Pipeline`` on CPU or CUDA.
* :mod:`rawcv.torch.augment` -- Bayer-aware crops, flips, exposure and noise; :class:`BayerAugment`.

Examples
--------
>>> import numpy as np
>>> from rawcv.meta import CameraMeta, RawImage
>>> raw = RawImage(np.full((8, 8), 1000, np.uint16), CameraMeta("RGGB", black_level=64, white_level=4095))
>>> to_tensor(raw).shape, to_tensor(raw, "rgb").shape
(torch.Size([4, 4, 4]), torch.Size([3, 8, 8]))
"""

from .._optional import require as _require

_require("torch", "rawcv.torch")

from . import augment, backend, convert, device, isp, tensors
from .augment import (AugmentParams, BayerAugment, add_raw_noise, adjust_exposure, bayer_self_ensemble, crop,
                      flip_mosaic, flip_packed, random_crop, raw_noise_variance)
from .backend import run_numpy_reference, run_pipeline_torch
from .convert import to_tensor
from .device import DeviceError, resolve_device
from .isp import (ApplyColorMatrix, CorrectVignetting, DemosaicBilinear, Denoise, DenoiseMean, DenoiseMedian, Encode,
                  EncodeQuantize, GainsGrayWorld, GainsWhiteWorld, GammaDecode, GammaEncode, Quantize, SRGBDecode,
                  SRGBEncode, SubtractBlackLevel, WhiteBalance, apply_color_matrix, correct_vignetting,
                  demosaic_bilinear, denoise, denoise_mean, denoise_median, encode, encode_quantize, gains_gray_world,
                  gains_white_world, gamma_decode, gamma_encode, level_dtype, mosaic_rgb, quantize, saturation_mask,
                  srgb_decode, srgb_encode, subtract_black_level, vignetting_gain, white_balance)
from .tensors import (PACKED_CHANNELS, RawBatch, cfa_list, collate_raw, meta_dict, meta_from_dict, pack,
                      packed_positions, sensor_tensor, unpack)

__all__ = [
    "augment", "backend", "convert", "device", "isp", "tensors",
    # tensors
    "PACKED_CHANNELS", "packed_positions", "cfa_list", "pack", "unpack", "to_tensor", "sensor_tensor",
    "resolve_device", "DeviceError",
    "meta_dict", "meta_from_dict", "RawBatch", "collate_raw",
    # isp functions
    "subtract_black_level", "saturation_mask", "white_balance", "gains_gray_world", "gains_white_world",
    "demosaic_bilinear", "mosaic_rgb", "denoise", "denoise_mean", "denoise_median", "vignetting_gain",
    "correct_vignetting", "apply_color_matrix", "gamma_encode", "gamma_decode", "srgb_encode", "srgb_decode",
    "encode", "quantize", "encode_quantize", "level_dtype",
    # isp modules
    "SubtractBlackLevel", "EncodeQuantize", "WhiteBalance", "GainsGrayWorld", "GainsWhiteWorld", "DemosaicBilinear",
    "Denoise", "DenoiseMean", "DenoiseMedian", "CorrectVignetting", "ApplyColorMatrix", "SRGBEncode", "SRGBDecode",
    "GammaEncode", "GammaDecode", "Encode", "Quantize",
    # backend
    "resolve_device", "run_pipeline_torch", "run_numpy_reference",
    # augmentation
    "crop", "random_crop", "flip_mosaic", "flip_packed", "bayer_self_ensemble", "adjust_exposure",
    "raw_noise_variance", "add_raw_noise",
    "AugmentParams", "BayerAugment",
]
