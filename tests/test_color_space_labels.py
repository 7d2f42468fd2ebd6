"""The sidecar's ``color_space`` says what the pixels are, for every built-in pipeline and every
output colour space (``rawcv process --colorspace``).

Two checks: the label for each pipeline and space with and without a colour matrix in the file,
and that the pixels really are in that encoding (undoing the transfer curve the label names, with
the curves' formulas written out here, gives the pipeline's own output without its tone stages).
"""

from __future__ import annotations

import numpy as np
import pytest

from rawcv import load_pipeline
from rawcv.cli.overrides import with_colorspace
from rawcv.colorspaces import COLORSPACE_CHOICES
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


# --colorspace on the default pipeline -> (label, transfer) with a colour matrix in the file
SPACE_LABELS = {
    "srgb": ("sRGB", "sRGB"),
    "display-p3": ("Display P3", "sRGB"),
    "adobe": ("Adobe RGB (1998)", "Adobe RGB (gamma 563/256)"),
    "prophoto": ("ProPhoto RGB", "ROMM (gamma 1.8)"),
    "xyz": ("CIE XYZ (D65) with the sRGB curve", "sRGB"),
    "camera": ("camera RGB with the sRGB curve", "sRGB"),
    "linear-srgb": ("linear sRGB", "linear"),
    "linear-display-p3": ("linear Display P3", "linear"),
    "linear-adobe": ("linear Adobe RGB (1998)", "linear"),
    "linear-prophoto": ("linear ProPhoto RGB", "linear"),
    "linear-xyz": ("linear CIE XYZ (D65)", "linear"),
    "linear-camera": ("linear camera RGB", "linear"),
}


def srgb_encode_reference(x):
    x = np.clip(np.asarray(x, np.float64), 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


# the transfer curves by their standards: IEC 61966-2-1, Adobe RGB (1998) 4.3.4.2, ROMM RGB (ISO 22028-2)
ENCODE_REFERENCE = {
    "sRGB": srgb_encode_reference,
    "Adobe RGB (gamma 563/256)": lambda x: np.clip(np.asarray(x, np.float64), 0, 1) ** (256 / 563),
    "ROMM (gamma 1.8)": lambda x: np.where(np.clip(x, 0, 1) < 1 / 512, 16 * np.clip(x, 0, 1),
                                           np.clip(x, 0, 1) ** (1 / 1.8)),
}


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


def test_every_colorspace_choice_has_an_expected_label():
    assert sorted(SPACE_LABELS) == sorted(COLORSPACE_CHOICES)


@pytest.mark.parametrize("choice", sorted(SPACE_LABELS))
@pytest.mark.parametrize("backend", ["fused", "numba"])
def test_label_of_each_colorspace(choice, backend):
    result = with_colorspace(load_pipeline("default"), choice).run(make_raw(NIKON_XYZ_TO_CAM), backend=backend)
    assert (result.color_space, result.transfer) == SPACE_LABELS[choice]


@pytest.mark.parametrize("choice", ["adobe", "prophoto", "display-p3", "linear-adobe"])
def test_without_a_colour_matrix_the_primaries_stay_the_cameras(choice):
    result = with_colorspace(load_pipeline("default"), choice).run(make_raw(None))
    transfer = SPACE_LABELS[choice][1]
    assert result.transfer == transfer
    assert result.color_space.startswith("linear camera RGB" if transfer == "linear" else "camera RGB with the ")


@pytest.mark.parametrize("choice", sorted(SPACE_LABELS))
def test_pixels_of_each_colorspace_are_what_the_label_says(choice):
    raw = make_raw(NIKON_XYZ_TO_CAM)
    pipeline = with_colorspace(load_pipeline("default"), choice).with_params("quantize", bits=16)
    result = pipeline.run(raw)
    linear = Pipeline([s for s in pipeline.stages if s.name not in ("gamma", "quantize")]).run(raw).image
    encode = ENCODE_REFERENCE.get(result.transfer, lambda x: np.clip(x, 0, 1))
    expected = encode(linear.astype(np.float64))
    np.testing.assert_allclose(result.image / 65535, expected, rtol=0, atol=0.5 / 65535 + 2e-6)


def test_power_law_and_custom_matrix_are_named():
    raw = make_raw(NIKON_XYZ_TO_CAM)
    p = Pipeline(["black_level", "demosaic", {"stage": "color_matrix", "matrix": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
                  {"stage": "gamma", "curve": "power", "gamma": 2.2}, "quantize"])
    assert p.run(raw).color_space == "custom RGB with gamma 2.2"
    p = Pipeline(["black_level", "demosaic", "color_matrix", {"stage": "gamma", "curve": "power", "gamma": 1.8}])
    assert p.run(raw).color_space == "sRGB primaries with gamma 1.8"
    assert p.run(raw, backend="numba").color_space == "sRGB primaries with gamma 1.8"


def test_a_space_with_another_spaces_curve_is_named():
    raw = make_raw(NIKON_XYZ_TO_CAM)
    p = Pipeline(["black_level", "demosaic", {"stage": "color_matrix", "space": "prophoto"}, "gamma"])
    assert p.run(raw).color_space == "ProPhoto RGB primaries with the sRGB curve"
    p = Pipeline(["black_level", "demosaic", {"stage": "color_matrix", "space": "srgb"},
                  {"stage": "gamma", "curve": "adobe"}])
    assert p.run(raw).color_space == "sRGB primaries with the Adobe RGB curve (gamma 563/256)"
    p = Pipeline(["black_level", "demosaic", {"stage": "color_matrix", "space": "xyz"},
                  {"stage": "gamma", "curve": "power", "gamma": 2.2}])
    assert p.run(raw).color_space == "CIE XYZ (D65) with gamma 2.2"
