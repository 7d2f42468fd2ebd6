"""The raw noise model, at the top level for convenience: ``rawcv.noise.estimate(raw)``.

The implementation lives in :mod:`rawcv.synth.noise` (one concept, one place).
"""

from .synth.noise import (NOISE_PRESETS, NoiseEstimate, NoiseParams, add_noise, estimate, noise_params_from_iso,
                          noise_variance_map, parse_noise, sample_noise_params)

__all__ = ["NoiseParams", "NoiseEstimate", "NOISE_PRESETS", "add_noise", "estimate", "noise_params_from_iso",
           "noise_variance_map", "parse_noise", "sample_noise_params"]
