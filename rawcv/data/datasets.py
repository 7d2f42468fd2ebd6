"""Torch datasets of RAW files: class folders (:class:`RawFolder`) and synthetic manifests (:class:`SynthDataset`).

Both decode with :func:`rawcv.read` and turn a capture into a float32 ``C x H x W`` tensor in one
of two layouts:

* ``"packed"``: the Bayer mosaic as ``4 x H/2 x W/2`` planes R, G1, G2, B (G1 shares rows with R),
  each normalised as ``(x - black) / (white - black)`` of its CFA site
  (:func:`rawcv.torch.convert.to_tensor`);
* ``"rgb"``: ``3 x H x W`` from an ISP pipeline: the ``"linear"`` pipeline by default (float
  radiance, white balanced, linear sRGB), or e.g. ``pipeline="default"`` for display sRGB whose
  8-bit values are scaled to [0, 1] (the "raw vs sRGB" comparison).

Datasets hold paths and settings only (no open files), so they pickle into DataLoader workers.
Decoded mosaics can be cached in memory (per process) or on disk as ``.npy`` files; the memory
cache also keeps the input tensor built from each mosaic (packed planes or the pipeline's output),
so neither the packing nor an ISP pipeline runs more than once per image and process.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import RawcvError
from ..meta import CameraMeta, RawImage
from ..torch.tensors import LAYOUTS

CACHES = (None, "memory", "disk")
TARGETS = ("label", "mask", "clean")
RAW_SUFFIXES = {".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".rw2",
                ".orf", ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".erf", ".mef", ".mos", ".x3f",
                ".iiq", ".rwl", ".raw"}
DEFAULT_CACHE_DIRNAME = ".rawcv-cache"
MANIFEST = "manifest.json"


class DatasetError(RawcvError, ValueError):
    """A dataset folder or manifest is malformed (no classes, no files, missing keys)."""


# --------------------------------------------------------------------------------------------
# One capture -> one input array
# --------------------------------------------------------------------------------------------

def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    return layout


def _torch_packed(raw: RawImage):
    """``4 x H/2 x W/2`` through :func:`rawcv.torch.convert.to_tensor`; errors name the file."""
    from ..torch.convert import to_tensor

    if raw.is_linear:
        raise RawcvError(f"{raw.path or '<memory>'}: the packed layout needs a Bayer mosaic, "
                         "but this is a linear (demosaiced) file; use layout 'rgb'")
    try:
        return to_tensor(raw, layout="packed")
    except ValueError as exc:
        raise RawcvError(f"{raw.path or '<memory>'}: cannot pack ({exc})") from None


def resolve_pipeline(pipeline):
    """A :class:`~rawcv.pipeline.Pipeline` from a name, YAML path, dict or Pipeline (default ``"linear"``)."""
    from ..pipeline import Pipeline, load_pipeline

    if pipeline is None:
        pipeline = "linear"
    if isinstance(pipeline, Pipeline):
        return pipeline
    if isinstance(pipeline, dict):
        return Pipeline.from_dict(pipeline, source="checkpoint pipeline")
    return load_pipeline(pipeline)


def pipeline_spec(pipeline):
    """A JSON-able description of a pipeline argument: its name/path, or its stages as a dict."""
    from ..pipeline import Pipeline

    if pipeline is None:
        return "linear"
    if isinstance(pipeline, Pipeline):
        return pipeline.to_dict()
    if isinstance(pipeline, dict):
        return pipeline
    return os.fspath(pipeline)


def rgb_array(raw: RawImage, pipeline) -> np.ndarray:
    """``3 x H x W`` float32 from running ``pipeline`` (a Pipeline object); integer output scaled to [0, 1]."""
    img = np.asarray(pipeline(raw))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def raw_to_tensor(raw: RawImage, layout: str = "packed", pipeline=None):
    """One capture as the float32 ``C x H x W`` tensor a network takes (see the module docs).

    ``pipeline`` (rgb layout only) is a name, path, dict or :class:`Pipeline`; default ``"linear"``.
    """
    _check_layout(layout)
    if layout == "packed":
        return _torch_packed(raw)
    if pipeline is None or not hasattr(pipeline, "run"):
        pipeline = resolve_pipeline(pipeline)
    return torch.from_numpy(rgb_array(raw, pipeline))


def input_spec(layout: str, pipeline=None) -> dict:
    """What a checkpoint records about its inputs, so prediction rebuilds them identically."""
    _check_layout(layout)
    if layout == "packed":
        return {"layout": "packed", "in_chans": 4, "pipeline": None,
                "normalisation": "packed R,G1,G2,B planes, (x - black) / (white - black) per CFA site"}
    spec = pipeline_spec(pipeline)
    return {"layout": "rgb", "in_chans": 3, "pipeline": spec,
            "normalisation": f"pipeline {spec if isinstance(spec, str) else spec.get('name', 'custom')} "
                             "output; integer output divided by its maximum"}


def center_crop(raw: RawImage, size) -> RawImage:
    """Crop the centre ``size`` (int or (h, w), rounded down to even) at even offsets, keeping the CFA."""
    if size is None:
        return raw
    h_out, w_out = (size, size) if np.isscalar(size) else tuple(size)
    h_out, w_out = int(h_out) // 2 * 2, int(w_out) // 2 * 2
    h, w = raw.height, raw.width
    if h_out > h or w_out > w:
        raise RawcvError(f"{raw.path or '<memory>'}: {w}x{h} is smaller than the crop {w_out}x{h_out}")
    y0, x0 = (h - h_out) // 4 * 2, (w - w_out) // 4 * 2
    return RawImage(raw.data[y0:y0 + h_out, x0:x0 + w_out], raw.meta, raw.path)


# --------------------------------------------------------------------------------------------
# Decoding with a cache
# --------------------------------------------------------------------------------------------

class _RawSource:
    """Decodes files with :func:`rawcv.read`, through an optional memory or disk cache.

    Only plain data is kept, so it pickles; the memory cache is per process (each DataLoader
    worker fills its own).
    """

    def __init__(self, cache, cache_dir):
        if cache not in CACHES:
            raise ValueError(f"unknown cache {cache!r}: expected None, 'memory' or 'disk'")
        self.cache = cache
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self._memory = {}
        self._inputs = {}               # memory cache only: (path, crop) -> input tensor

    def cached_input(self, path, crop, build):
        """The input tensor of ``path`` from ``build()``, kept per process with the memory cache.

        A copy is returned, so a caller changing it in place cannot alter the cache.
        """
        if self.cache != "memory":
            return build()
        key = (os.fspath(path), None if crop is None else (tuple(crop) if not np.isscalar(crop) else crop))
        x = self._inputs.get(key)
        if x is None:
            x = build()
            self._inputs[key] = x
        return x.clone()

    def _key(self, path: str) -> str:
        st = os.stat(path)
        ident = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
        return hashlib.sha1(ident.encode()).hexdigest()[:20]

    def read(self, path) -> RawImage:
        from ..io import read

        path = os.fspath(path)
        if self.cache is None:
            return read(path)
        if self.cache == "memory":
            raw = self._memory.get(path)
            if raw is None:
                raw = read(path)
                self._memory[path] = raw
            return raw
        try:
            key = self._key(path)
        except OSError:
            return read(path)          # missing file: let read() word the error
        base = Path(self.cache_dir) / key
        npy, meta_json = base.with_suffix(".npy"), base.with_suffix(".json")
        if npy.exists() and meta_json.exists():
            try:
                data = np.load(npy, allow_pickle=False)
                meta = CameraMeta.from_dict(json.loads(meta_json.read_text()))
                return RawImage(data, meta, path)
            except (OSError, ValueError, TypeError, KeyError):
                pass                    # unreadable cache entry: decode again and rewrite it
        raw = read(path)
        self._write(npy, meta_json, raw)
        return raw

    @staticmethod
    def _write(npy: Path, meta_json: Path, raw: RawImage) -> None:
        from ..io.atomic import atomic_path

        npy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(npy, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, raw.data, allow_pickle=False)
        with atomic_path(meta_json, overwrite=True) as tmp:
            tmp.write_text(json.dumps(raw.meta.to_dict()))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_memory"] = {}           # never ship decoded images to workers
        state["_inputs"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_inputs", {})


class _RawDatasetBase(Dataset):
    """Shared decoding / layout / pipeline handling of the rawcv datasets."""

    def __init__(self, root, layout, cache, cache_dir, transform, pipeline):
        self.root = Path(root)
        self.layout = _check_layout(layout)
        if pipeline is not None and layout == "packed":
            raise ValueError("pipeline= applies to layout 'rgb' only (packed inputs are not processed)")
        self.pipeline = pipeline_spec(pipeline) if layout == "rgb" else None
        self._pipeline_obj = pipeline if hasattr(pipeline, "run") else None
        if cache == "disk" and cache_dir is None:
            cache_dir = self.root / DEFAULT_CACHE_DIRNAME
        self._source = _RawSource(cache, cache_dir)
        self.transform = transform

    @property
    def cache(self):
        return self._source.cache

    @property
    def in_chans(self) -> int:
        return 4 if self.layout == "packed" else 3

    def input_spec(self) -> dict:
        return input_spec(self.layout, self.pipeline)

    def _pipeline(self):
        if self._pipeline_obj is None:
            self._pipeline_obj = resolve_pipeline(self.pipeline)
        return self._pipeline_obj

    def load_raw(self, path) -> RawImage:
        """The decoded (cached) capture of ``path``."""
        return self._source.read(path)

    def load_input(self, path, crop=None):
        """The (memory-cached) input tensor of ``path``, before ``transform``."""
        return self._source.cached_input(path, crop, lambda: self._build_input(path, crop))

    def _build_input(self, path, crop=None):
        raw = center_crop(self.load_raw(path), crop)
        if self.layout == "packed":
            return _torch_packed(raw)
        return torch.from_numpy(rgb_array(raw, self._pipeline()))

    def __getstate__(self):
        state = dict(self.__dict__)
        if isinstance(self.pipeline, (str, dict)):
            state["_pipeline_obj"] = None   # rebuilt lazily in the worker
        return state


# --------------------------------------------------------------------------------------------
# RawFolder
# --------------------------------------------------------------------------------------------

class RawFolder(_RawDatasetBase):
    """RAW files in one sub-folder per class (the ImageFolder convention, classes sorted by name).

    Parameters
    ----------
    root : path
        Folder of class folders; RAW files are found recursively inside each class folder.
        Hidden folders (such as the disk cache) are skipped.
    layout : {"packed", "rgb"}
        ``packed``: ``4 x H/2 x W/2``; ``rgb``: ``3 x H x W`` through ``pipeline``.
    cache : {None, "memory", "disk"}
        Cache decoded mosaics in memory (per process; with the input tensors built from them,
        so an ISP pipeline runs once per image) or as ``.npy`` + ``.json`` files in
        ``cache_dir`` (default ``root/.rawcv-cache``), keyed by path, size and mtime.
    transform : callable, optional
        Applied to the input tensor (``x -> x``).
    pipeline : str, dict or Pipeline, optional
        For ``layout="rgb"``: default ``"linear"``; ``"default"`` gives display sRGB in [0, 1].
    crop : int or (h, w), optional
        Centre crop (even offsets, CFA kept) so that files of different sizes batch together.

    Attributes
    ----------
    classes : list of str
    class_to_idx : dict
    samples : list of (path, class index)
    targets : list of int

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from rawcv.io.dng import write_dng
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cats", "dogs"):
    ...     os.mkdir(os.path.join(root, name))
    ...     write_dng(os.path.join(root, name, "a.dng"), np.zeros((64, 64), np.uint16), cfa="RGGB")
    >>> ds = RawFolder(root, layout="packed", cache="memory")
    >>> x, y = ds[1]
    >>> ds.classes, tuple(x.shape), y
    (['cats', 'dogs'], (4, 32, 32), 1)
    """

    def __init__(self, root, layout: str = "packed", cache: Optional[str] = None, transform: Optional[Callable] = None,
                 pipeline=None, *, cache_dir=None, crop=None, extensions: Optional[Sequence[str]] = None):
        super().__init__(root, layout, cache, cache_dir, transform, pipeline)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such folder")
        suffixes = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions} if extensions \
            else RAW_SUFFIXES
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not self.classes:
            raise DatasetError(f"{self.root}: no class folders (expected one sub-folder of RAW files per class)")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = []
        for c in self.classes:
            files = sorted(f for f in (self.root / c).rglob("*")
                           if f.is_file() and f.suffix.lower() in suffixes
                           and not any(p.startswith(".") for p in f.relative_to(self.root).parts))
            self.samples.extend((str(f), self.class_to_idx[c]) for f in files)
        if not self.samples:
            raise DatasetError(f"{self.root}: no RAW files in the class folders {', '.join(self.classes)}")
        self.targets = [t for _, t in self.samples]
        self.crop = crop

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        x = self.load_input(path, self.crop)
        if self.transform is not None:
            x = self.transform(x)
        return x, target

    def __repr__(self) -> str:
        return (f"RawFolder({str(self.root)!r}, {len(self)} files, {self.num_classes} classes, "
                f"layout={self.layout!r}, cache={self.cache!r})")


# --------------------------------------------------------------------------------------------
# SynthDataset
# --------------------------------------------------------------------------------------------

def is_synth_dataset(path) -> bool:
    """True if ``path`` is a folder with a ``manifest.json`` (a ``rawcv synth`` dataset)."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(root) -> dict:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (not a synthetic dataset folder)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("items"), list):
        raise DatasetError(f"{path}: a manifest needs an 'items' list")
    if not isinstance(manifest.get("classes"), list):
        raise DatasetError(f"{path}: a manifest needs a 'classes' list")
    return manifest


#: How to get ground truth that a dataset was made without (rawcv synth writes what its task needs).
_MISSING_TRUTH_HINT = {
    "mask": " (masks come with rawcv synth --task segment, or --with-truth)",
    "clean": " (clean images come with rawcv synth --task restore, or --with-truth)",
}


def _read_mask(path) -> np.ndarray:
    import imageio.v3 as iio

    mask = np.asarray(iio.imread(path))
    if mask.ndim == 3:
        mask = mask[..., 0]
    return mask


class SynthDataset(_RawDatasetBase):
    """A split of a synthetic dataset (``DIR/manifest.json`` written by ``rawcv synth``).

    Parameters
    ----------
    root : path
        The dataset folder.
    split : str or None
        ``"train"``, ``"val"``, ``"test"``; ``None`` or ``"all"`` for every item.
    layout, cache, transform, pipeline : as :class:`RawFolder`.
    target : {"label", "mask", "clean"}
        ``label``: int class index; ``mask``: int64 ``H x W`` class ids; ``clean``: float32
        ``3 x H x W`` linear camera RGB ground truth.
        For ``label``, a leading ``"background"`` class (never an image label) is dropped:
        :attr:`classes` are the shape classes and the target is ``label - 1``.
    transform : callable, optional
        ``x -> x`` for ``label`` targets, ``(x, y) -> (x, y)`` for ``mask`` and ``clean``.
    """

    def __init__(self, root, split: Optional[str] = "train", layout: str = "packed", target: str = "label",
                 cache: Optional[str] = None, transform: Optional[Callable] = None, pipeline=None, *,
                 cache_dir=None):
        super().__init__(root, layout, cache, cache_dir, transform, pipeline)
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
        self.manifest = read_manifest(self.root)
        self.target = target
        self.split = split
        items = self.manifest["items"]
        if split not in (None, "all"):
            items = [it for it in items if it.get("split") == split]
        key = {"label": "label", "mask": "mask", "clean": "clean"}[target]
        for it in items:
            for k in ("raw", key):
                if k not in it:
                    raise DatasetError(f"{self.root / MANIFEST}: item {it.get('id', '?')!r} has no {k!r}"
                                       + _MISSING_TRUTH_HINT.get(k, ""))
        self.items = items
        classes = [str(c) for c in self.manifest["classes"]]
        self.label_offset = 0
        if target == "label" and classes and classes[0] == "background":
            classes, self.label_offset = classes[1:], 1
        self.classes = classes
        self.class_to_idx = {c: i for i, c in enumerate(classes)}
        self.targets = [int(it["label"]) - self.label_offset for it in items] if target == "label" else None
        if self.targets is not None:
            bad = [t for t in self.targets if not 0 <= t < len(classes)]
            if bad:
                label = bad[0] + self.label_offset
                why = ("the background (no object): not a classification dataset"
                       if label == 0 and self.label_offset else f"outside the {len(self.manifest['classes'])} classes")
                raise DatasetError(f"{self.root / MANIFEST}: an item has label {label}, {why}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def splits(self) -> list:
        return sorted({it.get("split") for it in self.manifest["items"] if it.get("split")})

    def path_of(self, index: int, key: str = "raw") -> str:
        return str(self.root / self.items[index][key])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        item = self.items[index]
        x = self.load_input(self.root / item["raw"])
        if self.target == "label":
            y = int(item["label"]) - self.label_offset
            if self.transform is not None:
                x = self.transform(x)
            return x, y
        if self.target == "mask":
            y = torch.from_numpy(_read_mask(self.root / item["mask"]).astype(np.int64))
        else:
            clean = np.load(self.root / item["clean"], allow_pickle=False).astype(np.float32)
            y = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))
        if self.transform is not None:
            x, y = self.transform(x, y)
        return x, y

    def __repr__(self) -> str:
        return (f"SynthDataset({str(self.root)!r}, split={self.split!r}, {len(self)} items, target={self.target!r}, "
                f"layout={self.layout!r})")


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------

def split_indices(n: int, val_fraction: float = 0.2, seed: int = 0, *, labels: Optional[Sequence[int]] = None):
    """Deterministic train / validation index split.

    Parameters
    ----------
    n : int
        Number of samples.
    val_fraction : float
        Fraction in ``[0, 1)`` held out for validation; at least one sample per split when
        ``0 < val_fraction`` and ``n >= 2``.
    seed : int
    labels : sequence of int, optional
        Stratify: split every class separately, so both splits keep the class proportions.

    Returns
    -------
    (train, val) : two sorted lists of int

    Examples
    --------
    >>> split_indices(10, 0.3, seed=1) == split_indices(10, 0.3, seed=1)
    True
    >>> [len(s) for s in split_indices(10, 0.3)]
    [7, 3]
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = int(n)
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels needs {n} values, got {labels.shape}")
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    train, val = [], []
    for g in groups:
        perm = g[rng.permutation(len(g))]
        k = int(round(len(g) * val_fraction))
        if val_fraction > 0 and labels is None and n >= 2:
            k = min(max(k, 1), n - 1)
        val.extend(perm[:k].tolist())
        train.extend(perm[k:].tolist())
    if val_fraction > 0 and not val and n >= 2:        # stratified with tiny classes: take one
        val.append(train.pop(int(rng.integers(len(train)))))
    return sorted(int(i) for i in train), sorted(int(i) for i in val)


__all__ = ["RawFolder", "SynthDataset", "split_indices", "raw_to_tensor", "input_spec",
           "resolve_pipeline", "pipeline_spec", "rgb_array", "center_crop", "is_synth_dataset", "read_manifest",
           "DatasetError", "LAYOUTS", "RAW_SUFFIXES"]
