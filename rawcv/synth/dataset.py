"""Synthetic datasets on disk: DNGs with ground truth and one JSON manifest, reproducible by seed.

Layout of a dataset folder ``DIR``::

    DIR/manifest.json            task, classes, seed, command, camera settings, one entry per item
    DIR/train/00000.dng          the raw capture (true CFA, levels, AsShotNeutral, ColorMatrix1, NoiseProfile)
    DIR/train/00000_clean.npy    clean linear sRGB radiance, float32 H x W x 3 (what the linear pipeline aims at)
    DIR/train/00000_mask.png     class id per pixel (0 background, 1..6 shapes), uint8
    DIR/val/..., DIR/test/...

Each task gets the ground truth it trains on and no more, since the clean radiance is six times
the size of the raw file: ``classify`` the labels (in the manifest), ``segment`` the masks,
``restore`` the clean images. ``with_truth`` writes both masks and clean images for any task.

Item ``i`` draws everything from ``numpy.random.default_rng([seed, i])``, so a dataset is identical
bit for bit whatever the order or number of workers that make it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import OutputExistsError, RawcvError
from ..options import TASKS
from .camera import CameraParams, capture, random_camera, write_capture_dng
from .lens import random_lens
from .noise import NoiseParams, parse_noise
from .scenes import (CLASS_NAMES, generate_scene, load_skimage_scene, random_scene_crop, scene_from_image,
                     skimage_scenes)

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
#: Ground truth files each task needs besides the raw file and the manifest's label.
TASK_TRUTH = {"classify": (), "segment": ("mask",), "restore": ("clean",)}


@dataclass
class SynthConfig:
    """What :func:`make_dataset` generates (the options of ``rawcv synth``).

    ``with_truth`` writes every item's clean image and mask whatever the task (by default a task
    gets only the ground truth it trains on, :data:`TASK_TRUTH`).
    """

    task: str = "classify"
    n: int = 100
    size: int = 256
    noise: str = "low"
    cfa: Optional[str] = "RGGB"      # None: random layout per image
    bits: int = 14
    seed: int = 0
    from_images: Optional[str] = None
    split: Sequence[float] = (0.8, 0.1, 0.1)
    vignetting: bool = False
    lens: bool = False
    randomize_camera: bool = True
    with_truth: bool = False

    @property
    def truth(self) -> tuple:
        """The ground truth files written per item: a subset of ``("clean", "mask")``."""
        return ("clean", "mask") if self.with_truth else TASK_TRUTH[self.task]

    def validate(self):
        if self.task not in TASKS:
            raise RawcvError(f"unknown task {self.task!r}: expected one of {', '.join(TASKS)}")
        if self.n < 1:
            raise RawcvError("the number of images must be >= 1")
        if self.size < 16 or self.size % 2:
            raise RawcvError(f"size must be an even number >= 16, got {self.size}")
        split_counts(self.n, self.split)
        try:
            parse_noise(self.noise)
        except ValueError as exc:
            raise RawcvError(f"bad --noise {self.noise!r}: {exc}") from None


def split_counts(n: int, split) -> tuple:
    """Numbers of train/val/test images: ``split`` holds fractions (summing to 1) or counts (summing to n)."""
    split = [float(v) for v in split]
    if len(split) != 3 or min(split) < 0:
        raise RawcvError(f"split needs three non-negative numbers, got {split}")
    if all(v == int(v) for v in split) and sum(split) == n and max(split) >= 1:
        return tuple(int(v) for v in split)
    if abs(sum(split) - 1) > 1e-6:
        raise RawcvError(f"split must be three fractions summing to 1 or three counts summing to {n}, got {split}")
    n_train = int(round(split[0] * n))
    n_val = min(n - n_train, int(round(split[1] * n)))
    return n_train, n_val, n - n_train - n_val


def split_of(i: int, counts) -> str:
    """Deterministic split by index: the first ``counts[0]`` train, then val, then test."""
    return "train" if i < counts[0] else ("val" if i < counts[0] + counts[1] else "test")


def _image_sources(from_images: Optional[str]):
    """A list of callables returning linear sRGB images: files of a folder, or skimage.data's."""
    if from_images is None:
        return None
    if from_images == "skimage":
        return [lambda name=name: load_skimage_scene(name) for name in skimage_scenes()]
    folder = Path(from_images)
    if not folder.is_dir():
        raise RawcvError(f"{folder}: --from-images needs a folder of images (or 'skimage')")
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"))
    if not files:
        raise RawcvError(f"{folder}: no PNG/JPEG/TIFF images found")

    def loader(path):
        import imageio.v3 as iio
        try:
            return scene_from_image(iio.imread(path))
        except Exception as exc:  # one bad image should say which
            raise RawcvError(f"{path}: cannot use as a scene ({exc})") from None
    return [lambda p=p: loader(p) for p in files]


def _random_crop(image, size, rng):
    out = random_scene_crop(image, size, rng)
    # random exposure so photographs span dark to bright scenes like the procedural ones
    return np.ascontiguousarray(out * np.float32(rng.uniform(0.3, 1.0)), dtype=np.float32)


def make_item(cfg: SynthConfig, i: int, noise_spec, sources=None) -> dict:
    """Generate item ``i``: scene, camera, capture. Returns arrays and the manifest entry."""
    rng = np.random.default_rng([cfg.seed, i])
    noise = noise_spec(rng) if callable(noise_spec) else noise_spec
    if noise.lambda_shot == 0 and noise.lambda_read == 0 and noise.row_sigma == 0:
        noise = None   # "none": a clean capture, and no NoiseProfile claiming otherwise
    if sources:
        radiance = _random_crop(sources[int(rng.integers(len(sources)))](), cfg.size, rng)
        mask = np.zeros(radiance.shape[:2], np.uint8)
        label = 0
    else:
        scene = generate_scene(rng, size=cfg.size, single_object=cfg.task == "classify",
                               n_objects=1 if cfg.task == "classify" else (1, 4))
        radiance, mask, label = scene.radiance, scene.mask, int(scene.label)
    if cfg.randomize_camera:
        cam = random_camera(rng, cfa=cfg.cfa, bits=cfg.bits, noise=noise, vignetting=cfg.vignetting)
    else:
        cam = CameraParams(cfa=cfg.cfa or "RGGB", bits=cfg.bits, black=float(1 << (cfg.bits - 5)), noise=noise)
    if cfg.lens:
        cam.lens = random_lens(rng, radiance.shape)
    cap = capture(radiance, cam, rng)
    return {"radiance": radiance, "mask": mask, "label": label, "capture": cap}


def make_dataset(out_dir, cfg: SynthConfig, *, overwrite: bool = False, command: str = "",
                 progress: Optional[Callable[[int], None]] = None) -> dict:
    """Generate a dataset into ``out_dir`` and return its manifest.

    The folder is built under a temporary name and renamed at the end, so an interrupted run leaves
    no half dataset behind.
    """
    cfg.validate()
    from ..batch import make_output_folder

    out_dir = Path(out_dir)
    try:
        exists = out_dir.exists()
    except OSError as exc:      # e.g. a name longer than the file system allows
        raise RawcvError(f"{out_dir}: cannot create the dataset folder ({exc.strerror or exc})") from None
    if exists and not out_dir.is_dir():
        raise RawcvError(f"{out_dir}: is a file, not a folder for the dataset")
    make_output_folder(out_dir.parent)
    if exists and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out_dir}: exists and is not empty (use --overwrite to replace it)")
    noise_spec = parse_noise(cfg.noise)
    sources = _image_sources(cfg.from_images)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        for s in SPLITS:
            (tmp / s).mkdir(parents=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RawcvError(f"{out_dir}: cannot create the dataset folder ({exc.strerror or exc})") from None
    items = []
    counts = split_counts(cfg.n, cfg.split)
    try:
        for i in range(cfg.n):
            split = split_of(i, counts)
            item = make_item(cfg, i, noise_spec, sources)
            stem = f"{split}/{i:05d}"
            write_capture_dng(tmp / f"{stem}.dng", item["capture"])
            entry = {"id": stem, "split": split, "raw": f"{stem}.dng"}
            if "clean" in cfg.truth:
                np.save(tmp / f"{stem}_clean.npy", item["radiance"])
                entry["clean"] = f"{stem}_clean.npy"
            if "mask" in cfg.truth:
                import cv2

                cv2.imwrite(str(tmp / f"{stem}_mask.png"), item["mask"])
                entry["mask"] = f"{stem}_mask.png"
            items.append({**entry, "label": item["label"],
                          "label_name": CLASS_NAMES[item["label"]] if not sources else None,
                          "camera": item["capture"].params.to_dict()})
            if progress is not None:
                progress(i)
        manifest = {
            "task": cfg.task, "classes": list(CLASS_NAMES), "seed": cfg.seed, "size": cfg.size,
            "cfa": cfg.cfa, "bits": cfg.bits, "noise": str(cfg.noise), "from_images": cfg.from_images,
            "split": list(cfg.split), "truth": list(cfg.truth), "command": command,
            "counts": {s: sum(it["split"] == s for it in items) for s in SPLITS},
            "items": items,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def load_manifest(dataset_dir) -> dict:
    path = Path(dataset_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RawcvError(f"{path}: no manifest (not a rawcv synth dataset)") from None
    except json.JSONDecodeError as exc:
        raise RawcvError(f"{path}: malformed manifest ({exc.msg} at line {exc.lineno})") from None


__all__ = ["SynthConfig", "make_dataset", "make_item", "load_manifest", "TASKS", "SPLITS", "NoiseParams"]
