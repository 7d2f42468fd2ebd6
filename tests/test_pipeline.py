"""Pipeline: construction, the shipped YAML pipelines, YAML round trips, intermediates, validation
errors and the linearity of the linear pipeline. Outputs are checked against the ISP functions
chained by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rawcv import isp
from rawcv.errors import PipelineError
from rawcv.meta import CameraMeta, RawImage
from rawcv.pipeline import Pipeline, load_pipeline

NIKON_XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))
BLACK = (60.0, 64.0, 68.0, 72.0)
WHITE = 4000.0
WB = (2.1, 1.0, 1.6)


def make_raw(shape=(24, 34), cfa="RGGB", *, black=BLACK, white=WHITE, wb=WB, xyz=NIKON_XYZ_TO_CAM, seed=0,
             data=None) -> RawImage:
    rng = np.random.default_rng(seed)
    if data is None:
        data = rng.integers(0, int(white) + 300, shape).astype(np.uint16)
    meta = CameraMeta(cfa, black_level=black, white_level=white, as_shot_wb=wb, xyz_to_cam=xyz)
    return RawImage(data, meta)


def manual_chain(raw, *, denoise=False, color=True, gamma="srgb", bits=8, wb_gains=None, highlights=False,
                 demosaic=isp.demosaic_bilinear):
    """A shipped pipeline's stages applied one by one with the ISP functions."""
    from rawcv.isp.highlights import clip_highlights

    x = isp.subtract_black_level(raw.data, black=raw.meta.black_level, white=raw.meta.white_level)
    gains = isp.normalize_gains(raw.meta.as_shot_wb) if wb_gains is None else wb_gains
    x = isp.white_balance(x, gains, cfa=raw.cfa)
    if highlights:
        x = clip_highlights(x)
    x = demosaic(x, cfa=raw.cfa)
    if denoise:
        x = isp.denoise_median(x, size=3)
        x = isp.correct_vignetting(x, k1=0.0, k2=0.0, k3=0.0)
    if color:
        x = isp.apply_color_matrix(x, isp.camera_to_srgb_matrix(raw.meta.xyz_to_cam))
    if gamma is None:
        return x
    x = isp.encode(x, curve=gamma)
    return isp.quantize(x, bits=bits)


# ------------------------------------------------------------------------------------------------
# construction and the shipped pipelines
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numba", "fused"])
def test_pipeline_from_python_list_matches_hand_chain(backend):
    raw = make_raw(cfa="GBRG")
    p = Pipeline(["black_level", {"stage": "white_balance", "method": "camera"}, "demosaic",
                  {"stage": "gamma", "curve": "srgb"}, {"stage": "quantize", "bits": 8}])
    assert [s.name for s in p.stages] == ["black_level", "white_balance", "demosaic", "gamma", "quantize"]
    assert p.output_kind == "quantized"
    out = p.run(raw, backend=backend)
    expected = manual_chain(raw, color=False)
    assert out.image.dtype == np.uint8 and out.image.shape == (24, 34, 3)
    assert np.array_equal(out.image, expected)
    assert out.kind == "quantized"
    # __call__ returns the image
    assert np.array_equal(p(raw), expected)


def test_pipeline_accepts_stage_objects():
    from rawcv.pipeline import make_stage

    stages = [make_stage("black_level"), make_stage({"stage": "demosaic"}), make_stage("quantize")]
    p = Pipeline(stages)
    assert p == Pipeline(["black_level", "demosaic", "quantize"])
    assert p != Pipeline(["black_level", "demosaic", {"stage": "quantize", "bits": 16}])


@pytest.mark.parametrize("backend", ["numba", "fused", "auto"])
def test_default_pipeline_matches_hand_chain(backend):
    p = load_pipeline("default")
    assert p.name == "default"
    assert [s.name for s in p.stages] == ["black_level", "white_balance", "highlights", "demosaic", "denoise",
                                          "vignetting", "color_matrix", "gamma", "quantize"]
    raw = make_raw((26, 31), "GRBG", seed=3)
    result = p.run(raw, backend=backend)
    assert result.image.dtype == np.uint8 and result.image.shape == (26, 31, 3)
    expected = manual_chain(raw, denoise=True, highlights=True, demosaic=isp.demosaic_malvar)
    assert np.array_equal(result.image, expected)
    assert result.color_space == "sRGB"   # 8-bit with the sRGB transfer curve, not linear
    assert np.array_equal(result.saturation, raw.data >= WHITE)


@pytest.mark.parametrize("backend", ["numba", "fused"])
def test_linear_pipeline_matches_hand_chain(backend):
    p = load_pipeline("linear")
    assert [s.name for s in p.stages] == ["black_level", "white_balance", "demosaic", "color_matrix"]
    assert p.output_kind == "rgb"
    raw = make_raw((20, 27), "BGGR", seed=4)
    result = p.run(raw, backend=backend)
    assert result.image.dtype == np.float32 and result.image.shape == (20, 27, 3)
    np.testing.assert_allclose(result.image, manual_chain(raw, gamma=None), rtol=0, atol=1e-6)


def test_load_pipeline_unknown_name():
    with pytest.raises(PipelineError, match="unknown pipeline 'nope'"):
        load_pipeline("nope")


# ------------------------------------------------------------------------------------------------
# YAML round trip
# ------------------------------------------------------------------------------------------------

CUSTOM = [
    "black_level",
    {"stage": "white_balance", "method": "manual", "gains": [1.9, 1.0, 1.4]},
    {"stage": "denoise", "method": "mean", "size": 5},
    "demosaic",
    {"stage": "vignetting", "k1": 0.25, "k2": -0.05, "k3": 0.01, "center": [0.4, 0.6]},
    {"stage": "color_matrix", "matrix": [1.2, -0.1, -0.1, -0.05, 1.1, -0.05, 0.0, -0.2, 1.2]},
    {"stage": "gamma", "curve": "power", "gamma": 2.4},
    {"stage": "quantize", "bits": 16},
]


@pytest.mark.parametrize("which", ["default", "linear", "core", "camera", "custom"])
def test_yaml_round_trip_is_lossless(which, tmp_path):
    p = Pipeline(CUSTOM, name="custom") if which == "custom" else load_pipeline(which)
    text = p.to_yaml()
    q = Pipeline.from_yaml(text)
    assert q == p
    assert q.name == p.name
    assert q.to_dict() == p.to_dict()
    # through a file too
    path = tmp_path / f"{which}.yaml"
    p.to_yaml(path)
    r = load_pipeline(path)
    assert r == p and r.to_yaml() == text
    raw = make_raw((22, 30), "RGGB", seed=5)
    a, b, c = p.run(raw).image, q.run(raw).image, r.run(raw).image
    assert a.dtype == b.dtype == c.dtype
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_yaml_round_trip_keeps_custom_values():
    p = Pipeline(CUSTOM, name="custom")
    q = Pipeline.from_yaml(p.to_yaml())
    vig = q.stages[4]
    assert (vig.k1, vig.k2, vig.k3, list(vig.center)) == (0.25, -0.05, 0.01, [0.4, 0.6])
    assert q.stages[1].gains == [1.9, 1.0, 1.4]
    assert q.stages[6].curve == "power" and q.stages[6].gamma == 2.4
    assert q.stages[7].bits == 16


# ------------------------------------------------------------------------------------------------
# intermediates and the record
# ------------------------------------------------------------------------------------------------

def test_keep_intermediates_one_per_stage():
    p = load_pipeline("default")
    raw = make_raw((18, 22), "RGGB", seed=6)
    result = p.run(raw, keep_intermediates=True)
    names = [name for name, _ in result.intermediates]
    assert names == [s.name for s in p.stages]
    expected = {
        "black_level": ((18, 22), np.float32),
        "white_balance": ((18, 22), np.float32),
        "highlights": ((18, 22), np.float32),
        "demosaic": ((18, 22, 3), np.float32),
        "denoise": ((18, 22, 3), np.float32),
        "vignetting": ((18, 22, 3), np.float32),
        "color_matrix": ((18, 22, 3), np.float32),
        "gamma": ((18, 22, 3), np.float32),
        "quantize": ((18, 22, 3), np.uint8),
    }
    for name, arr in result.intermediates:
        assert (arr.shape, arr.dtype) == expected[name], name
    inter = dict(result.intermediates)
    np.testing.assert_array_equal(inter["black_level"],
                                  isp.subtract_black_level(raw.data, black=BLACK, white=WHITE))
    np.testing.assert_array_equal(inter["highlights"], np.minimum(inter["white_balance"], 1.0))
    np.testing.assert_array_equal(inter["demosaic"], isp.demosaic_malvar(inter["highlights"], cfa="RGGB"))
    np.testing.assert_array_equal(inter["quantize"], isp.quantize(inter["gamma"]))
    assert result.image is inter["quantize"]
    assert result.kind == "quantized"
    # the fused run gives the same final image
    assert np.array_equal(p.run(raw).image, result.image)


@pytest.mark.parametrize("backend", ["numba", "fused"])
@pytest.mark.parametrize("method", ["gray_world", "white_world"])
def test_white_balance_record_has_estimated_gains(method, backend):
    p = Pipeline(["black_level", {"stage": "white_balance", "method": method}, "demosaic", "gamma", "quantize"])
    raw = make_raw((30, 40), "GRBG", seed=7)
    result = p.run(raw, backend=backend)
    normalised = isp.subtract_black_level(raw.data, black=BLACK, white=WHITE)
    if method == "gray_world":
        expected = isp.gains_gray_world(normalised, cfa="GRBG")
    else:
        expected = isp.gains_white_world(normalised, cfa="GRBG")
    entry = result.record[1]
    assert entry["stage"] == "white_balance" and entry["method"] == method
    np.testing.assert_allclose(entry["gains"], expected, rtol=1e-6)
    assert expected[0] != 1.0   # really estimated, not a default
    assert np.array_equal(result.image, manual_chain(raw, color=False, wb_gains=expected))


def test_camera_white_balance_record_and_color_matrix_record():
    p = load_pipeline("linear")
    result = p.run(make_raw(seed=8), backend="numba")
    np.testing.assert_allclose(result.record[1]["gains"], [2.1, 1.0, 1.6], rtol=1e-6)
    np.testing.assert_allclose(result.record[3]["matrix"], isp.camera_to_srgb_matrix(NIKON_XYZ_TO_CAM),
                               atol=1e-6)


def test_color_matrix_missing_skip_and_error():
    raw = make_raw(xyz=None, seed=9)
    result = load_pipeline("linear").run(raw)
    assert "skipped" in result.record[3]
    np.testing.assert_allclose(result.image, manual_chain(raw, color=False, gamma=None), atol=1e-6)
    p = Pipeline(["black_level", "demosaic", {"stage": "color_matrix", "missing": "error"}])
    with pytest.raises(PipelineError, match="no colour matrix"):
        p.run(raw)


# ------------------------------------------------------------------------------------------------
# validation errors
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stages, message", [
    (["black_level", "sharpen"], "unknown stage 'sharpen'"),
    (["black_level", {"stage": "demosaic", "foo": 1}], "unknown parameter 'foo'"),
    (["black_level", "demosaic", {"stage": "quantize", "bits": 12}], "must be one of 8, 16"),
    (["black_level", {"stage": "white_balance", "method": "auto"}], "must be one of camera"),
    (["black_level", {"stage": "denoise", "size": "3"}], "must be an integer"),
    (["black_level", {"stage": "denoise", "size": 7}], "must be one of 3, 5"),
    (["black_level", {"stage": "vignetting", "k1": "a"}], "must be a number"),
    (["black_level", {"stage": "vignetting", "center": [0.5]}], "needs 2 numbers"),
    (["black_level", "demosaic", {"stage": "gamma", "gamma": 0.01}], ">= 0.1"),
    (["black_level", {"stage": "white_balance", "method": "manual"}], "needs gains"),
    (["black_level", {"stage": "white_balance", "method": "manual", "gains": [1, -1, 1]}], "positive"),
    (["black_level", "demosaic", "demosaic"], "needs a mosaic"),
    (["black_level", "demosaic", "gamma", "white_balance"], "linear"),
    (["black_level", "demosaic", "gamma", "vignetting"], "linear"),
    (["black_level", "demosaic", "gamma", "color_matrix"], "linear"),
    (["black_level", "demosaic", "quantize", "gamma"], "must be the last stage"),
    (["demosaic", "quantize"], "must start with a stage that takes sensor values ('black_level'"),
    (["black_level", "black_level"], "takes sensor values, but an earlier 'black_level' has turned them"),
    (["black_level", "color_matrix"], "place it after 'demosaic'"),
    ([], "non-empty list"),
    (["black_level", 3], "stage name or a mapping"),
])
def test_validation_errors(stages, message):
    with pytest.raises(PipelineError) as info:
        Pipeline(stages, name="t")
    assert message in str(info.value)


def test_demosaic_after_gamma_message_does_not_blame_demosaicing():
    """Gamma on the mosaic, then demosaic: the data is still a mosaic (gamma-encoded), so the
    message must not claim the stage was placed after demosaicing; it should name 'gamma'."""
    with pytest.raises(PipelineError) as info:
        Pipeline(["black_level", "gamma", "demosaic"], name="t")
    msg = str(info.value)
    assert "'demosaic'" in msg
    assert "after demosaicing" not in msg
    assert "gamma" in msg


def test_validation_error_names_the_stage():
    with pytest.raises(PipelineError) as info:
        Pipeline(["black_level", "demosaic", "gamma", "white_balance"], name="mine")
    msg = str(info.value)
    assert "'white_balance'" in msg and "'gamma'" in msg and "'mine'" in msg


@pytest.mark.parametrize("text, message", [
    ("stages: [black_level, {stage: demosaic\n", "malformed YAML"),
    ("name: x\nsteps:\n- black_level\n", "'stages:'"),
    ("- black_level\n- demosaic\n", "'stages:'"),
    ("name: x\nstages:\n- black_level\ncolour: 3\n", "unknown top-level key 'colour'"),
    ("stages:\n- black_level\n- {stage: demosaic, bogus: 1}\n", "unknown parameter 'bogus'"),
])
def test_yaml_errors(text, message):
    with pytest.raises(PipelineError) as info:
        Pipeline.from_yaml(text)
    assert message in str(info.value)


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [black_level, {stage: demosaic\n")
    with pytest.raises(PipelineError) as info:
        load_pipeline(bad)
    assert str(bad) in str(info.value) and "malformed YAML" in str(info.value)
    with pytest.raises(PipelineError, match="cannot read pipeline file"):
        Pipeline.from_yaml(tmp_path / "missing.yaml")


def test_unknown_backend():
    with pytest.raises(PipelineError, match="unknown backend"):
        Pipeline(["black_level"], backend="cuda")


# ------------------------------------------------------------------------------------------------
# linearity of the linear pipeline
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numba", "fused"])
@pytest.mark.parametrize("black", [0.0, 64.0])
@pytest.mark.parametrize("cfa", ["RGGB", "GBRG"])
def test_linear_pipeline_output_is_linear_in_the_signal(cfa, black, backend):
    """Halving the signal above black (exactly: even integer signals) halves the output."""
    rng = np.random.default_rng(10)
    signal = 2 * rng.integers(0, 1900, (22, 31))
    full = make_raw(cfa=cfa, black=black, white=4095, data=(signal + black).astype(np.uint16))
    half = make_raw(cfa=cfa, black=black, white=4095, data=(signal // 2 + black).astype(np.uint16))
    p = load_pipeline("linear")
    a = p.run(full, backend=backend).image
    b = p.run(half, backend=backend).image
    assert a.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_allclose(b, 0.5 * a.astype(np.float64), rtol=0, atol=1e-6)
    assert a.max() > 0.5  # not a trivially dark image
