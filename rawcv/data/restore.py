"""Restoration pairs for joint denoising + demosaicing: noisy packed raw -> clean linear RGB.

Pairs are made **on the fly** from clean scenes, procedural (:func:`rawcv.synth.generate_scene`)
and scikit-image photographs (random crops, flips and exposures), photographed by the synthetic
camera (:mod:`rawcv.synth.camera`: random white balance and colour matrix, Bayer sampling, the
Brooks et al. 2019 noise model, black level, clipping and 14-bit quantisation). Item ``i`` of a
split draws everything from ``numpy.random.default_rng([seed, split_code, i])``, so a validation
or test set is fixed by its seed, whatever the order or the number of workers.

What a sample holds (see :class:`RestorePair`):

* ``input``: the noisy mosaic, black level removed and normalised (not clipped), packed as
  ``4 x H/2 x W/2`` in the order R, G1, G2, B (Bayer pattern RGGB: other patterns are brought
  to RGGB by a one-pixel crop, :func:`canonical_crop`);
* ``variance``: the per-pixel noise variance estimated from the noisy input itself with the noise
  model, ``lambda_shot * max(x, 0) + lambda_read`` per packed channel (Brooks et al. 2019);
* ``target``: **white-balanced linear camera RGB** ``3 x H x W`` (the camera's raw colour space,
  as-shot white balance applied, before the colour matrix): what the ISP's black level, white
  balance and demosaic stages would give for a noise-free, perfectly demosaiced capture. The
  display path (colour matrix, sRGB curve, 8-bit) is then the pipeline's own
  (:func:`rawcv.train.restore.camera_to_output`). It is chosen over linear sRGB because the
  colour matrix differs per camera and is known from the file's metadata; the network need not
  guess it.
* ``gains`` (the as-shot white balance, 3) and ``xyz_to_cam`` (3 x 3): the network predicts
  camera RGB and is multiplied by ``gains``; the colour matrix gives sRGB for metrics.
* ``noise``: ``(lambda_shot, lambda_read)``.

A ``rawcv synth --task restore`` dataset folder is read by :class:`SynthRestoreSet` in the same
form (its clean ``.npy`` holds linear sRGB radiance; the target is that brought back to camera
space with the file's colour matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import RawcvError
from ..meta import CameraMeta, RawImage, cfa_shift, validate_cfa
from ..options import RESTORE_NOISE as DEFAULT_NOISE
from ..options import RESTORE_SOURCES as SOURCES

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
TARGET_SPACE = "camera_wb_linear"
TARGET_DESCRIPTION = ("white-balanced linear camera RGB (as-shot white balance applied, before the colour "
                      "matrix), float32, 1.0 = sensor white")


# --------------------------------------------------------------------------------------------
# Small pieces shared by training, prediction and evaluation
# --------------------------------------------------------------------------------------------

def packed_variance(packed, lambda_shot, lambda_read) -> np.ndarray:
    """The float32 noise-model variance of a packed ``4 x h x w`` array, with numbers or 4 values
    (one per packed channel R, G1, G2, B) for ``lambda_shot`` / ``lambda_read``
    (:func:`rawcv.synth.noise.noise_variance`)."""
    from ..synth.noise import noise_variance

    return noise_variance(packed, lambda_shot, lambda_read, dtype=np.float32)


def pack_mosaic(mosaic, cfa: str) -> np.ndarray:
    """A normalised ``H x W`` mosaic as ``4 x H/2 x W/2`` planes R, G1, G2, B (NumPy twin of
    :func:`rawcv.torch.tensors.pack`)."""
    from ..torch.tensors import packed_positions

    m = np.asarray(mosaic)
    if m.ndim != 2 or m.shape[0] % 2 or m.shape[1] % 2:
        raise ValueError(f"packing needs an even-sized H x W mosaic, got shape {m.shape}")
    return np.stack([m[dy::2, dx::2] for dy, dx in packed_positions(cfa)]).astype(np.float32)


def canonical_offset(cfa: str) -> tuple:
    """``(dy, dx)`` at which a crop of a ``cfa`` mosaic starts with an RGGB tile."""
    cfa = validate_cfa(cfa)
    for dy in range(2):
        for dx in range(2):
            if cfa_shift(cfa, dy, dx) == "RGGB":
                return dy, dx
    raise AssertionError(cfa)  # pragma: no cover - every Bayer pattern has one


def canonical_crop(mosaic, cfa: str):
    """Crop a mosaic (and keep even size) so that its pattern is RGGB.

    Returns ``(cropped, (dy, dx))``; ``(0, 0)`` and the mosaic itself (even-cropped) for RGGB.
    Other patterns lose one row and/or column at each side where needed.
    """
    dy, dx = canonical_offset(cfa)
    m = np.asarray(mosaic)
    h = (m.shape[0] - dy) // 2 * 2
    w = (m.shape[1] - dx) // 2 * 2
    return m[dy:dy + h, dx:dx + w], (dy, dx)


def camera_to_srgb(xyz_to_cam) -> np.ndarray:
    """The 3 x 3 camera RGB -> linear sRGB matrix the ISP's colour-matrix stage uses."""
    from ..isp import camera_to_srgb_matrix

    return np.asarray(camera_to_srgb_matrix(np.asarray(xyz_to_cam, dtype=np.float64).reshape(3, 3)))


def srgb_to_camera_wb(linear_srgb, xyz_to_cam) -> np.ndarray:
    """Linear sRGB -> white-balanced camera RGB (the inverse of the colour-matrix stage)."""
    from ..isp import apply_color_matrix

    return np.asarray(apply_color_matrix(np.asarray(linear_srgb, np.float32),
                                         np.linalg.inv(camera_to_srgb(xyz_to_cam))), dtype=np.float32)


def noise_from_meta(meta: CameraMeta):
    """``(lambda_shot, lambda_read)`` from a DNG ``NoiseProfile`` (pairs S, O; averaged over
    planes), or None when the file has none."""
    npf = getattr(meta, "noise_profile", None)
    if not npf:
        return None
    v = np.asarray(npf, dtype=np.float64).reshape(-1)
    if v.size < 2 or v.size % 2:
        return None
    return float(v[0::2].mean()), float(v[1::2].mean())


# --------------------------------------------------------------------------------------------
# One pair
# --------------------------------------------------------------------------------------------

@dataclass
class RestorePair:
    """One noisy/clean pair (NumPy arrays; :meth:`to_tensors` makes the training dict)."""

    mosaic: np.ndarray        # H x W noisy normalised mosaic, pattern RGGB (for the classical baselines)
    packed: np.ndarray        # 4 x H/2 x W/2, R G1 G2 B
    variance: np.ndarray      # 4 x H/2 x W/2
    target: np.ndarray        # H x W x 3 white-balanced linear camera RGB
    gains: np.ndarray         # (3,) as-shot white balance multipliers (G = 1)
    xyz_to_cam: np.ndarray    # (3, 3)
    lambda_shot: float
    lambda_read: float
    meta: CameraMeta
    source: str = ""

    @property
    def cfa(self) -> str:
        return "RGGB"

    def to_tensors(self) -> dict:
        return {
            "input": torch.from_numpy(np.ascontiguousarray(self.packed, dtype=np.float32)),
            "variance": torch.from_numpy(np.ascontiguousarray(self.variance, dtype=np.float32)),
            "target": torch.from_numpy(np.ascontiguousarray(self.target.transpose(2, 0, 1), dtype=np.float32)),
            "gains": torch.as_tensor(np.asarray(self.gains, dtype=np.float32)),
            "xyz_to_cam": torch.as_tensor(np.asarray(self.xyz_to_cam, dtype=np.float32)),
            "noise": torch.tensor([self.lambda_shot, self.lambda_read], dtype=torch.float32),
        }


def make_pair(mosaic_norm, cfa: str, target_wb, gains, xyz_to_cam, lambda_shot, lambda_read, *,
              meta: Optional[CameraMeta] = None, source: str = "") -> RestorePair:
    """Assemble a :class:`RestorePair` from a noisy normalised mosaic and its clean target
    (cropped to an RGGB phase and even size)."""
    mosaic, (dy, dx) = canonical_crop(mosaic_norm, cfa)
    h, w = mosaic.shape
    target = np.asarray(target_wb, dtype=np.float32)[dy:dy + h, dx:dx + w]
    packed = pack_mosaic(mosaic, "RGGB")
    gains = np.asarray(gains, dtype=np.float32).reshape(3)
    xyz = np.asarray(xyz_to_cam, dtype=np.float64).reshape(3, 3)
    if meta is None:
        meta = CameraMeta("RGGB", as_shot_wb=tuple(float(g) for g in gains),
                          xyz_to_cam=tuple(tuple(float(v) for v in row) for row in xyz))
    return RestorePair(mosaic=np.ascontiguousarray(mosaic, dtype=np.float32), packed=packed,
                       variance=packed_variance(packed, lambda_shot, lambda_read), target=target, gains=gains,
                       xyz_to_cam=xyz, lambda_shot=float(lambda_shot), lambda_read=float(lambda_read), meta=meta,
                       source=source)


# --------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------

_PHOTOS: dict = {}


def _photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as linear radiance (cached per process)."""
    img = _PHOTOS.get(name)
    if img is None:
        from ..synth import load_skimage_scene

        img = _PHOTOS[name] = load_skimage_scene(name)
    return img


def photo_crop(rng, size: int) -> np.ndarray:
    """A random ``size x size`` crop of a random bundled photograph: random flip / 90-degree
    turn, exposure x U(0.2, 1.0) (dark to bright scenes, like the procedural ones)."""
    from ..synth import random_scene_crop, skimage_scenes

    names = skimage_scenes()
    if not names:
        raise RawcvError("scikit-image photographs are not available (install scikit-image)")
    out = random_scene_crop(_photo(names[int(rng.integers(len(names)))]), size, rng)
    k = int(rng.integers(4))
    if k:
        out = np.rot90(out, k)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out * np.float32(rng.uniform(0.2, 1.0)), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# The on-the-fly dataset
# --------------------------------------------------------------------------------------------

class RestorePairs(Dataset):
    """Noisy/clean restoration pairs generated on the fly, deterministic per ``(seed, split, index)``.

    Parameters
    ----------
    n : int
        Length (an epoch). Any non-negative index is valid (:class:`FreshSampler` draws new ones
        every epoch), so ``n`` only sets the epoch size.
    split : {"train", "val", "test"}
        Separate random streams: a validation or test set never repeats a training pair.
    seed : int
    size : int
        Image side in pixels (even).
    noise : str, float, tuple or NoiseParams
        Anything :func:`rawcv.synth.parse_noise` takes: ``"high"`` (lambda_shot 0.012), a
        range ``"1e-3:1.2e-2"`` (log-uniform per image, Brooks et al.'s read noise), ...
    sources : {"mixed", "synthetic", "skimage"}
        Procedural scenes, scikit-image photographs, or both (``photo_fraction`` photographs).
    randomize_camera : bool
        Random white balance and colour matrix per image (default) or one fixed camera.

    Each item is the dict of :meth:`RestorePair.to_tensors`; :meth:`pair` gives the NumPy pair.
    """

    def __init__(self, n: int, *, split: str = "train", seed: int = 0, size: int = 128, noise=DEFAULT_NOISE,
                 sources: str = "mixed", photo_fraction: float = 0.5, bits: int = 14,
                 randomize_camera: bool = True):
        from ..synth import parse_noise

        if split not in SPLIT_CODES:
            raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLIT_CODES)}")
        if sources not in SOURCES:
            raise RawcvError(f"unknown sources {sources!r}: expected one of {', '.join(SOURCES)}")
        if int(size) < 16 or int(size) % 2:
            raise RawcvError(f"the image size must be an even number >= 16, got {size}")
        if int(n) < 1:
            raise RawcvError(f"a restoration set needs at least one item, got {n}")
        try:
            parse_noise(noise)
        except ValueError as exc:
            raise RawcvError(f"bad --noise {noise!r}: {exc}") from None
        self.n, self.split, self.seed, self.size = int(n), split, int(seed), int(size)
        self.noise = noise if isinstance(noise, (str, int, float)) else str(noise)
        self._noise_spec = noise
        self.sources, self.photo_fraction = sources, float(photo_fraction)
        self.bits, self.randomize_camera = int(bits), bool(randomize_camera)

    def __len__(self) -> int:
        return self.n

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLIT_CODES[self.split], int(index)])

    def pair(self, index: int) -> RestorePair:
        """Item ``index`` as a :class:`RestorePair` (NumPy)."""
        from ..synth import NoiseParams, generate_scene, parse_noise
        from ..synth.camera import CameraParams, capture, random_camera

        if index < 0:
            raise IndexError(index)
        rng = self.rng(index)
        spec = parse_noise(self._noise_spec)
        noise = spec(rng) if callable(spec) and not isinstance(spec, NoiseParams) else spec
        photo = self.sources == "skimage" or (self.sources == "mixed" and rng.random() < self.photo_fraction)
        if photo:
            radiance, source = photo_crop(rng, self.size), "skimage"
        else:
            radiance, source = generate_scene(rng, size=self.size, n_objects=(1, 4)).radiance, "synthetic"
        if self.randomize_camera:
            cam = random_camera(rng, cfa="RGGB", bits=self.bits, noise=noise, vignetting=False)
        else:
            cam = CameraParams(cfa="RGGB", bits=self.bits, black=float(1 << (self.bits - 5)), noise=noise)
        cap = capture(radiance, cam, rng)
        norm = (cap.mosaic.astype(np.float32) - np.float32(cam.black)) / np.float32(cam.white - cam.black)
        gains = np.asarray(cam.wb_gains, dtype=np.float32)
        target = cap.camera_rgb * gains        # white-balanced camera RGB (no vignetting here)
        meta = CameraMeta("RGGB", black_level=cam.black, white_level=cam.white, as_shot_wb=tuple(cam.wb_gains),
                          xyz_to_cam=tuple(tuple(float(v) for v in r) for r in cam.xyz_to_cam),
                          noise_profile=(noise.lambda_shot, noise.lambda_read) * 3, make="rawcv",
                          model="synthetic camera")
        return make_pair(norm, "RGGB", target, gains, cam.xyz_to_cam, noise.lambda_shot, noise.lambda_read,
                         meta=meta, source=source)

    def __getitem__(self, index):
        return self.pair(int(index)).to_tensors()

    def __repr__(self) -> str:
        return (f"RestorePairs(n={self.n}, split={self.split!r}, seed={self.seed}, size={self.size}, "
                f"noise={self.noise!r}, sources={self.sources!r})")


class FreshSampler(Sampler):
    """Indices of a new block of ``n`` items every epoch (a shuffled ``[b*n, (b+1)*n)``, with the
    block ``b`` drawn from ``generator``): an on-the-fly dataset never repeats a pair, and the
    stream is reproducible because the Trainer re-seeds the loader's generator every epoch."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n = int(n)
        self.generator = generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        block = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=self.generator))
        perm = torch.randperm(self.n, generator=self.generator).tolist()
        return iter([block * self.n + i for i in perm])


def fresh_loader(dataset, *, batch_size: int, workers: int = 0, device="cpu", seed: int = 0):
    """A training DataLoader over :class:`FreshSampler`, set up like
    :func:`rawcv.data.loaders.make_loader` (seeded workers started by forkserver, pinned memory on
    CUDA); its ``generator`` is the one the Trainer re-seeds every epoch."""
    import multiprocessing

    from torch.utils.data import DataLoader

    from .loaders import seed_worker

    generator = torch.Generator()
    generator.manual_seed(seed)
    context = None
    if workers > 0:
        context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return DataLoader(dataset, batch_size=batch_size, sampler=FreshSampler(len(dataset), generator),
                      num_workers=workers, generator=generator, worker_init_fn=seed_worker,
                      pin_memory=torch.device(device).type == "cuda", persistent_workers=workers > 0,
                      multiprocessing_context=context)


# --------------------------------------------------------------------------------------------
# A ``rawcv synth --task restore`` folder
# --------------------------------------------------------------------------------------------

class SynthRestoreSet(Dataset):
    """The pairs of a synthetic dataset folder (``manifest.json``): DNG -> clean target.

    Parameters
    ----------
    root : path
    split : str
        ``train`` / ``val`` / ``test``, or ``all``.
    crop : int, optional
        Crop every pair to ``crop x crop`` (even offsets): random (NumPy's global generator,
        seeded by the Trainer) with ``random_crop``, else the centre.

    Noise parameters come from each DNG's ``NoiseProfile`` (else the manifest's camera entry).
    The target is the clean linear sRGB radiance taken back to white-balanced camera RGB with
    the file's colour matrix (what the ISP's colour-matrix stage maps forward again).
    """

    def __init__(self, root, split: str = "test", *, crop: Optional[int] = None, random_crop: bool = False):
        from .datasets import _MISSING_TRUTH_HINT, read_manifest

        self.root = Path(root)
        if not (self.root / "manifest.json").is_file():
            raise RawcvError(f"{root}: not a synthetic dataset folder (no manifest.json)")
        manifest = read_manifest(self.root)
        items = manifest["items"]
        if split not in (None, "all"):
            items = [it for it in items if it.get("split") == split]
        for it in items:
            for k in ("raw", "clean"):
                if k not in it:
                    raise RawcvError(f"{self.root / 'manifest.json'}: item {it.get('id', '?')!r} has no {k!r}"
                                     + _MISSING_TRUTH_HINT.get(k, ""))
        self.items, self.split, self.manifest = items, split, manifest
        self.crop = None if crop is None else int(crop) // 2 * 2
        self.random_crop = random_crop

    def __len__(self) -> int:
        return len(self.items)

    def pair(self, index: int) -> RestorePair:
        from ..io import read

        item = self.items[index]
        raw = read(self.root / item["raw"])
        meta = raw.meta
        if meta.cfa is None:
            raise RawcvError(f"{raw.path}: a linear (demosaiced) file; restoration needs a Bayer mosaic")
        if meta.xyz_to_cam is None:
            raise RawcvError(f"{raw.path}: no colour matrix; the target space needs one")
        clean = np.load(self.root / item["clean"], allow_pickle=False).astype(np.float32)
        black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
        h, w = raw.data.shape
        bmap = np.tile(black, (h // 2 + 1, w // 2 + 1))[:h, :w]
        norm = (raw.data.astype(np.float32) - bmap) / (np.float32(meta.white_level) - bmap)
        noise = noise_from_meta(meta)
        if noise is None:
            cam_noise = (item.get("camera") or {}).get("noise")
            noise = (float(cam_noise["lambda_shot"]), float(cam_noise["lambda_read"])) if cam_noise else (0.0, 0.0)
        target = srgb_to_camera_wb(clean, meta.xyz_to_cam)
        gains = np.asarray(meta.as_shot_wb, dtype=np.float32)
        gains = gains / gains[1]
        if self.crop is not None and self.crop < min(h, w):
            c = self.crop
            if self.random_crop:
                y0 = int(np.random.randint(0, (h - c) // 2 + 1)) * 2
                x0 = int(np.random.randint(0, (w - c) // 2 + 1)) * 2
            else:
                y0, x0 = (h - c) // 4 * 2, (w - c) // 4 * 2
            norm, target = norm[y0:y0 + c, x0:x0 + c], target[y0:y0 + c, x0:x0 + c]
        return make_pair(norm, meta.cfa, target, gains, meta.xyz_to_cam, noise[0], noise[1], meta=meta,
                         source=str(item.get("id", index)))

    def __getitem__(self, index):
        return self.pair(int(index)).to_tensors()

    def __repr__(self) -> str:
        return f"SynthRestoreSet({str(self.root)!r}, split={self.split!r}, {len(self)} items)"


def restore_input(raw: RawImage):
    """A RAW capture as ``(packed 4 x h x w, (dy, dx), (H, W))``: normalised, cropped to an RGGB
    phase (offset ``(dy, dx)``) and even size; ``(H, W)`` is the original size."""
    meta = raw.meta
    if raw.is_linear or meta.cfa is None:
        raise RawcvError(f"{raw.path or '<memory>'}: a linear (demosaiced) file; restoration needs a Bayer mosaic")
    h, w = raw.data.shape
    black = np.asarray(meta.black_level, dtype=np.float32).reshape(2, 2)
    bmap = np.tile(black, (h // 2 + 1, w // 2 + 1))[:h, :w]
    norm = (raw.data.astype(np.float32) - bmap) / (np.float32(meta.white_level) - bmap)
    mosaic, offset = canonical_crop(norm, meta.cfa)
    if mosaic.shape[0] < 2 or mosaic.shape[1] < 2:
        raise RawcvError(f"{raw.path or '<memory>'}: too small ({w}x{h})")
    return pack_mosaic(mosaic, "RGGB"), offset, (h, w)


__all__ = ["RestorePairs", "RestorePair", "SynthRestoreSet", "FreshSampler", "fresh_loader", "make_pair",
           "packed_variance", "pack_mosaic", "canonical_crop", "canonical_offset", "camera_to_srgb",
           "srgb_to_camera_wb", "noise_from_meta", "photo_crop", "restore_input", "SOURCES", "TARGET_SPACE",
           "TARGET_DESCRIPTION", "DEFAULT_NOISE"]
