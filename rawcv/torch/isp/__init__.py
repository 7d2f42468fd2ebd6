"""The ISP stages of :mod:`rawcv.isp` in torch: batched, any device, differentiable where the maths is.

One module per concern, at the same name as its :mod:`rawcv.isp` module: its functions, their
thin :class:`torch.nn.Module` forms (kornia style: they only store parameters and delegate) and
the stage's twin, which the torch backend calls through
:meth:`rawcv.isp.stage.Stage.torch`.

Every function takes ``N x C x H x W`` tensors (``C x H x W`` and, for mosaics, ``H x W`` too, and
returns the same rank): a Bayer mosaic has ``C = 1``, an RGB image ``C = 3``. Floating inputs keep
their dtype (float32, or float64 for ``gradcheck``); integer inputs are converted to float32. In
float32 each function reproduces its Numba twin operation for operation, so the two agree to a
few units in the last place (``tests/test_stage_registry.py`` checks every registered stage and
Bayer layout). Where a CFA applies, ``cfa`` is one pattern name or a sequence of one per sample.
Parameter defaults come from the stage registry, where they are declared once for every backend.

Examples
--------
>>> import torch
>>> m = torch.full((1, 1, 4, 4), 0.5)
>>> demosaic_bilinear(m, cfa="RGGB").shape
torch.Size([1, 3, 4, 4])
"""

from ...isp.stage import import_modules
from ._common import TorchContext
from .black_level import SubtractBlackLevel, saturation_mask, subtract_black_level
from .color import ApplyColorMatrix, apply_color_matrix
from .demosaic import (DemosaicBilinear, DemosaicGBTF, DemosaicMalvar, demosaic_bilinear, demosaic_gbtf, demosaic_malvar,
                       mosaic_rgb)
from .denoise import DENOISE_METHOD, DENOISE_SIZE, DENOISE_SIZES, Denoise, DenoiseMean, DenoiseMedian, denoise, \
    denoise_mean, denoise_median
from .tone import (BITS, CURVE, CURVES, GAMMA, QUANTIZE_BITS, Encode, EncodeQuantize, GammaDecode, GammaEncode,
                   Quantize, SRGBDecode, SRGBEncode, encode, encode_quantize, gamma_decode, gamma_encode, level_dtype,
                   quantize, srgb_decode, srgb_encode)
from .vignetting import CENTER, K1, K2, K3, CorrectVignetting, correct_vignetting, vignetting_gain
from .white_balance import (PERCENTILE, GainsGrayWorld, GainsWhiteWorld, WhiteBalance, gains_gray_world,
                            gains_white_world, white_balance)

import_modules(__name__, __path__)      # a new module of twins needs no line here

__all__ = [
    "subtract_black_level", "saturation_mask", "white_balance", "gains_gray_world", "gains_white_world",
    "demosaic_bilinear", "demosaic_malvar", "DemosaicMalvar", "demosaic_gbtf", "DemosaicGBTF", "mosaic_rgb", "denoise", "denoise_mean",
    "denoise_median", "vignetting_gain",
    "correct_vignetting", "apply_color_matrix", "gamma_encode", "gamma_decode", "srgb_encode", "srgb_decode",
    "encode", "quantize", "encode_quantize", "level_dtype", "TorchContext",
    "SubtractBlackLevel", "EncodeQuantize", "WhiteBalance", "GainsGrayWorld", "GainsWhiteWorld", "DemosaicBilinear",
    "Denoise", "DenoiseMean", "DenoiseMedian", "CorrectVignetting", "ApplyColorMatrix", "SRGBEncode", "SRGBDecode",
    "GammaEncode", "GammaDecode", "Encode", "Quantize",
    "GAMMA", "CURVE", "CURVES", "BITS", "QUANTIZE_BITS", "DENOISE_METHOD", "DENOISE_SIZE", "DENOISE_SIZES",
    "PERCENTILE", "K1", "K2", "K3", "CENTER",
]
