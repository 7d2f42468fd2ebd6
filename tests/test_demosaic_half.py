"""Half-size output (``demosaic: {method: half}``, ``rawcv process --half-size``): one RGB pixel per
2 x 2 CFA tile, against LibRaw's own ``half_size`` on the same DNG and a per-tile NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import rawcv
from rawcv.isp.demosaic import demosaic_half
from rawcv.meta import BAYER_PATTERNS
from rawcv.pipeline import load_pipeline


def reference_half(mosaic: np.ndarray, cfa: str) -> np.ndarray:
    """Per tile: R and B as sampled, G the mean of the two greens (colours read off the pattern)."""
    h, w = mosaic.shape[0] // 2, mosaic.shape[1] // 2
    tile = np.array(list(cfa)).reshape(2, 2)
    out = np.zeros((h, w, 3))
    for dy in range(2):
        for dx in range(2):
            values = mosaic[dy:2 * h:2, dx:2 * w:2].astype(np.float64)
            c = "RGB".index(tile[dy, dx])
            out[..., c] += values / 2 if c == 1 else values
    return out


@pytest.mark.parametrize("shape", [(2, 2), (7, 9), (30, 44)])
@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_matches_the_per_tile_reference(cfa, shape):
    mosaic = np.random.default_rng(1).integers(0, 65536, shape).astype(np.uint16)
    out = demosaic_half(mosaic, cfa=cfa)
    assert out.shape == (shape[0] // 2, shape[1] // 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, reference_half(mosaic, cfa))       # exact: halves of integers


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_matches_libraw_half_size(cfa, tmp_path):
    rawpy = pytest.importorskip("rawpy")
    mosaic = np.random.default_rng(2).integers(0, 65535, (40, 60)).astype(np.uint16)
    path = tmp_path / "m.dng"
    rawcv.write_dng(path, mosaic, cfa=cfa, black=0, white=65535, as_shot_wb=(1.0, 1.0, 1.0),
                    color_matrix=np.eye(3))
    with rawpy.imread(str(path)) as r:
        libraw = r.postprocess(half_size=True, output_color=rawpy.ColorSpace.raw, gamma=(1, 1),
                               no_auto_bright=True, use_camera_wb=False, user_wb=[1, 1, 1, 1], output_bps=16,
                               user_flip=0, adjust_maximum_thr=0)
    ours = demosaic_half(mosaic, cfa=cfa)
    assert libraw.shape == ours.shape
    assert np.abs(libraw.astype(np.float64) - ours).max() <= 1       # LibRaw halves the green sum in integers


def test_half_size_on_the_command_line_quarters_the_output(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    root = Path(__file__).resolve().parent.parent
    path = tmp_path / "in.dng"
    rawcv.write_dng(path, np.random.default_rng(3).integers(300, 4000, (40, 62)).astype(np.uint16), cfa="GBRG",
                    black=256, white=4095, as_shot_wb=(2.0, 1.0, 1.5))
    run = subprocess.run([sys.executable, str(root / "cli.py"), "process", str(path), "-o", str(tmp_path / "out"),
                          "--half-size", "--quiet"], env=dict(os.environ, PYTHONPATH=str(root)),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    image = cv2.imread(str(tmp_path / "out" / "in.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert image.shape == (20, 31, 3)
    expected = load_pipeline("default").with_params("demosaic", method="half")(rawcv.read(path))
    assert np.array_equal(image, expected)
    side = json.loads((tmp_path / "out" / "in.png.json").read_text())
    assert [s["method"] for s in side["pipeline"]["stages"] if s["stage"] == "demosaic"] == ["half"]
