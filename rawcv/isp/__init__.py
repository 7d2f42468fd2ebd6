"""Numba ISP stages. Each concern module holds public functions that validate, convert once to
float32, allocate the output and call a private ``@njit(parallel=True, cache=True)`` kernel, and
ends with the :class:`~rawcv.isp.stage.Stage` declarations built on them (see
:mod:`rawcv.isp.stage`)."""

# in the order of a pipeline, which is the order `rawcv stages` lists the stages in
from ._validate import MIN_SIDE
from .stage import STAGES, Fusion, FusedOp, Param, Stage, import_modules, make_stage, register_stage
from .black_level import saturation_mask, subtract_black_level
from .white_balance import (gains_gray_world, gains_white_world, normalize_gains, white_balance,
                            white_balance_gray_world, white_balance_white_world)
from .demosaic import DEMOSAIC_MIN_SIDE, demosaic_bilinear, demosaic_gbtf, demosaic_half, demosaic_malvar, mosaic_rgb
from .highlights import clip_highlights, reconstruct_highlights
from .denoise import denoise, denoise_mean, denoise_median, denoise_min_side
from .vignetting import VignettingModel, apply_vignetting, correct_vignetting, fit_vignetting, vignetting_gain
from .color import SRGB_TO_XYZ, apply_color_matrix, camera_to_srgb_matrix
from .tone import encode, encode_quantize, gamma_decode, gamma_encode, quantize, srgb_decode, srgb_encode

import_modules(__name__, __path__)      # a new concern module needs no line here

__all__ = [
    "subtract_black_level", "saturation_mask", "white_balance", "gains_gray_world", "gains_white_world",
    "white_balance_gray_world", "white_balance_white_world", "normalize_gains", "demosaic_bilinear",
    "demosaic_malvar", "demosaic_gbtf", "demosaic_half", "clip_highlights", "reconstruct_highlights",
    "mosaic_rgb", "denoise", "denoise_mean", "denoise_median", "VignettingModel", "vignetting_gain",
    "correct_vignetting", "apply_vignetting", "fit_vignetting", "SRGB_TO_XYZ", "camera_to_srgb_matrix",
    "apply_color_matrix", "gamma_encode", "gamma_decode", "srgb_encode", "srgb_decode", "encode", "quantize",
    "encode_quantize",
    "MIN_SIDE", "DEMOSAIC_MIN_SIDE", "denoise_min_side",
    "Stage", "Param", "Fusion", "FusedOp", "STAGES", "register_stage", "make_stage",
]
