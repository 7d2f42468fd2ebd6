"""All eight orientations (LibRaw flip codes 0-7, TIFF/EXIF orientations 1-8, the mirrored ones
included): written into DNGs, read back, and turned upright exactly as LibRaw's ``postprocess``
turns the same file; ``rawcv process --orientation auto|none``."""

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
from rawcv.batch import process_files
from rawcv.io.writers import apply_orientation
from rawcv.pipeline import load_pipeline

ROOT = Path(__file__).resolve().parent.parent
FLIPS = range(8)


def write_oriented(path, flip: int):
    """A 30 x 44 RGGB DNG (no two rows or columns alike) whose TIFF Orientation is LibRaw's ``flip``."""
    mosaic = np.random.default_rng(flip).integers(200, 4000, (30, 44)).astype(np.uint16)
    rawcv.write_dng(path, mosaic, cfa="RGGB", black=100, white=4095, as_shot_wb=(2.0, 1.0, 1.5), orientation=flip)
    return path


@pytest.mark.parametrize("flip", FLIPS)
def test_every_code_turns_the_image_as_libraw_does(flip, tmp_path):
    rawpy = pytest.importorskip("rawpy")
    path = write_oriented(tmp_path / f"o{flip}.dng", flip)
    assert rawcv.read(path).meta.orientation == flip
    assert rawcv.read_metadata(path).meta.orientation == flip
    kwargs = dict(output_bps=16, no_auto_bright=True, gamma=(1, 1), use_camera_wb=True)
    with rawpy.imread(str(path)) as r:
        as_read = r.postprocess(user_flip=0, **kwargs)     # LibRaw's image before it applies the flip
    with rawpy.imread(str(path)) as r:
        assert r.sizes.flip == flip
        upright = r.postprocess(**kwargs)
    assert np.array_equal(apply_orientation(as_read, flip), upright)


def test_codes_outside_libraws_are_refused_in_one_line():
    image = np.zeros((2, 3))
    for bad in (8, -1, 2.0, "6", True):
        with pytest.raises(ValueError, match=r"unsupported orientation code .*0 to 7"):
            apply_orientation(image, bad)
    assert apply_orientation(image, None) is image and apply_orientation(image, 0) is image


@pytest.mark.parametrize("flip", FLIPS)
def test_process_writes_display_images_upright(flip, tmp_path):
    path = write_oriented(tmp_path / "in.dng", flip)
    pipeline = load_pipeline("default")
    summary = process_files([path], tmp_path / "out", pipeline)
    assert not summary.failures
    written = cv2.imread(str(tmp_path / "out" / "in.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    as_read = pipeline(rawcv.read(path))
    assert np.array_equal(written, apply_orientation(as_read, flip))
    side = json.loads((tmp_path / "out" / "in.png.json").read_text())
    assert side["output"]["orientation_applied"] is (flip != 0)
    # npy keeps the sensor's layout whatever the orientation (arrays for computation, not display)
    process_files([path], tmp_path / "npy", pipeline, fmt="npy")
    assert np.array_equal(np.load(tmp_path / "npy" / "in.npy"), as_read)


def test_orientation_none_on_the_command_line_keeps_the_sensors_layout(tmp_path):
    path = write_oriented(tmp_path / "in.dng", 7)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "process", str(path), "-o", str(tmp_path / "out"),
                          "--orientation", "none", "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    written = cv2.imread(str(tmp_path / "out" / "in.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert np.array_equal(written, load_pipeline("default")(rawcv.read(path)))
    assert json.loads((tmp_path / "out" / "in.png.json").read_text())["output"]["orientation_applied"] is False
