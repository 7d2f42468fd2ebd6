"""Zoomed crops for docs/DENSE_RESULTS.md: restoration models beside the classical baselines.

Usage::

    python docs/restore_crops.py [--detail] [--self-ensemble] [--window PAIR,TOP,LEFT ...] OUT.png
                                 "LABEL=RUN_OR_CKPT" ...

Takes held-out synthetic test pairs 0-3 (split "test", seed 0, high noise, 256 x 256: the pairs of
``rawcv eval restore --synthetic 32 --seed 0``; or the pairs and windows given with ``--window``,
repeatable), cuts a 128 x 128 window from each and shows it 2x
(nearest neighbour) through the display path: noisy (bilinear), ISP mean 3x3, NLM+VST, every model
given (one forward pass, or with ``--self-ensemble`` the mean over the 8 Bayer-preserving flips and
transposes), ground truth. ``--detail`` adds under each row its
detail band (``rawcv.train.restore.detail_band`` of the display values, x4 around mid-gray): where
PSNR cannot tell a blurred output from a sharp one, this shows it.
"""

import argparse

import cv2
import numpy as np

from rawcv.baselines import classical_baselines
from rawcv.data.restore import RestorePairs
from rawcv.train.restore import (camera_to_output, detail_band, generator_options, load_restorer, restore_packed,
                                 side_by_side)

WINDOWS = [(0, 40, 60), (3, 0, 100), (2, 90, 40), (1, 40, 20)]   # (test pair, top, left)
SIDE = 128
DETAIL_GAIN = 4.0


def zoom(image):
    return cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def detail_view(image, meta, window):
    """The display values' detail band x DETAIL_GAIN around mid-gray, as 8-bit gray RGB."""
    # the band of the whole image, then the window: no blur edge effects at the window's border
    display = camera_to_output(image, meta, "default", quantize=False)
    band = np.clip(0.5 + DETAIL_GAIN * detail_band(display), 0, 1)[window]
    return np.round(np.repeat(band[..., None], 3, axis=-1) * 255).astype(np.uint8)


def main(out, specs, detail=False, self_ensemble=False, windows=WINDOWS):
    models = []
    for spec in specs:
        label, path = spec.split("=", 1)
        model, ckpt, _ = load_restorer(path, "cpu")
        models.append((label, model, ckpt))
    pairs = RestorePairs(32, split="test", seed=0, size=256, noise="high", sources="mixed")
    rows = []
    for index, top, left in windows:
        pair = pairs.pair(index)
        base = classical_baselines(pair.mosaic, pair.gains, pair.lambda_shot, pair.lambda_read)
        cells = [("noisy (bilinear)", base["bilinear"]), ("mean3_mosaic", base["mean3_mosaic"]),
                 ("nlm_vst", base["nlm_vst"])]
        for label, model, ckpt in models:
            cells.append((label, restore_packed(model, pair.packed, pair.variance, pair.gains,
                                                **generator_options(ckpt), self_ensemble=self_ensemble,
                                                device="cpu")))
        cells.append(("ground truth", pair.target))
        window = (slice(top, top + SIDE), slice(left, left + SIDE))
        rows.append([(label, zoom(camera_to_output(image, pair.meta, "default")[window])) for label, image in cells])
        if detail:
            rows.append([(f"detail x{DETAIL_GAIN:g}", zoom(detail_view(image, pair.meta, window)))
                         for _, image in cells])
    print(side_by_side(rows, out))


def _window(text):
    pair, top, left = (int(v) for v in text.split(","))
    return pair, top, left


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", metavar="OUT.png")
    ap.add_argument("models", nargs="+", metavar="LABEL=RUN_OR_CKPT")
    ap.add_argument("--detail", action="store_true")
    ap.add_argument("--self-ensemble", action="store_true")
    ap.add_argument("--window", action="append", type=_window, metavar="PAIR,TOP,LEFT")
    args = ap.parse_args()
    main(args.out, args.models, detail=args.detail, self_ensemble=args.self_ensemble,
         windows=args.window or WINDOWS)
