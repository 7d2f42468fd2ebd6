"""The sidecar's ``color_space`` says what the pixels are, for every built-in pipeline.

Two checks: the label for each pipeline with and without a colour matrix in the file, and that
the pixels really are in that encoding (undoing the transfer curve the label names, with the sRGB
formula written out here, gives the pipeline's own output without its tone stages).
"""

from __future__ import annotations

import numpy as np
import pytest

from rawcv import load_pipeline
from rawcv.meta import CameraMeta, RawImage
from rawcv.pipeline import Pipeline, available_pipelines

NIKON_XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))

# pipeline -> (label with a colour matrix in the file, label without one)
EXPECTED = {
    "default": ("sRGB", "camera RGB with the sRGB curve"),
    "linear": ("linear sRGB", "linear camera RGB"),
    "core": ("camera RGB with the sRGB curve", "camera RGB with the sRGB curve"),
    "camera": ("linear camera RGB", "linear camera RGB"),
}


def srgb_encode_reference(x):
    x = np.clip(np.asarray(x, np.float64), 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def make_raw(xyz):
    data = np.random.default_rng(5).integers(600, 15520, (24, 30)).astype(np.uint16)
    return RawImage(data, CameraMeta("RGGB", black_level=600, white_level=15520, as_shot_wb=(1.9, 1.0, 1.3),
                                     xyz_to_cam=xyz))


def test_every_builtin_pipeline_has_an_expected_label():
    assert sorted(EXPECTED) == available_pipelines()


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("with_matrix", [True, False])
@pytest.mark.parametrize("backend", ["fused", "numba"])
def test_label_of_each_builtin_pipeline(name, with_matrix, backend):
    raw = make_raw(NIKON_XYZ_TO_CAM if with_matrix else None)
    result = load_pipeline(name).run(raw, backend=backend)
    assert result.color_space == EXPECTED[name][0 if with_matrix else 1]
    assert result.transfer == ("linear" if result.color_space.startswith("linear") else "sRGB")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pixels_are_what_the_label_says(name):
    raw = make_raw(NIKON_XYZ_TO_CAM)
    pipeline = load_pipeline(name)
    result = pipeline.run(raw)
    linear = Pipeline([s for s in pipeline.stages if s.name not in ("gamma", "quantize")]).run(raw).image
    out = result.image.astype(np.float64)
    if result.image.dtype == np.uint8:
        out /= 255
        tolerance = 0.5 / 255 + 1e-6
    else:
        tolerance = 1e-6
    if result.color_space.startswith("linear"):
        expected = np.clip(linear, 0, 1) if result.image.dtype == np.uint8 else linear
    else:
        assert "sRGB" in result.color_space      # the sRGB curve, by the label
        expected = srgb_encode_reference(linear)
    assert np.max(np.abs(out - expected)) <= tolerance


def test_power_law_and_custom_matrix_are_named():
    raw = make_raw(NIKON_XYZ_TO_CAM)
    p = Pipeline(["black_level", "demosaic", {"stage": "color_matrix", "matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
                  {"stage": "gamma", "curve": "power", "gamma": 2.2}, "quantize"])
    assert p.run(raw).color_space == "custom RGB with gamma 2.2"
    p = Pipeline(["black_level", "demosaic", "color_matrix", {"stage": "gamma", "curve": "power", "gamma": 1.8}])
    assert p.run(raw).color_space == "sRGB primaries with gamma 1.8"
    assert p.run(raw, backend="numba").color_space == "sRGB primaries with gamma 1.8"
