"""Output colour spaces against independent references.

* colour-science: primaries matrices (its own table of primaries), transfer curves, the Bradford
  adaptation, Robertson's CCT <-> uv;
* published matrices (Lindbloom's tables, 7 decimals), which the derived ones equal;
* a closed form of the camera -> output matrix, derived here without row normalisation;
* a slow float64 transcription of the DNG specification's two-illuminant iteration, on the real
  Canon EOS 6D DNG (illuminants A and D65) and on synthetic calibrations;
* ``rawcv process --colorspace``: the override of the pipeline and its record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rawcv
from rawcv import colorspaces as cs
from rawcv.cli.overrides import with_colorspace
from rawcv.errors import PipelineError
from rawcv.isp import color, tone
from rawcv.meta import CameraMeta, RawImage
from rawcv.pipeline import Pipeline, load_pipeline

colour = pytest.importorskip("colour")

ROOT = Path(__file__).resolve().parent.parent
NIKON_XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])
# colour-science's names of rawcv's RGB spaces
COLOUR_NAMES = {"srgb": "sRGB", "display-p3": "Display P3", "adobe": "Adobe RGB (1998)", "prophoto": "ProPhoto RGB"}
RGB_SPACES = tuple(COLOUR_NAMES)
# Lindbloom's RGB -> XYZ tables (brucelindbloom.com, "RGB/XYZ Matrices"), whites ASTM E308 D65 / D50
PUBLISHED = {
    "srgb": [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    "adobe": [[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741], [0.0270343, 0.0706872, 0.9911085]],
    "prophoto": [[0.7976749, 0.1351917, 0.0313534], [0.2880402, 0.7118741, 0.0000857], [0.0, 0.0, 0.8252100]],
}


def colour_white(space) -> np.ndarray:
    return np.asarray(space.white_xy)


# --- the table --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", RGB_SPACES)
def test_matrix_is_colour_sciences_primary_matrix_of_its_primaries_and_white(name):
    space = cs.output_space(name)
    reference = colour.RGB_COLOURSPACES[COLOUR_NAMES[name]]
    np.testing.assert_array_equal(np.asarray(space.primaries), reference.primaries)
    expected = colour.normalised_primary_matrix(reference.primaries, colour_white(space))
    np.testing.assert_allclose(space.rgb_to_xyz, expected, rtol=0, atol=5.1e-8)      # the 7-decimal rounding
    # colour-science's own matrices use the standards' rounded whites (sRGB: xy 0.3127, 0.3290)
    np.testing.assert_allclose(space.rgb_to_xyz, reference.matrix_RGB_to_XYZ, rtol=0, atol=5e-4)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_derived_matrices_equal_the_published_tables(name):
    np.testing.assert_array_equal(cs.output_space(name).rgb_to_xyz, PUBLISHED[name])


def test_srgb_matrix_is_the_one_rawcv_always_used():
    np.testing.assert_array_equal(color.SRGB_TO_XYZ, PUBLISHED["srgb"])


def test_whites_xyz_and_camera():
    assert cs.output_space("prophoto").white == cs.D50
    assert all(cs.output_space(n).white == cs.D65 for n in ("srgb", "display-p3", "adobe", "xyz", "camera"))
    np.testing.assert_array_equal(cs.output_space("xyz").rgb_to_xyz, np.eye(3))
    assert cs.output_space("camera").rgb_to_xyz is None
    np.testing.assert_allclose(colour.xy_to_XYZ(cs.output_space("srgb").white_xy), cs.D65, atol=1e-12)


def test_choices_and_parsing():
    assert cs.COLORSPACE_CHOICES == ("srgb", "display-p3", "adobe", "prophoto", "xyz", "camera", "linear-srgb",
                                     "linear-display-p3", "linear-adobe", "linear-prophoto", "linear-xyz",
                                     "linear-camera")
    assert [cs.parse_colorspace(c)[1] for c in ("srgb", "display-p3", "adobe", "prophoto", "xyz", "camera")] == [
        "srgb", "srgb", "adobe", "prophoto", "srgb", "srgb"]
    assert all(cs.parse_colorspace(c)[1] == "linear" for c in cs.COLORSPACE_CHOICES if c.startswith("linear-"))
    with pytest.raises(ValueError, match="unknown colour space 'p3'"):
        cs.parse_colorspace("p3")


# --- transfer curves ---------------------------------------------------------------------------

LINEAR_GRID = np.concatenate([np.linspace(0, 0.01, 501), np.linspace(0.01, 1, 991)])


@pytest.mark.parametrize("curve, colour_name", [("srgb", "sRGB"), ("adobe", "Adobe RGB (1998)"),
                                                ("prophoto", "ProPhoto RGB")])
def test_curves_equal_colour_sciences(curve, colour_name):
    reference = colour.RGB_COLOURSPACES[colour_name]
    c = cs.transfer_curve(curve)
    np.testing.assert_allclose(c.encode(LINEAR_GRID), reference.cctf_encoding(LINEAR_GRID), rtol=0, atol=2e-6)
    encoded = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(c.decode(encoded), reference.cctf_decoding(encoded), rtol=0, atol=2e-6)
    np.testing.assert_allclose(c.decode(c.encode(LINEAR_GRID)), LINEAR_GRID, rtol=0, atol=1e-12)


def test_prophoto_curve_segments():
    c = cs.transfer_curve("prophoto")
    assert c.linear_knee == 1 / 512 and float(c.encode(1 / 512)) == pytest.approx(1 / 32, abs=1e-15)
    assert float(c.encode(1 / 1024)) == 16 / 1024
    assert float(c.encode(0.5)) == pytest.approx(0.5 ** (1 / 1.8), abs=1e-15)
    assert cs.transfer_curve("adobe").gamma == 2.19921875


@pytest.mark.parametrize("curve", ["srgb", "adobe", "prophoto", "linear", "power"])
def test_numba_and_torch_curves_follow_the_float64_definition(curve):
    x = np.concatenate([LINEAR_GRID, [-0.01, 1.5]]).astype(np.float32).reshape(2, -1)
    expected = cs.transfer_curve(curve, 2.2).encode(x.astype(np.float64))
    got = tone.encode(x, curve=curve, gamma=2.2)
    np.testing.assert_allclose(got, expected, rtol=3e-7, atol=3e-7)
    torch = pytest.importorskip("torch")
    from rawcv.torch.isp import tone as torch_tone

    np.testing.assert_allclose(torch_tone.encode(torch.from_numpy(x), curve=curve, gamma=2.2).numpy(), got,
                               rtol=2e-7, atol=1e-7)


@pytest.mark.parametrize("curve", ["adobe", "prophoto", "linear"])
@pytest.mark.parametrize("bits", [8, 16])
def test_encode_quantize_table_gives_the_scalar_chain_levels(curve, bits):
    x = np.random.default_rng(bits).random((64, 96)).astype(np.float32) ** 3
    x[0, :8] = [-1.0, 0.0, 1 / 512, 1.0, 2.0, np.nan, np.inf, 1e-9]
    np.testing.assert_array_equal(tone.encode_quantize(x, curve=curve, bits=bits),
                                  tone.quantize(tone.encode(x, curve=curve), bits=bits))


# --- chromatic adaptation and colour temperature ------------------------------------------------

@pytest.mark.parametrize("source, target", [(cs.D65, cs.D50), (cs.D50, cs.D65), (cs.D65, cs.ICC_D50),
                                            ((1.09850, 1.0, 0.35585), cs.D65)])
def test_bradford_equals_colour_sciences(source, target):
    expected = colour.adaptation.matrix_chromatic_adaptation_VonKries(np.array(source), np.array(target),
                                                                      transform="Bradford")
    np.testing.assert_allclose(cs.bradford_matrix(source, target), expected, rtol=0, atol=1e-12)


def test_bradford_of_equal_whites_is_the_identity():
    np.testing.assert_allclose(cs.bradford_matrix(cs.D65, cs.D65), np.eye(3), atol=1e-15)


def locus_points():
    for cct in (1700, 2000, 2856, 3500, 4500, 5003, 6504, 8000, 12000, 25000):
        for duv in (-0.02, 0.0, 0.015):
            yield cct, duv


@pytest.mark.parametrize("cct, duv", list(locus_points()))
def test_xy_to_cct_is_robertsons_as_colour_science_computes_it(cct, duv):
    uv = colour.temperature.CCT_to_uv_Robertson1968(np.array([cct, duv]))
    xy = colour.UCS_uv_to_xy(uv)
    expected = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(xy))[0]
    assert cs.xy_to_cct(xy) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("cct", [1700, 2856, 4000, 5003, 6504, 9000, 20000])
def test_cct_to_xy_is_on_robertsons_locus(cct):
    expected = colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Robertson1968(np.array([cct, 0.0])))
    np.testing.assert_allclose(cs.cct_to_xy(cct), expected, rtol=0, atol=1e-5)
    assert cs.xy_to_cct(cs.cct_to_xy(cct)) == pytest.approx(cct, rel=2e-3)


@pytest.mark.parametrize("code, xy", [(17, (0.44757, 0.40745)), (21, (0.31271, 0.32902)), (23, (0.34567, 0.35850)),
                                      (20, (0.33242, 0.34743)), (22, (0.29902, 0.31485))])
def test_illuminant_temperatures_are_the_ccts_of_the_cie_illuminants(code, xy):
    assert cs.illuminant_cct(code) == pytest.approx(cs.xy_to_cct(xy), abs=4)


# --- camera -> output -------------------------------------------------------------------------

def closed_form_camera_to_output(xyz_to_cam, name):
    """Independently: camera (white balanced, neutral = D65's camera response) -> XYZ (D65) ->
    Bradford to the space's white (colour-science) -> the space's RGB (colour-science's matrix)."""
    d65 = np.array(cs.D65)
    camera_to_xyz = np.linalg.inv(xyz_to_cam) @ np.diag(xyz_to_cam @ d65)
    space = cs.output_space(name)
    if name == "xyz":
        return camera_to_xyz
    reference = colour.RGB_COLOURSPACES[COLOUR_NAMES[name]]
    to_xyz = colour.normalised_primary_matrix(reference.primaries, colour_white(space))
    adapt = colour.adaptation.matrix_chromatic_adaptation_VonKries(d65, np.array(space.white), transform="Bradford")
    return np.linalg.inv(to_xyz) @ adapt @ camera_to_xyz


@pytest.mark.parametrize("name", RGB_SPACES + ("xyz",))
def test_camera_to_output_matrix_equals_the_closed_form(name):
    got = color.camera_to_output_matrix(NIKON_XYZ_TO_CAM, name)
    np.testing.assert_allclose(got, closed_form_camera_to_output(NIKON_XYZ_TO_CAM, name), rtol=0, atol=2e-6)
    white = got @ np.ones(3)
    np.testing.assert_allclose(white, cs.D65 if name == "xyz" else np.ones(3), atol=1e-12)


def test_srgb_matrix_is_dcraws_bit_for_bit():
    legacy_srgb_to_xyz = np.array(PUBLISHED["srgb"])
    for seed in range(200):
        m = np.eye(3) + 0.3 * np.random.default_rng(seed).standard_normal((3, 3))
        srgb_to_cam = m @ legacy_srgb_to_xyz
        srgb_to_cam = srgb_to_cam / srgb_to_cam.sum(axis=1, keepdims=True)
        np.testing.assert_array_equal(color.camera_to_srgb_matrix(m), np.linalg.inv(srgb_to_cam))


def test_default_output_of_the_nikon_file_is_unchanged(raw_samples):
    """Before colour spaces, the default pipeline applied dcraw's matrix from the typed IEC/Lindbloom
    sRGB matrix; that matrix, given explicitly, gives the default output bit for bit."""
    raw = rawcv.read(raw_samples / "nikon_d3200_rose.dng")
    assert len(raw.meta.color_matrices) == 1
    srgb_to_cam = np.asarray(raw.meta.xyz_to_cam) @ np.array(PUBLISHED["srgb"])
    legacy = np.linalg.inv(srgb_to_cam / srgb_to_cam.sum(axis=1, keepdims=True))
    pipeline = load_pipeline("default")
    before = pipeline.with_params("color_matrix", matrix=legacy.ravel().tolist())(raw)
    result = pipeline.run(raw)
    np.testing.assert_array_equal(result.image, before)
    assert "calibration" not in next(s for s in result.record if s["stage"] == "color_matrix")


# --- two calibration illuminants ---------------------------------------------------------------

def spec_iteration(matrices, temperatures, neutral, *, balance=None, calibrations=None):
    """The DNG specification's search for the white, written out slowly: CCT by colour-science's
    Robertson, weights linear in 1/T between the two calibrations (clamped outside)."""
    (t1, m1), (t2, m2) = sorted(zip(temperatures, matrices), key=lambda p: p[0])
    c1, c2 = (np.eye(3), np.eye(3)) if calibrations is None else (
        calibrations[list(temperatures).index(t1)], calibrations[list(temperatures).index(t2)])
    ab = np.eye(3) if balance is None else np.diag(balance)

    def weight_of_t1(xy):
        t = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(np.array(xy)))[0]
        if t <= t1:
            return 1.0
        if t >= t2:
            return 0.0
        return (1.0 / t - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)

    def xyz_to_camera(g):
        return ab @ (g * c1 + (1 - g) * c2) @ (g * m1 + (1 - g) * m2)

    xy = np.array([0.96422, 1.0, 0.82521])[:2] / (0.96422 + 1.0 + 0.82521)
    for n in range(30):
        xyz = np.linalg.inv(xyz_to_camera(weight_of_t1(xy))) @ neutral
        new = xyz[:2] / xyz.sum()
        if abs(new[0] - xy[0]) + abs(new[1] - xy[1]) < 1e-7:
            xy = new
            break
        xy = new if n < 29 else (xy + new) / 2
    g = weight_of_t1(xy)
    return xyz_to_camera(g), g, xy


def canon_tags(path):
    import tifffile

    def matrix(tag):
        v = np.asarray(tag.value, dtype=np.float64)
        return (v[0::2] / v[1::2]).reshape(3, 3)

    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        balance = np.asarray(tags["AnalogBalance"].value, dtype=np.float64)
        return (balance[0::2] / balance[1::2], [matrix(tags["CameraCalibration1"]), matrix(tags["CameraCalibration2"])])


@pytest.mark.parametrize("with_balance", [False, True])
def test_canon_two_illuminant_matrix_follows_the_specification(raw_samples, with_balance):
    path = raw_samples / "canon_eos_6d_linear.dng"
    meta = rawcv.read(path).meta
    (code1, cm1), (code2, cm2) = meta.color_matrices
    assert (code1, code2) == (17, 21)
    cm1, cm2 = np.array(cm1), np.array(cm2)
    neutral = 1 / np.array(meta.as_shot_wb)
    balance, calibrations = canon_tags(path) if with_balance else (None, None)
    got, details = color.dng_xyz_to_camera(meta.color_matrices, meta.as_shot_wb, analog_balance=balance,
                                           camera_calibrations=calibrations)
    expected, g, xy = spec_iteration([cm1, cm2], [2856.0, 6504.0], neutral, balance=balance, calibrations=calibrations)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(details["white_xy"], xy, atol=2e-6)
    assert details["weights"] == pytest.approx([g, 1 - g], abs=1e-6)
    assert 0 <= g <= 1
    # the interpolated ColorMatrix lies between the two
    interpolated = g * cm1 + (1 - g) * cm2
    assert np.all(interpolated >= np.minimum(cm1, cm2) - 1e-12) and np.all(interpolated <= np.maximum(cm1, cm2) + 1e-12)
    if with_balance:
        # the file's analog balance makes the white a daylight near 6200 K: mostly the D65 matrix;
        # the reader gives the pipelines those tags, so a file's own matrix is this one
        assert 6000 < details["white_cct_K"] < 6400 and 0 < g < 0.1
        np.testing.assert_allclose(meta.analog_balance, balance)
        np.testing.assert_allclose(np.array(meta.camera_calibrations), np.array(calibrations))
        assert details == color.file_xyz_to_camera(meta)[1]


def synthetic_calibrations():
    cm_d65 = np.linalg.inv(color.SRGB_TO_XYZ)
    cm_a = np.array([[1.2, -0.1, -0.05], [-0.2, 1.1, 0.1], [0.0, 0.1, 1.6]]) @ cm_d65
    return cm_a, cm_d65


@pytest.mark.parametrize("cct", [2500, 3200, 4000, 5000, 6000, 8000])
def test_synthetic_two_illuminant_white_is_found(cct):
    cm_a, cm_d65 = synthetic_calibrations()
    g = float(np.clip((1 / cct - 1 / 6504) / (1 / 2856 - 1 / 6504), 0, 1))
    white = colour.xy_to_XYZ(cs.cct_to_xy(cct))
    neutral = (g * cm_a + (1 - g) * cm_d65) @ white
    got, details = color.dng_xyz_to_camera([(17, cm_a), (21, cm_d65)], 1 / neutral)
    expected, g_spec, _ = spec_iteration([cm_a, cm_d65], [2856.0, 6504.0], neutral)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert details["weights"][0] == pytest.approx(g_spec, abs=1e-6)
    if 2856 <= cct <= 6504:     # a white on the locus inside the calibrations is found again
        assert details["white_cct_K"] == pytest.approx(cct, rel=2e-3)
        assert details["weights"][0] == pytest.approx(g, abs=2e-3)


def test_three_matrices_use_the_two_either_side():
    cm_a, cm_d65 = synthetic_calibrations()
    cm_d50 = (cm_a + cm_d65) / 2
    neutral = cm_d65 @ colour.xy_to_XYZ(cs.cct_to_xy(5800))
    _, details = color.dng_xyz_to_camera([(21, cm_d65), (17, cm_a), (23, cm_d50)], 1 / neutral)
    w_d65, w_a, w_d50 = details["weights"]
    assert w_a == 0 and w_d50 > 0 and w_d65 > 0 and w_d50 + w_d65 == pytest.approx(1)


def test_unknown_illuminant_falls_back_to_the_d65_matrix_and_says_so():
    cm_a, cm_d65 = synthetic_calibrations()
    meta = CameraMeta("RGGB", black_level=0, white_level=1000, xyz_to_cam=cm_d65,
                      color_matrices=((0, cm_a), (21, cm_d65)))
    m, details = color.file_xyz_to_camera(meta)
    assert m == meta.xyz_to_cam
    assert "calibration illuminant 0 has no known colour temperature" in details["interpolation"]


def make_raw(meta_changes=None):
    data = np.random.default_rng(1).integers(600, 15000, (24, 32)).astype(np.uint16)
    cm_a, cm_d65 = synthetic_calibrations()
    meta = CameraMeta("RGGB", black_level=600, white_level=15520, as_shot_wb=(1.6, 1.0, 1.8), xyz_to_cam=cm_d65,
                      color_matrices=((17, cm_a), (21, cm_d65)))
    return RawImage(data, meta.replace(**(meta_changes or {})))


@pytest.mark.parametrize("backend", ["fused", "numba"])
def test_stage_records_the_interpolation(backend):
    raw = make_raw()
    result = load_pipeline("default").run(raw, backend=backend)
    entry = next(s for s in result.record if s["stage"] == "color_matrix")
    _, details = color.dng_xyz_to_camera(raw.meta.color_matrices, raw.meta.as_shot_wb)
    assert entry["calibration"] == details and entry["space"] == "srgb"
    json.dumps(result.record)


@pytest.mark.parametrize("name", cs.OUTPUT_SPACES)
def test_each_space_on_every_backend(name):
    torch = pytest.importorskip("torch")
    from rawcv.torch.backend import run_pipeline_torch

    raw = make_raw()
    pipeline = with_colorspace(load_pipeline("default"), name)
    numba = pipeline.run(raw, backend="numba")
    fused = pipeline.run(raw, backend="fused")
    np.testing.assert_array_equal(fused.image, numba.image)
    assert fused.record == numba.record and fused.color_space == numba.color_space
    got = run_pipeline_torch(pipeline, raw, device="cpu")[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, numba.image)
    assert torch.is_tensor(run_pipeline_torch(pipeline, raw, device="cpu"))


def test_camera_space_applies_no_matrix_but_knows_its_profile_matrix():
    raw = make_raw()
    camera = with_colorspace(load_pipeline("linear"), "linear-camera")
    without = Pipeline([s for s in camera.stages if s.name != "color_matrix"])
    np.testing.assert_array_equal(camera(raw), without(raw))
    space = camera.color_space(raw.meta)
    xyz_to_cam, _ = color.file_xyz_to_camera(raw.meta)
    np.testing.assert_allclose(space.to_xyz, color.camera_to_output_matrix(xyz_to_cam, "xyz"))
    # camera RGB through its own matrix is the XYZ output
    xyz = with_colorspace(load_pipeline("linear"), "linear-xyz")(raw)
    np.testing.assert_allclose(camera(raw) @ np.asarray(space.to_xyz).T, xyz, rtol=1e-5, atol=1e-6)


def test_matrix_and_space_together_are_refused():
    with pytest.raises(PipelineError, match="stage 'color_matrix': give parameter 'matrix' or 'space', not both"):
        load_pipeline("default").with_params("color_matrix", matrix=[1, 0, 0, 0, 1, 0, 0, 0, 1], space="adobe")


# --- rawcv process --colorspace ----------------------------------------------------------------

@pytest.mark.parametrize("pipeline, choice, stages", [
    ("default", "adobe", {"color_matrix": {"space": "adobe"}, "gamma": {"curve": "adobe"}}),
    ("default", "linear-prophoto", {"color_matrix": {"space": "prophoto"}, "gamma": {"curve": "linear"}}),
    ("linear", "linear-display-p3", {"color_matrix": {"space": "display-p3"}}),
    ("linear", "prophoto", {"color_matrix": {"space": "prophoto"}, "gamma": {"curve": "prophoto"}}),
    ("core", "xyz", {"color_matrix": {"space": "xyz"}, "gamma": {"curve": "srgb"}}),
])
def test_with_colorspace_sets_or_adds_the_stages(pipeline, choice, stages):
    p = with_colorspace(load_pipeline(pipeline), choice)
    for name, values in stages.items():
        stage = next(s for s in p.stages if s.name == name)
        assert {k: stage.values[k] for k in values} == values
    if "gamma" not in stages:
        assert all(s.name != "gamma" for s in p.stages)
    names = [s.name for s in p.stages]
    assert names.index("color_matrix") > names.index("demosaic")
    if "gamma" in names:
        assert names.index("color_matrix") < names.index("gamma")


def test_with_colorspace_keeps_the_other_parameters():
    p = load_pipeline("default").with_params("color_matrix", missing="error").with_params("gamma", curve="power",
                                                                                          gamma=1.8)
    p = with_colorspace(p, "display-p3")
    assert next(s for s in p.stages if s.name == "color_matrix").values == {"matrix": None, "space": "display-p3",
                                                                             "missing": "error"}
    assert next(s for s in p.stages if s.name == "gamma").values == {"curve": "srgb", "gamma": 1.8}


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "process", *map(str, args), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


def test_cli_colorspace_is_recorded_and_equals_the_library(tmp_path):
    import cv2

    dng = tmp_path / "in" / "scene.dng"
    dng.parent.mkdir()
    yy, xx = np.mgrid[0:40, 0:56]
    mosaic = (300 + 40 * yy + 30 * xx + np.random.default_rng(0).integers(0, 50, (40, 56))).astype(np.uint16)
    cm_a, cm_d65 = synthetic_calibrations()
    rawcv.write_dng(dng, mosaic, cfa="RGGB", black=256, white=4095, as_shot_wb=(2.1, 1.0, 1.6),
                    color_matrices=((17, cm_a), (21, cm_d65)))
    code, err = run_cli(dng, "-o", tmp_path / "out", "--colorspace", "prophoto", "--bits", "16")
    assert code == 0, err
    image = cv2.imread(str(tmp_path / "out" / "scene.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    side = json.loads((tmp_path / "out" / "scene.png.json").read_text())
    expected = with_colorspace(load_pipeline("default"), "prophoto").with_params("quantize", bits=16)(rawcv.read(dng))
    np.testing.assert_array_equal(image, expected)
    stages = {s["stage"]: s for s in side["pipeline"]["stages"]}
    assert stages["color_matrix"]["space"] == "prophoto" and stages["gamma"]["curve"] == "prophoto"
    assert stages["color_matrix"]["calibration"]["illuminants"] == [17, 21]
    assert side["output"]["color_space"] == "ProPhoto RGB" and side["output"]["transfer"] == "ROMM (gamma 1.8)"
    assert side["output"]["icc_profile"] == {"embedded": True, "description": "ProPhoto RGB"}


@pytest.mark.parametrize("args, says", [(("--colorspace", "p3"), "--colorspace"),
                                        (("--colorspace", "LINEAR-SRGB"), "--colorspace")])
def test_cli_bad_colorspace_is_one_line(tmp_path, args, says):
    code, err = run_cli(tmp_path / "missing.dng", "-o", tmp_path / "out", *args)
    assert code != 0 and says in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
