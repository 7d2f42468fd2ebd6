"""Toy data for tests and examples: bright shapes on a dark background, written as DNG, as a
class folder (:func:`make_toy_folder`) or a synthetic-dataset manifest (:func:`make_toy_synth`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .datasets import MANIFEST


TOY_CLASSES = ("disc", "square")


def _toy_mosaic(rng, shape: str, size: int, black: int, white: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    r = rng.uniform(0.18, 0.3) * size
    cy, cx = rng.uniform(r + 1, size - r - 1, 2)
    if shape == "disc":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    elif shape == "square":
        half = r * 0.886                                   # same area as the disc
        inside = (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
    else:
        raise ValueError(f"unknown toy shape {shape!r}: expected one of {', '.join(TOY_CLASSES)}")
    level = np.where(inside, rng.uniform(0.5, 0.8), rng.uniform(0.03, 0.08)).astype(np.float32)
    level = level + rng.normal(0, 0.01, level.shape).astype(np.float32)
    return np.clip(black + level * (white - black), 0, white).astype(np.uint16)


def make_toy_folder(root, *, classes: Sequence[str] = TOY_CLASSES, n_per_class: int = 16, size: int = 64,
                    seed: int = 0, cfa: str = "RGGB", black: int = 64, white: int = 4095) -> Path:
    """Write a tiny class folder of DNGs: ``root/disc/*.dng`` and ``root/square/*.dng``.

    Bright shapes (random position, size and brightness, with a little noise) on a dark
    background; easy enough for a small network to learn in a few epochs. For tests and examples.
    """
    from ..io import write_dng

    root = Path(root)
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            write_dng(root / c / f"{c}_{i:03d}.dng", _toy_mosaic(rng, c, size, black, white), cfa=cfa,
                      black=black, white=white, overwrite=True)
    return root


def make_toy_synth(root, *, n_train: int = 8, n_val: int = 4, n_test: int = 4, size: int = 64, seed: int = 0,
                   cfa: str = "RGGB", black: int = 64, white: int = 4095) -> Path:
    """Write a tiny dataset in the ``rawcv synth`` manifest layout (DNG, clean ``.npy``, mask ``.png``).

    Classes are the synthetic shape classes; only "circle" (1) and "square" (2) are drawn.
    """
    import imageio.v3 as iio

    from ..io import write_dng

    root = Path(root)
    rng = np.random.default_rng(seed)
    names = ["background", "circle", "square", "triangle", "star", "ring", "cross"]
    items = []
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = 1 + (i % 2)
            mosaic = _toy_mosaic(rng, "disc" if label == 1 else "square", size, black, white)
            norm = (mosaic.astype(np.float32) - black) / (white - black)
            clean = np.repeat(norm[..., None], 3, axis=2).astype(np.float32)
            mask = np.where(norm > 0.3, label, 0).astype(np.uint8)
            stem = f"{split}/{i:05d}"
            write_dng(root / f"{stem}.dng", mosaic, cfa=cfa, black=black, white=white, overwrite=True)
            np.save(root / f"{stem}_clean.npy", clean)
            iio.imwrite(root / f"{stem}_mask.png", mask)
            items.append({"id": stem, "split": split, "raw": f"{stem}.dng", "clean": f"{stem}_clean.npy",
                          "mask": f"{stem}_mask.png", "label": label, "camera": {"cfa": cfa, "black": black,
                                                                                   "white": white}})
    manifest = {"task": "classify", "classes": names, "seed": seed, "size": size, "cfa": cfa, "noise": "toy",
                "command": "rawcv.data.make_toy_synth", "items": items}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return root


__all__ = ["TOY_CLASSES", "make_toy_folder", "make_toy_synth"]
