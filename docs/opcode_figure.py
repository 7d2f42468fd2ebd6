"""Before/after figure for the README: a DNG whose lens flaws its opcode lists describe.

Usage (from the repository root)::

    python docs/opcode_figure.py            # writes docs/opcode_before_after.png

A scikit-image photograph is photographed by rawcv's synthetic camera through a synthetic lens
(:mod:`rawcv.synth.lens`: colour shading per CFA position, radial falloff, barrel distortion with
lateral chromatic aberration, stuck pixels) and written as a DNG carrying the corrections as
opcode lists (GainMap x 4 and FixVignetteRadial in list 2, WarpRectilinear in list 3,
FixBadPixelsList in list 1). The default pipeline renders it with ``--opcodes off`` (what LibRaw,
rawpy and rawcv before the opcodes gave) and with ``--opcodes auto``, beside the same capture
without the flaws. A 3x crop of a corner shows the colour fringes and a stuck pixel.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rawcv.io import read  # noqa: E402
from rawcv.pipeline import load_pipeline  # noqa: E402
from rawcv.synth.camera import CameraParams, capture, write_capture_dng  # noqa: E402
from rawcv.synth.lens import random_lens  # noqa: E402
from rawcv.synth.scenes import load_skimage_scene  # noqa: E402
from rawcv.train.restore.figures import side_by_side  # noqa: E402

SEED = 11
CROP = (slice(8, 72), slice(8, 72))         # a top-left corner, where shading and fringes are largest
ZOOM = 3


def main(out=ROOT / "docs" / "opcode_before_after.png") -> Path:
    scene = np.ascontiguousarray(load_skimage_scene("astronaut")[::2, ::2] * 0.7)
    lens = random_lens(np.random.default_rng(SEED), scene.shape, bad_pixels=24)
    # a strong lens, so the flaws show at README size
    lens.distortion = tuple((1.0 + d, -0.15, 0.0, 0.0, 0.0, 0.0) for d in (0.008, 0.0, -0.008))
    lens.shading = 1.0 + 2.5 * (lens.shading - 1.0)
    vignetting = (0.5, 0.0, 0.0)
    pipe = load_pipeline("default")
    with tempfile.TemporaryDirectory() as tmp:
        flawed = CameraParams(cfa="RGGB", vignetting=vignetting, lens=lens)
        plain_cam = CameraParams(cfa="RGGB")
        write_capture_dng(Path(tmp) / "lens.dng", capture(scene, flawed, rng=0))
        write_capture_dng(Path(tmp) / "clean.dng", capture(scene, plain_cam, rng=0))
        raw = read(Path(tmp) / "lens.dng")
        before = pipe.with_opcodes("off")(raw)
        after = pipe(raw)
        truth = pipe(read(Path(tmp) / "clean.dng"))

    def crop(img):
        return np.repeat(np.repeat(img[CROP], ZOOM, axis=0), ZOOM, axis=1)

    rows = [[("opcodes off (LibRaw, rawpy)", before), ("opcodes auto (rawcv)", after), ("the lens without flaws", truth)],
            [("corner 3x, off", crop(before)), ("corner 3x, auto", crop(after)), ("corner 3x, no flaws", crop(truth))]]
    return side_by_side(rows, out)


if __name__ == "__main__":
    print(main())
