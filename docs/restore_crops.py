"""Zoomed crops for docs/DENSE_RESULTS.md: restoration models beside the classical baselines.

Usage::

    python docs/restore_crops.py OUT.png "LABEL=RUN_OR_CKPT" ...

Takes held-out synthetic test pairs 0-3 (split "test", seed 0, high noise, 256 x 256: the pairs of
``rawcv eval restore --synthetic 32 --seed 0``), cuts a 128 x 128 window from each and shows it 2x
(nearest neighbour) through the display path: noisy (bilinear), ISP mean 3x3, NLM+VST, every model
given (one forward pass, no self-ensemble), ground truth.
"""

import sys

import cv2

from rawcv.data.restore import RestorePairs
from rawcv.train.restore import (camera_to_output, classical_baselines, generator_options, load_restorer,
                                 restore_packed, side_by_side)

WINDOWS = [(0, 40, 60), (3, 0, 100), (2, 90, 40), (1, 40, 20)]   # (test pair, top, left)
SIDE = 128


def main(out, specs):
    models = []
    for spec in specs:
        label, path = spec.split("=", 1)
        model, ckpt, _ = load_restorer(path, "cpu")
        models.append((label, model, ckpt))
    pairs = RestorePairs(32, split="test", seed=0, size=256, noise="high", sources="mixed")
    rows = []
    for index, top, left in WINDOWS:
        pair = pairs.pair(index)
        base = classical_baselines(pair.mosaic, pair.gains, pair.lambda_shot, pair.lambda_read)
        cells = [("noisy (bilinear)", base["bilinear"]), ("mean3_mosaic", base["mean3_mosaic"]),
                 ("nlm_vst", base["nlm_vst"])]
        for label, model, ckpt in models:
            cells.append((label, restore_packed(model, pair.packed, pair.variance, pair.gains,
                                                **generator_options(ckpt), device="cpu")))
        cells.append(("ground truth", pair.target))
        row = []
        for label, image in cells:
            display = camera_to_output(image, pair.meta, "default")[top:top + SIDE, left:left + SIDE]
            row.append((label, cv2.resize(display, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)))
        rows.append(row)
    print(side_by_side(rows, out))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
