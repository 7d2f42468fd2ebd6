"""Synthetic data: procedural scenes with ground truth and the raw noise model.

* :mod:`rawcv.synth.scenes` — :func:`generate_scene` (shape objects on varied backgrounds,
  with masks and labels) and linear scenes from bundled scikit-image photographs.
* :mod:`rawcv.synth.noise` — the heteroscedastic noise model of Brooks et al. (2019):
  sampling, adding noise, and estimating its parameters from a single raw frame.
"""

from .noise import (DEFAULT_SHOT_RANGE, NOISE_PRESETS, ChannelNoise, NoiseEstimate, NoiseParams, add_noise,
                    estimate, mean_read_noise, noise_params_from_iso, noise_variance_map, parse_noise,
                    sample_noise_params)
from .scenes import (CLASS_NAMES, MIN_VISIBLE_FRACTION, SHAPE_CLASSES, Scene, generate_scene, load_skimage_scene,
                     random_scene_crop, scene_from_image, skimage_scenes)

__all__ = [
    "SHAPE_CLASSES", "CLASS_NAMES", "MIN_VISIBLE_FRACTION", "Scene", "generate_scene", "scene_from_image",
    "skimage_scenes", "load_skimage_scene", "random_scene_crop",
    "NoiseParams", "NoiseEstimate", "ChannelNoise", "NOISE_PRESETS", "DEFAULT_SHOT_RANGE", "mean_read_noise",
    "sample_noise_params", "noise_params_from_iso", "parse_noise", "add_noise", "noise_variance_map", "estimate",
]
