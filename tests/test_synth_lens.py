"""The synthetic lens: a capture through it, written as a DNG with its opcode lists, comes out of
a pipeline as the same capture without the flaws (the opcodes undo exactly what the lens did, to
the resampling of the warp), LibRaw reads the file, and ``rawcv synth --lens`` writes such files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import rawpy
from scipy import ndimage

from rawcv import dng_opcodes as dng
from rawcv.cli import main
from rawcv.io import read
from rawcv.pipeline import Pipeline
from rawcv.synth.camera import CameraParams, capture, write_capture_dng
from rawcv.synth.lens import random_lens
from rawcv.synth.scenes import load_skimage_scene


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2))


def _through_lens(tmp_path, lens, scene):
    """(corrected, opcodes off, flawless reference) of the same scene through a lens with ``lens``."""
    vignetting = (0.3, -0.05, 0.0)
    write_capture_dng(tmp_path / "clean.dng", capture(scene, CameraParams(cfa="GRBG", vignetting=vignetting)),
                      overwrite=True)
    write_capture_dng(tmp_path / "lens.dng", capture(scene, CameraParams(cfa="GRBG", vignetting=vignetting, lens=lens)),
                      overwrite=True)
    pipe = Pipeline(["black_level", {"stage": "demosaic", "method": "malvar"}], name="rgb")
    # the flawless camera's DNG carries no opcodes: its vignetting is corrected by hand
    reference = Pipeline(["black_level", {"stage": "demosaic", "method": "malvar"},
                          {"stage": "vignetting", "k1": vignetting[0], "k2": vignetting[1]}], name="rgb")
    raw = read(tmp_path / "lens.dng")
    return pipe(raw), pipe.with_opcodes("off")(raw), reference(read(tmp_path / "clean.dng"))


SCENE = (slice(None, None, 4), slice(None, None, 4))
INNER = (slice(8, -8), slice(8, -8))


def test_a_capture_through_the_lens_comes_back_without_its_flaws(tmp_path):
    scene = np.ascontiguousarray(load_skimage_scene("astronaut")[SCENE][:120, :128] * 0.8)
    lens = random_lens(np.random.default_rng(3), scene.shape)
    path = tmp_path / "lens.dng"
    # without distortion, shading, falloff and stuck pixels come back exactly (to 14-bit levels)
    straight = dataclasses.replace(lens, distortion=((1.0, 0.0, 0.0, 0.0, 0.0, 0.0),) * 3)
    corrected, plain, reference = _through_lens(tmp_path, straight, scene)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_image_visible.shape == scene.shape[:2]
    names = {n: [e.name for e in dng.decode_opcode_list(p)] for n, p in read(path).meta.opcode_lists}
    assert names == {1: ["FixBadPixelsList"], 2: ["GainMap"] * 4 + ["FixVignetteRadial"], 3: ["WarpRectilinear"]}
    away = np.ones(scene.shape[:2], bool)
    for y, x, _ in lens.bad_pixels:
        away[y - 3:y + 4, x - 3:x + 4] = False
    # the stuck photosites are replaced by their neighbours' means: far closer than the stuck values
    at = tuple(np.array([(y, x) for y, x, _ in lens.bad_pixels]).T)
    assert np.abs(corrected[at] - reference[at]).mean() < 0.3 * np.abs(plain[at] - reference[at]).mean()
    assert _psnr(corrected[away], reference[away]) > 75
    assert _psnr(plain[INNER], reference[INNER]) < 32
    # with distortion and lateral chromatic aberration, the warp resamples: the geometry comes back
    # (low-passed, the images agree), the finest detail is softened by two resamplings
    corrected, plain, reference = _through_lens(tmp_path, lens, scene)
    blurred = [ndimage.gaussian_filter(img, (1.5, 1.5, 0))[INNER] for img in (corrected, plain, reference)]
    assert _psnr(blurred[0], blurred[2]) > 45
    assert _psnr(blurred[1], blurred[2]) < 35
    assert _psnr(corrected[INNER], reference[INNER]) > _psnr(plain[INNER], reference[INNER]) + 5


def test_rawcv_synth_lens_writes_the_flaws_and_their_opcodes(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--task", "classify", "-n", "2", "-o", str(out), "--size", "64", "--lens",
                 "--vignetting", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    item = manifest["items"][0]
    lens = item["camera"]["lens"]
    raw = read(out / item["raw"])
    lists = dict(raw.meta.opcode_lists)
    points = dng.decode_opcode_list(lists[1])[0].record.points
    assert [list(p) for p in points] == [p[:2] for p in lens["bad_pixels"]]
    gains = [e.record.grid()[..., 0] for e in dng.decode_opcode_list(lists[2])[:4]]
    np.testing.assert_allclose(np.stack(gains, -1), np.asarray(lens["shading"]), rtol=1e-6)
    vignette = dng.decode_opcode_list(lists[2])[4].record
    np.testing.assert_allclose(vignette.k[:3], item["camera"]["vignetting"])
