"""What a training run or a trained model reads: the input transform a checkpoint records, the
training augmentation, the splits of a synthetic dataset, the layout and pipeline of a run, and
the files a prediction is asked for. Shared by every task."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from ..errors import RawcvError
from .runs import TrainingError


class RGBFlip:
    """Random horizontal / vertical flips and transpose of a ``C x H x W`` RGB tensor (training augmentation)."""

    def __init__(self, transpose: bool = True):
        self.transpose = transpose

    def __call__(self, x):
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        if torch.rand(()) < 0.5:
            x = x.flip(-2)
        if self.transpose and x.shape[-1] == x.shape[-2] and torch.rand(()) < 0.5:
            x = x.transpose(-2, -1)
        return x


#: Per-image input transforms of ``--input-transform`` (applied after augmentation, identically in
#: training, validation, ``predict`` and ``eval``; recorded in the checkpoint config).
INPUT_TRANSFORMS = ("none", "mean", "sqrt", "mean_sqrt", "log")
#: What ``rawcv train classify`` uses when training from scratch without ``--input-transform``
#: (measured on the synthetic shapes: see docs/CLASSIFY_RESULTS.md). The Python API keeps ``"none"``
#: so that checkpoints and inputs of earlier versions stay what they were.
CLI_DEFAULT_INPUT_TRANSFORM = "mean"
_MEAN_FLOOR = 1e-4
_LOG_EPS = 1.0 / 256


class InputTransform:
    """A per-image transform of the network input (``C x H x W`` or ``N x C x H x W``): a resize to
    ``size x size``, then a value transform by name.

    * ``"none"``: the values as they are;
    * ``"mean"``: divided by their mean over all channels and pixels (floored at 1e-4): unit mean
      brightness, so the network sees the same image whatever the exposure (linear raw values of
      one scene span a factor of ten and more);
    * ``"sqrt"``: ``sqrt(max(x, 0))``, the variance-stabilising transform of shot noise;
    * ``"mean_sqrt"``: ``"mean"`` then ``"sqrt"``: exposure-normalised and variance-stabilised,
      so noise of the same camera has about the same standard deviation in dark and bright parts
      (the raw-domain counterpart of what a display gamma does to noise);
    * ``"log"``: ``log(max(x, 0) + 1/256)``, a dynamic-range compression.

    Parameters
    ----------
    name : str, default "none"
        One of :data:`INPUT_TRANSFORMS`.
    size : int, optional
        Side the input is resized to by area averaging, each channel on its own (packed Bayer
        planes stay planes); None keeps the input's size.

    It has no parameters to learn and pickles (DataLoader workers).
    """

    def __init__(self, name: str = "none", size: Optional[int] = None):
        name = "none" if name is None else str(name).lower()
        if name not in INPUT_TRANSFORMS:
            raise RawcvError(f"unknown input transform {name!r}: expected one of {', '.join(INPUT_TRANSFORMS)}")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise RawcvError(f"input size must be a positive integer, got {str(size)[:40]!r}")
        self.name = name
        self.size = size

    @property
    def is_identity(self) -> bool:
        return self.name == "none" and self.size is None

    def __call__(self, x):
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            single = x.dim() == 3
            x = F.interpolate(x[None] if single else x, size=(self.size, self.size), mode="area")
            x = x[0] if single else x
        if self.name in ("mean", "mean_sqrt"):
            dims = tuple(range(x.dim() - 3, x.dim()))
            x = x / x.mean(dim=dims, keepdim=True).clamp(min=_MEAN_FLOOR)
        if self.name in ("sqrt", "mean_sqrt"):
            x = x.clamp(min=0).sqrt()
        if self.name == "log":
            x = torch.log(x.clamp(min=0) + _LOG_EPS)
        return x

    def __repr__(self) -> str:
        return f"InputTransform({self.name!r}, size={self.size!r})"


class Compose:
    """``second(first(x))`` (picklable)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __call__(self, x):
        return self.second(self.first(x))


def with_input_transform(transform, input_transform: InputTransform):
    """``transform`` followed by ``input_transform`` (None where both are no-ops)."""
    if input_transform.is_identity:
        return transform
    return input_transform if transform is None else Compose(transform, input_transform)


def checkpoint_input_transform(cfg: dict) -> str:
    """The input transform a checkpoint config records (``"none"`` for checkpoints without one)."""
    return InputTransform(cfg.get("input_transform") or "none").name


def checkpoint_input(cfg: dict) -> InputTransform:
    """The whole per-image input transform of a checkpoint: its ``input_size`` (None for
    checkpoints without one: no resize) and its input transform."""
    return InputTransform(checkpoint_input_transform(cfg), cfg.get("input_size"))


class NoiseLevels:
    """``generator -> (lambda_shot, lambda_read)`` for :class:`rawcv.torch.BayerAugment`, from a
    noise specification of :func:`rawcv.synth.parse_noise` (``"high"``, ``"1e-3:6e-3"``, ...):
    fixed levels, or levels drawn per image from the range (Brooks et al.'s read-noise relation),
    seeded from the torch generator so that seeded runs repeat. Picklable (DataLoader workers)."""

    def __init__(self, spec):
        from ..synth import parse_noise

        try:
            parse_noise(spec)
        except ValueError as exc:
            raise RawcvError(f"bad --augment-noise {spec!r}: {exc}") from None
        self.spec = spec

    def __call__(self, generator=None):
        from ..synth import parse_noise

        params = parse_noise(self.spec)
        if callable(params):
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator))
            params = params(np.random.default_rng(seed))
        return float(params.lambda_shot), float(params.lambda_read)

    def __repr__(self) -> str:
        return f"NoiseLevels({self.spec!r})"


def default_augmentation(layout: str, noise=None):
    """The training augmentation of ``--augment``: Bayer-aware flips, transposes and exposure for
    packed inputs (:class:`rawcv.torch.BayerAugment`), flips and transposes for RGB. ``noise``
    (packed only, a :class:`NoiseLevels` specification) also adds sensor noise of the synthetic
    camera's model: physically right only on linear raw values, so an RGB input cannot have it."""
    if layout == "packed":
        from ..torch.augment import BayerAugment

        return BayerAugment(flip=True, transpose=True, exposure=(0.7, 1.4), layout="packed",
                            noise=NoiseLevels(noise) if noise is not None else None)
    if noise is not None:
        raise RawcvError("--augment-noise adds noise to linear raw values: it needs --layout packed")
    return RGBFlip()


def training_transform(layout: str, net_input: InputTransform, *, augment: bool, noise=None):
    """What each training image goes through: with ``augment``, :func:`default_augmentation`, then
    the network's input transform, then a random rotation (the shapes a classifier learns have no
    orientation; on the resized input a rotation's sub-pixel shift between Bayer planes is
    negligible); without, the input transform alone."""
    if not augment:
        return with_input_transform(None, net_input)
    from ..torch.augment import RandomRotation

    return Compose(with_input_transform(default_augmentation(layout, noise), net_input), RandomRotation())


def synth_split(data, split: str, **kwargs):
    """The ``split`` of a synthetic dataset (:class:`rawcv.data.SynthDataset` with ``kwargs``);
    an empty one is an error that lists the splits there are."""
    from ..data import SynthDataset

    ds = SynthDataset(data, split, **kwargs)
    if len(ds) == 0:
        raise RawcvError(f"{data}: no items in split {split!r} (splits: {', '.join(ds.splits) or 'none'}, or 'all')")
    return ds


def synth_train_val(data, *, target: str, layout: str, pipeline=None, cache: Optional[str] = None,
                    train_transform=None, val_transform=None, val_fraction: float = 0.2, seed: int = 0) -> tuple:
    """``(train, val or None, classes)`` of a ``rawcv synth`` dataset with ``target`` ``"label"`` or
    ``"mask"``: its ``train`` and ``val`` splits, or, where it has no ``val`` items, ``val_fraction``
    of ``train`` (deterministic in ``seed``; stratified by label for ``"label"``)."""
    from ..data import SynthDataset, split_indices

    def synth(split, transform=None):
        return SynthDataset(data, split, layout=layout, target=target, cache=cache, pipeline=pipeline,
                            transform=transform)

    train = synth("train", train_transform)
    if len(train) == 0:
        raise RawcvError(f"{data}: the synthetic dataset has no 'train' items")
    classes = list(train.classes)
    val = synth("val", val_transform)
    if len(val) == 0:
        val = None
        if val_fraction > 0 and len(train) >= 2:
            labels = train.targets if target == "label" else None
            tr_idx, va_idx = split_indices(len(train), val_fraction, seed, labels=labels)
            train, val = Subset(train, tr_idx), Subset(synth("train", val_transform), va_idx)
    return train, val, classes



def run_input(ckpt: Optional[dict], layout: Optional[str], pipeline, *, resume: bool) -> tuple:
    """``(layout, pipeline)`` of a training run, or of a trained model (``ckpt`` and no ``layout``
    or ``pipeline`` given): the checkpoint's where it resumes or where they are not given, else
    ``packed`` without a pipeline; checked: a known layout, and a pipeline only with ``rgb``
    (packed raw has none)."""
    from ..data import LAYOUTS

    if ckpt is not None:
        cfg = ckpt["config"]
        if resume or layout is None:
            layout = cfg.get("layout", "packed")
        if resume or pipeline is None:
            pipeline = cfg.get("pipeline") if layout == "rgb" else None
    layout = layout or "packed"
    if layout not in LAYOUTS:
        raise TrainingError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if layout == "packed" and pipeline is not None:
        raise TrainingError("--pipeline applies to --layout rgb only")
    return layout, pipeline



def collect_files(inputs) -> list:
    """Files as given, and the RAW files of folders (recursively, hidden folders skipped), without repeats."""
    from ..data import RAW_SUFFIXES

    out, seen = [], set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in RAW_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            found = [p]            # a missing file is reported when it is read
        for f in found:
            key = str(f.resolve()) if f.exists() else str(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def input_normalisation(layout: str, pipeline) -> str:
    """How a network input of ``layout`` (and ``pipeline``, for ``rgb``) is normalised, in words
    (recorded in the checkpoint's config)."""
    from ..data import input_spec

    return input_spec(layout, pipeline)["normalisation"]


__all__ = ["RGBFlip", "INPUT_TRANSFORMS", "CLI_DEFAULT_INPUT_TRANSFORM", "InputTransform", "Compose",
           "with_input_transform", "checkpoint_input_transform", "checkpoint_input", "NoiseLevels",
           "default_augmentation", "training_transform", "synth_split", "synth_train_val", "run_input",
           "collect_files", "input_normalisation"]
