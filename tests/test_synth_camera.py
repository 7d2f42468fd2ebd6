"""The synthetic camera: round trips through DNG and the ISP, noise statistics, CFA phase, determinism."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rawpy

import rawcv
import rawcv.noise
from rawcv import isp
from rawcv.meta import BAYER_PATTERNS, cfa_channel_map
from rawcv.synth import NoiseParams, generate_scene
from rawcv.synth.camera import CameraParams, capture, srgb_to_camera, write_capture_dng
from rawcv.synth.dataset import SynthConfig, make_dataset

ROOT = Path(__file__).resolve().parent.parent
BORDER = 4


def psnr(a, b, peak=1.0):
    a = a[BORDER:-BORDER, BORDER:-BORDER]
    b = b[BORDER:-BORDER, BORDER:-BORDER]
    return 10 * np.log10(peak ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def scene(seed=1, size=128):
    return generate_scene(np.random.default_rng(seed), size=size, n_objects=3).radiance * np.float32(0.8)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_noise_free_round_trip_matches_ideal_bilinear(tmp_path, cfa):
    gt = scene()
    cam = CameraParams(cfa=cfa, bits=14, black=512.0, wb_gains=(2.2, 1.0, 1.6))
    write_capture_dng(tmp_path / "x.dng", capture(gt, cam, 0))
    out = rawcv.load_pipeline("linear")(rawcv.read(tmp_path / "x.dng"))
    # the best bilinear demosaicing can do: demosaic the ideal (noise-free, unquantised) mosaic
    cam_wb = srgb_to_camera(gt, cam) * np.asarray(cam.wb_gains, np.float32)
    ideal = isp.apply_color_matrix(isp.demosaic_bilinear(isp.mosaic_rgb(cam_wb, cfa=cfa), cfa=cfa), cam.cam_to_srgb)
    assert out.dtype == np.float32 and out.shape == gt.shape
    assert abs(psnr(out, gt) - psnr(ideal, gt)) < 0.1
    assert psnr(out, gt) > 25


def test_noise_makes_it_worse_by_the_expected_amount(tmp_path):
    gt = scene(2)
    clean_cam = CameraParams(cfa="RGGB", wb_gains=(2.0, 1.0, 1.7))
    noisy_cam = CameraParams(cfa="RGGB", wb_gains=(2.0, 1.0, 1.7), noise=NoiseParams(4e-3, 1e-4))
    write_capture_dng(tmp_path / "c.dng", capture(gt, clean_cam, 0))
    write_capture_dng(tmp_path / "n.dng", capture(gt, noisy_cam, 0))
    lin = rawcv.load_pipeline("linear")
    clean = lin(rawcv.read(tmp_path / "c.dng"))
    noisy = lin(rawcv.read(tmp_path / "n.dng"))
    # noise is independent of the demosaicing error, so the error energies add
    extra = np.mean((noisy - clean)[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64) ** 2)
    expected = 10 * np.log10(1 / (np.mean((clean - gt)[BORDER:-BORDER, BORDER:-BORDER] ** 2) + extra))
    assert psnr(noisy, gt) < psnr(clean, gt) - 3
    assert psnr(noisy, gt) == pytest.approx(expected, abs=0.3)


@pytest.mark.parametrize("level", [0.05, 0.2, 0.6])
def test_measured_variance_matches_model_per_channel(level):
    params = NoiseParams(6e-3, 2e-4)
    cam = CameraParams(cfa="GRBG", bits=14, black=512.0, wb_gains=(1.0, 1.0, 1.0), noise=params,
                       xyz_to_cam=np.linalg.inv(isp.SRGB_TO_XYZ))
    flat = np.full((256, 256, 3), level, np.float32)
    cap = capture(flat, cam, 5)
    norm = isp.subtract_black_level(cap.mosaic, black=cam.black, white=cam.white)
    lsb = 1.0 / (cam.white - cam.black)
    for dy in range(2):
        for dx in range(2):
            plane = norm[dy::2, dx::2].astype(np.float64)
            mean = cap.clean_mosaic[dy::2, dx::2].mean()
            model = params.lambda_shot * mean + params.lambda_read + lsb ** 2 / 12
            assert plane.var() == pytest.approx(model, rel=0.10), (dy, dx)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_cfa_phase(tmp_path, cfa):
    """A pure red scene lights exactly the red sites of the written layout, as LibRaw reads it."""
    red = np.zeros((32, 32, 3), np.float32)  # LibRaw rejects images under 22 pixels a side
    red[..., 0] = 0.5
    cam = CameraParams(cfa=cfa, wb_gains=(1.0, 1.0, 1.0), xyz_to_cam=np.linalg.inv(isp.SRGB_TO_XYZ))
    write_capture_dng(tmp_path / "r.dng", capture(red, cam, 0))
    with rawpy.imread(str(tmp_path / "r.dng")) as r:
        lit = r.raw_image_visible[:2, :2] > cam.black + 100
        desc = r.color_desc.decode()
        libraw_layout = "".join(desc[i] for i in r.raw_pattern.ravel())
    assert libraw_layout == cfa
    assert np.array_equal(lit, cfa_channel_map(cfa) == 0)


def test_dng_tags_read_back_by_libraw_and_rawcv(tmp_path):
    cam = CameraParams(cfa="BGGR", bits=12, black=128.0, wb_gains=(2.3, 1.0, 1.55),
                       noise=NoiseParams(2e-3, 3e-5))
    write_capture_dng(tmp_path / "t.dng", capture(scene(3, 64), cam, 0))
    raw = rawcv.read(tmp_path / "t.dng")
    with rawpy.imread(str(tmp_path / "t.dng")) as r:
        assert r.black_level_per_channel == [128] * 4 and r.white_level == 4095
        wb = np.asarray(r.camera_whitebalance[:3])
        assert wb / wb[1] == pytest.approx([2.3, 1.0, 1.55], abs=1e-4)
        assert np.array_equal(r.raw_image_visible, raw.data)
    assert raw.cfa == "BGGR" and raw.meta.white_level == 4095 and raw.meta.black_level == (128.0,) * 4
    assert np.asarray(raw.meta.xyz_to_cam) == pytest.approx(cam.xyz_to_cam, abs=1e-4)
    assert raw.meta.noise_profile == pytest.approx([2e-3, 3e-5] * 3)
    assert raw.meta.as_shot_wb == pytest.approx([2.3, 1.0, 1.55], abs=1e-4)


def test_noise_estimate_from_written_dng(tmp_path):
    params = NoiseParams(4e-3, 1.5e-4)
    cam = CameraParams(cfa="RGGB", noise=params, wb_gains=(2.0, 1.0, 1.7))
    img = generate_scene(np.random.default_rng(9), size=512, n_objects=2).radiance
    write_capture_dng(tmp_path / "e.dng", capture(img, cam, 1))
    est = rawcv.noise.estimate(rawcv.read(tmp_path / "e.dng"))
    assert est.lambda_shot == pytest.approx(params.lambda_shot, rel=0.2)
    assert est.lambda_read == pytest.approx(params.lambda_read, rel=0.2)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            data = p.read_bytes()
            if p.name == "manifest.json":
                data = json.dumps({k: v for k, v in json.loads(data).items() if k != "command"}).encode()
            h.update(data)
    return h.hexdigest()


def test_dataset_is_reproducible_bit_for_bit(tmp_path):
    cfg = SynthConfig(task="segment", n=6, size=32, noise="1e-3:1e-2", cfa=None, seed=7)
    make_dataset(tmp_path / "a", cfg)
    make_dataset(tmp_path / "b", cfg)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    make_dataset(tmp_path / "c", SynthConfig(task="segment", n=6, size=32, noise="1e-3:1e-2", cfa=None, seed=8))
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_synth_cli_manifest_splits_masks_and_labels(tmp_path):
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "synth", "--task", "classify", "-n", "10",
                           "-o", str(out), "--size", "64", "--noise", "high", "--seed", "3", "--with-truth", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 8, "val": 1, "test": 1}
    assert manifest["classes"][0] == "background" and len(manifest["classes"]) == 7
    import cv2
    for item in manifest["items"]:
        mask = cv2.imread(str(out / item["mask"]), cv2.IMREAD_UNCHANGED)
        ids = set(np.unique(mask).tolist()) - {0}
        assert ids == {item["label"]}           # classify scenes hold exactly one object
        assert item["camera"]["noise"]["lambda_shot"] == pytest.approx(0.012)
        clean = np.load(out / item["clean"])
        assert clean.shape == (64, 64, 3) and clean.dtype == np.float32
        assert rawcv.read(out / item["raw"]).meta.noise_profile[0] == pytest.approx(0.012)
    # refusing to overwrite, then replacing with --overwrite
    again = subprocess.run([sys.executable, str(ROOT / "cli.py"), "synth", "--task", "classify", "-n", "2",
                            "-o", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr
