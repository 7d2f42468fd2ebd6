"""Before/after crops for the README: demosaic methods, and what clipped highlights turn into.

Usage (from the repository root)::

    python docs/demosaic_crops.py            # writes docs/demosaic_crops.png and docs/highlight_crops.png

Demosaicing: two 64 x 64 windows of scikit-image photographs (the ones where bilinear loses most
against GBTF), sampled through an RGGB CFA as in ``bench/demosaic_quality.py`` and demosaiced by
each method, shown 4x (nearest neighbour) with each window's CPSNR. Highlights: a synthetic
raw frame (the D3200's colour matrix and as-shot white balance, a neutral sphere lit up to 4x
the sensor's white level over a coloured ramp) through the default pipeline without the
``highlights`` stage (what rawcv did before it), and with each of its methods.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.demosaic_quality import cpsnr, load_images, mosaic_of  # noqa: E402
from rawcv.isp.demosaic import DEMOSAIC_METHODS  # noqa: E402
from rawcv.meta import CameraMeta, RawImage  # noqa: E402
from rawcv.pipeline import Pipeline, load_pipeline  # noqa: E402
from rawcv.train.restore.figures import side_by_side  # noqa: E402

WINDOWS = (("astronaut", 352, 144), ("motorcycle", 240, 400))     # (image, top, left)
SIDE, ZOOM = 64, 4
# the D3200's colour matrix and a daylight as-shot white balance (tests/test_highlights.py)
XYZ_TO_CAM = ((0.9020, -0.2890, -0.0715), (-0.4535, 1.2436, 0.2348), (-0.0934, 0.1919, 0.7086))
WB = (1.9492, 1.0, 1.3437)
BLACK, WHITE = 600, 15520


def zoom(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)


def to8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def demosaic_rows() -> list:
    images = dict(load_images()[0])
    default = next(s for s in load_pipeline("default").stages if s.name == "demosaic").method
    rows = []
    for name, top, left in WINDOWS:
        img = images[name]
        mosaic = mosaic_of(img)
        window = (slice(top, top + SIDE), slice(left, left + SIDE))
        row = []
        for method, dm in DEMOSAIC_METHODS.items():
            if dm.shrink != 1:
                continue
            out = dm.function(mosaic, cfa="RGGB")
            label = f"{method}{' (default)' if method == default else ''} {cpsnr(img[window], out[window], 0):.1f} dB"
            row.append((label, zoom(to8(out[window]))))
        row.append((f"{name}: truth", zoom(to8(img[window]))))
        rows.append(row)
    return rows


def blown_scene(h: int = 96, w: int = 160) -> RawImage:
    """A neutral light up to 4x white and an orange one whose red reaches 2.2x white (green and
    blue stay below it) over a warm-to-cool ramp, as raw counts of an RGGB sensor whose as-shot
    white balance is ``WB`` (balanced camera RGB: 1 = white level)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([0.25 + 0.35 * xx / w, 0.3 + 0.1 * yy / h, 0.45 - 0.3 * xx / w], axis=2)

    def light(cx, peak, colour):
        r2 = ((yy - h / 2) ** 2 + (xx - cx) ** 2) / (0.25 * h) ** 2
        return peak * np.exp(-r2)[..., None] * np.asarray(colour, np.float32)

    balanced = ramp + light(0.3 * w, 4.0, (1, 1, 1)) + light(0.75 * w, 2.2, (1.0, 0.4, 0.15))
    camera = balanced / np.asarray(WB, np.float32)        # what the sensor saw
    from rawcv.isp import mosaic_rgb

    counts = BLACK + np.minimum(mosaic_rgb(camera, cfa="RGGB"), 1.0) * (WHITE - BLACK)
    meta = CameraMeta("RGGB", black_level=BLACK, white_level=WHITE, as_shot_wb=WB, xyz_to_cam=XYZ_TO_CAM)
    return RawImage(np.round(counts).astype(np.uint16), meta)


def highlight_rows() -> list:
    raw = blown_scene()
    default = load_pipeline("default")
    without = Pipeline([s for s in default.stages if s.name != "highlights"])
    twice = lambda img: cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)   # noqa: E731
    row = [("no highlights stage (before)", twice(without.run(raw).image))]
    for method in next(s for s in default.stages if s.name == "highlights").param("method").choices:
        row.append((f"highlights: {method}", twice(default.with_params("highlights", method=method).run(raw).image)))
    return [row]


def main() -> int:
    print(side_by_side(demosaic_rows(), ROOT / "docs" / "demosaic_crops.png"))
    print(side_by_side(highlight_rows(), ROOT / "docs" / "highlight_crops.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
