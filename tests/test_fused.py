"""The fused path equals the stage-by-stage chain, bit for bit on integer outputs, for every Bayer
layout, odd and even sizes, with values below black and above white."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv.meta import CameraMeta, RawImage
from rawcv.pipeline import Pipeline, load_pipeline

LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
SHAPES = ((37, 50), (64, 96), (33, 45))
NIKON_XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))
BLACK = (600.0, 612.0, 590.0, 605.0)
WHITE = 15520.0

CUSTOM = {
    "gray_world": ["black_level", {"stage": "white_balance", "method": "gray_world"}, "demosaic",
                   {"stage": "gamma", "curve": "srgb"}, {"stage": "quantize", "bits": 8}],
    "white_world": ["black_level", {"stage": "white_balance", "method": "white_world", "percentile": 99.0},
                    "demosaic", "color_matrix", "gamma", "quantize"],
    "power16": ["black_level", {"stage": "white_balance", "method": "camera"}, "demosaic",
                {"stage": "vignetting", "k1": 0.3, "k2": -0.1, "k3": 0.05, "center": [0.45, 0.55]},
                "color_matrix", {"stage": "gamma", "curve": "power", "gamma": 2.2},
                {"stage": "quantize", "bits": 16}],
    "srgb16": ["black_level", "white_balance", "demosaic", "gamma", {"stage": "quantize", "bits": 16}],
    "no_gamma8": ["black_level", "demosaic", "quantize"],
    "gamma_float": ["black_level", "white_balance", "demosaic", "color_matrix",
                    {"stage": "gamma", "curve": "power", "gamma": 2.4}],
    "vignetting_float": ["black_level", "demosaic", {"stage": "vignetting", "k1": 0.4}],
    "mosaic_denoise": ["black_level", {"stage": "denoise", "method": "mean", "size": 5}, "white_balance",
                       "demosaic", "color_matrix", "gamma", "quantize"],
    "mosaic_denoise_gray_world": ["black_level", {"stage": "denoise", "method": "median", "size": 3},
                                  {"stage": "white_balance", "method": "gray_world"}, "demosaic", "gamma",
                                  "quantize"],
    "mosaic_vignetting": ["black_level", {"stage": "vignetting", "k1": 0.2, "k3": 0.1}, "white_balance",
                          "demosaic", "gamma", "quantize"],
    "rgb_white_balance": ["black_level", "demosaic", {"stage": "white_balance", "method": "gray_world"},
                          "gamma", "quantize"],
    "mosaic_out": ["black_level", "white_balance", {"stage": "denoise", "method": "mean"}],
    "mosaic_quantized": ["black_level", {"stage": "white_balance", "method": "white_world"},
                         {"stage": "quantize", "bits": 16}],
    "rgb_denoise_tail": ["black_level", "white_balance", "demosaic", {"stage": "denoise", "size": 5},
                         {"stage": "gamma", "curve": "power", "gamma": 1.8}, {"stage": "quantize", "bits": 16}],
}
PIPELINES = ["core", "default", "linear", "camera"] + sorted(CUSTOM)


def make_pipeline(name):
    return Pipeline(CUSTOM[name], name=name) if name in CUSTOM else load_pipeline(name)


def make_raw(shape, cfa, seed) -> RawImage:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 16384, shape).astype(np.uint16)
    # make sure the extremes are there: below black, at/above white
    data.flat[::97] = 0
    data.flat[5::89] = 16383
    data.flat[7::101] = int(WHITE)
    assert (data < min(BLACK)).any() and (data > WHITE).any()
    meta = CameraMeta(cfa, black_level=BLACK, white_level=WHITE, as_shot_wb=(1.9492, 1.0, 1.3437),
                      xyz_to_cam=NIKON_XYZ_TO_CAM)
    return RawImage(data, meta)


def assert_same(fused, numba):
    assert fused.dtype == numba.dtype
    assert fused.shape == numba.shape
    if np.issubdtype(numba.dtype, np.integer):
        if not np.array_equal(fused, numba):
            diff = np.argwhere(fused != numba)
            first = tuple(diff[0])
            raise AssertionError(f"{len(diff)} values differ, first at {first}: fused {fused[first]} "
                                 f"vs stage-by-stage {numba[first]}")
    else:
        np.testing.assert_allclose(fused, numba, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", PIPELINES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_fused_equals_stage_by_stage(cfa, shape, name):
    p = make_pipeline(name)
    raw = make_raw(shape, cfa, seed=LAYOUTS.index(cfa) * 10 + shape[0])
    fused = p.run(raw, backend="fused")
    numba = p.run(raw, backend="numba")
    assert_same(fused.image, numba.image)
    assert fused.kind == numba.kind
    assert fused.color_space == numba.color_space
    assert np.array_equal(fused.saturation, numba.saturation)


@pytest.mark.parametrize("cfa", LAYOUTS)
def test_fused_equals_stage_by_stage_with_overridden_levels(cfa):
    p = Pipeline([{"stage": "black_level", "black": [100, 110, 120, 130], "white": 9000.0}, "white_balance",
                  "demosaic", "gamma", "quantize"])
    raw = make_raw((37, 50), cfa, seed=99)
    assert_same(p.run(raw, backend="fused").image, p.run(raw, backend="numba").image)


def test_fused_plan_of_core_is_a_single_pass():
    # gamma directly followed by quantize is one step (the exact level table), as is white balance
    # followed by highlights (the product capped in the same loop)
    assert load_pipeline("core").fused_plan() == [
        ("fused", ["black_level", "white_balance+highlights", "demosaic", "gamma+quantize"])]
    assert load_pipeline("linear").fused_plan() == [
        ("fused", ["black_level", "white_balance", "demosaic", "color_matrix"])]
    # the 3x3 median runs on rows inside the same pass, so the full default pipeline is one pass too
    assert load_pipeline("default").fused_plan() == [
        ("fused", ["black_level", "white_balance+highlights", "demosaic", "denoise", "vignetting",
                   "color_matrix", "gamma+quantize"])]
    # a 5x5 filter cannot: it splits the schedule into a pass, the stage alone and another pass
    five = Pipeline(["black_level", "white_balance", "demosaic", {"stage": "denoise", "size": 5}, "gamma",
                     "quantize"])
    assert five.fused_plan() == [("fused", ["black_level", "white_balance", "demosaic"]), ("stage", ["denoise"]),
                                 ("stage", ["gamma+quantize"])]


@pytest.mark.parametrize("name", ["core", "default", "power16", "linear"])
def test_out_buffer_is_reused_with_identical_result(name):
    p = make_pipeline(name)
    raw1 = make_raw((37, 50), "GRBG", seed=1)
    raw2 = make_raw((37, 50), "GRBG", seed=2)
    ref1 = p.run(raw1, backend="numba").image
    ref2 = p.run(raw2, backend="numba").image
    buf = np.empty_like(ref1)
    r1 = p.run(raw1, backend="fused", out=buf)
    assert r1.image is buf
    assert_same(buf, ref1)
    r2 = p.run(raw2, backend="fused", out=buf)
    assert r2.image is buf
    assert_same(buf, ref2)
    # a buffer of the wrong shape or dtype is not used (and not written)
    wrong = np.zeros((36, 50, 3), ref1.dtype)
    r3 = p.run(raw1, backend="fused", out=wrong)
    assert r3.image is not wrong and not wrong.any()
    assert_same(r3.image, ref1)


def test_fused_and_numba_agree_on_extreme_values():
    """A mosaic of only 0 (far below black) and 65535 (far above white)."""
    rng = np.random.default_rng(5)
    data = np.where(rng.random((33, 41)) < 0.5, 0, 65535).astype(np.uint16)
    raw = RawImage(data, CameraMeta("BGGR", black_level=BLACK, white_level=WHITE, xyz_to_cam=NIKON_XYZ_TO_CAM))
    for name in ("core", "default", "linear", "power16"):
        p = make_pipeline(name)
        assert_same(p.run(raw, backend="fused").image, p.run(raw, backend="numba").image)


@pytest.mark.parametrize("name", ["core", "default", "linear", "power16", "gray_world"])
@pytest.mark.parametrize("sample", ["nikon_d3200_rose.dng", "kodak_dc50.kdc", "canon_eos_6d_linear.dng"])
def test_fused_equals_stage_by_stage_on_real_files(sample, name, raw_samples):
    import rawcv

    raw = rawcv.read(raw_samples / sample)
    p = make_pipeline(name)
    fused = p.run(raw, backend="fused")
    numba = p.run(raw, backend="numba")
    assert_same(fused.image, numba.image)



RECORD_PIPELINES = ["default", "linear", "gray_world", "white_world", "mosaic_denoise_gray_world"]
# ColorMatrix of the Canon EOS 6D sample: its camera->sRGB matrix has an entry whose 6-decimal
# rounding differs between float64 and float32 (1.499424 vs 1.499423)
CANON_XYZ_TO_CAM = ((0.7034, -0.0804, -0.1014), (-0.4420, 1.2564, 0.2058), (-0.0851, 0.1994, 0.5758))


@pytest.mark.parametrize("name", RECORD_PIPELINES)
@pytest.mark.parametrize("cfa", LAYOUTS)
def test_fused_record_equals_stage_by_stage_record(cfa, name):
    """The record (resolved parameters: estimated gains, the colour matrix) written to sidecars does
    not depend on the backend."""
    p = make_pipeline(name)
    raw = make_raw((37, 50), cfa, seed=3)
    assert p.run(raw, backend="fused").record == p.run(raw, backend="numba").record


def test_fused_record_of_colour_matrix_equals_stage_by_stage():
    """Same as above with a colour matrix whose recorded (rounded) value is sensitive to being
    recorded from a float32 copy rather than the float64 matrix."""
    p = load_pipeline("linear")
    raw = make_raw((37, 50), "RGGB", seed=3)
    raw = RawImage(raw.data, raw.meta.replace(xyz_to_cam=CANON_XYZ_TO_CAM))
    fused, numba = p.run(raw, backend="fused"), p.run(raw, backend="numba")
    np.testing.assert_allclose(fused.image, numba.image, rtol=0, atol=1e-6)   # the image agrees
    assert fused.record[3]["matrix"] == numba.record[3]["matrix"]


@pytest.mark.parametrize("name", ["linear", "gray_world"])
@pytest.mark.parametrize("sample", ["nikon_d3200_rose.dng", "canon_eos_6d_linear.dng"])
def test_fused_record_equals_stage_by_stage_record_real_files(sample, name, raw_samples):
    import rawcv

    p = make_pipeline(name)
    raw = rawcv.read(raw_samples / sample)
    assert p.run(raw, backend="fused").record == p.run(raw, backend="numba").record
