"""The photographer's controls of ``rawcv process`` (``--wb``, ``--exposure``, ``--bits``): each one
overrides the pipeline's stages, gives the image that override computes in Python, and is recorded
in the sidecar; a bad value or a pipeline without the stage gives one line and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import rawcv
from rawcv.pipeline import load_pipeline

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "process", *map(str, args), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def dng(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "scene.dng"
    yy, xx = np.mgrid[0:40, 0:56]
    mosaic = (300 + 40 * yy + 30 * xx + np.random.default_rng(0).integers(0, 50, (40, 56))).astype(np.uint16)
    rawcv.write_dng(path, mosaic, cfa="GRBG", black=256, white=4095, as_shot_wb=(2.1, 1.0, 1.6),
                    color_matrix=((0.902, -0.289, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086)))
    return path


def written(out: Path, name="scene.png"):
    image = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
    return image[..., ::-1], json.loads((out / (name + ".json")).read_text())


def stage(sidecar, name):
    return next(s for s in sidecar["pipeline"]["stages"] if s["stage"] == name)


@pytest.mark.parametrize("wb, values", [("gray", {"method": "gray_world"}), ("white", {"method": "white_world"}),
                                        ("2,1,1.5", {"method": "manual", "gains": [2.0, 1.0, 1.5]})])
def test_white_balance_override(dng, tmp_path, wb, values):
    code, err = run_cli(dng, "-o", tmp_path, "--wb", wb)
    assert code == 0, err
    image, side = written(tmp_path)
    expected = load_pipeline("default").with_params("white_balance", **values)(rawcv.read(dng))
    assert np.array_equal(image, expected)
    assert stage(side, "white_balance")["method"] == values["method"]
    if "gains" in values:
        assert stage(side, "white_balance")["gains"] == pytest.approx(values["gains"])


def test_exposure_goes_before_the_tone_curve_and_doubles_linear_values(dng, tmp_path):
    code, err = run_cli(dng, "-o", tmp_path / "png", "--exposure", "1")
    assert code == 0, err
    image, side = written(tmp_path / "png")
    names = [s["stage"] for s in side["pipeline"]["stages"]]
    assert names.index("exposure") == names.index("gamma") - 1 and stage(side, "exposure")["stops"] == 1.0
    raw = rawcv.read(dng)
    assert np.array_equal(image, load_pipeline("default").with_stage(
        {"stage": "exposure", "stops": 1.0}, before=("gamma",))(raw))
    # analytic: on the linear pipeline (no tone curve) +1 EV is exactly twice every value
    code, err = run_cli(dng, "-o", tmp_path / "lin", "--pipeline", "linear", "--exposure", "1")
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "lin" / "scene.npy"), 2 * load_pipeline("linear")(raw))


def test_bits_16_writes_16_bit_png(dng, tmp_path):
    code, err = run_cli(dng, "-o", tmp_path, "--bits", "16")
    assert code == 0, err
    image, side = written(tmp_path)
    assert image.dtype == np.uint16 and stage(side, "quantize")["bits"] == 16
    assert np.array_equal(image, load_pipeline("default").with_params("quantize", bits=16)(rawcv.read(dng)))
    eight = load_pipeline("default")(rawcv.read(dng)).astype(np.int64)
    assert np.abs(image.astype(np.int64) / 257 - eight).max() <= 1          # the same picture, finer levels


@pytest.mark.parametrize("args, says", [(("--wb", "2,1"), "--wb"), (("--wb", "-1,1,1"), "--wb"),
                                        (("--exposure", "lots"), "--exposure"), (("--bits", "12"), "--bits"),
                                        (("--pipeline", "linear", "--bits", "16"), "no 'quantize' stage")])
def test_bad_values_and_missing_stages_write_nothing(dng, tmp_path, args, says):
    code, err = run_cli(dng, "-o", tmp_path / "out", *args)
    assert code != 0 and says in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_exposure_auto_is_recorded_with_the_stops_it_applied(dng, tmp_path):
    code, err = run_cli(dng, "-o", tmp_path, "--exposure", "auto")
    assert code == 0, err
    image, side = written(tmp_path)
    pipe = load_pipeline("default").with_stage({"stage": "exposure", "method": "auto"}, before=("gamma",))
    result = pipe.run(rawcv.read(dng))
    assert np.array_equal(image, result.image)
    recorded = stage(side, "exposure")
    assert recorded["method"] == "auto" and recorded["stops"] == stage({"pipeline": {"stages": result.record}},
                                                                       "exposure")["stops"] != 0


def test_bad_pixel_list_and_detector(dng, tmp_path):
    listing = tmp_path / "bad.txt"
    listing.write_text("# col row time\n10 12 0\n31 20 0\n")
    code, err = run_cli(dng, "-o", tmp_path / "a", "--bad-pixels", listing, "--detect-bad-pixels")
    assert code == 0, err
    image, side = written(tmp_path / "a")
    recorded = stage(side, "bad_pixels")
    assert recorded["path"] == str(listing) and recorded["detect"] == "on" and recorded["listed"] == 2
    expected = load_pipeline("default").with_stage({"stage": "bad_pixels", "path": str(listing), "detect": "on"},
                                                   before=("white_balance",))(rawcv.read(dng))
    assert np.array_equal(image, expected)


@pytest.mark.parametrize("content, message", [
    (None, "--bad-pixels: .*missing.txt: cannot read bad-pixel list"),
    ("10 12 x\n", "--bad-pixels: .*bad.txt, line 1: expected 'col row unixtime'"),
])
def test_a_bad_pixel_list_that_cannot_be_read_is_one_line(dng, tmp_path, content, message):
    import re

    listing = tmp_path / ("missing.txt" if content is None else "bad.txt")
    if content is not None:
        listing.write_text(content)
    code, err = run_cli(dng, "-o", tmp_path / "out", "--bad-pixels", listing)
    assert code != 0 and len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_opcodes_off_is_recorded_and_skips_the_lists(tmp_path):
    from rawcv import dng_opcodes as dng

    path = tmp_path / "shaded.dng"
    mosaic = np.full((40, 56), 2000, np.uint16)
    rawcv.write_dng(path, mosaic, cfa="RGGB", black=0, white=4095, color_matrix=np.eye(3),
                    opcode_lists={2: dng.encode_opcode_list([dng.FixVignetteRadial((0.5, 0, 0, 0, 0), (0.5, 0.5))])})
    for mode in ("auto", "off"):
        code, err = run_cli(path, "-o", tmp_path / mode, "--opcodes", mode)
        assert code == 0, err
    on, side_on = written(tmp_path / "auto", "shaded.png")
    off, side_off = written(tmp_path / "off", "shaded.png")
    assert side_on["pipeline"]["opcodes"] == "auto" and side_off["pipeline"]["opcodes"] == "off"
    assert [s["stage"] for s in side_on["pipeline"]["stages"]].count("vignetting") == 2     # the file's, the pipeline's
    assert on[0, 0].mean() > off[0, 0].mean() and np.array_equal(on[20, 28], off[20, 28])
