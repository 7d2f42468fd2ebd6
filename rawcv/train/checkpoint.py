"""Checkpoints: weights plus everything needed to rebuild the model and its inputs.

A checkpoint is a dict saved with :func:`torch.save`::

    {"format": "rawcv-checkpoint", "version": 1,
     "state_dict": ...,                     # model weights
     "config": {"name", "in_chans", "num_classes", "kwargs",     # model.rawcv_config
                "task", "layout", "classes", "pipeline", "normalisation", ...,
                "config_version": 2},       # CONFIG_VERSION: see migrate_config
     "epoch": int, "metrics": {...},
     # resumable ``last.pt`` files also hold:
     "optimizer", "scheduler", "rng", "history", "trainer"}

Files are written atomically (a temporary file in the same folder, then :func:`os.replace`) and
read with ``torch.load(..., weights_only=True)``: only tensors and plain containers, never code.
Every config read goes through :func:`migrate_config`, so the code only ever sees configs of the
current :data:`CONFIG_VERSION`, whichever rawcv wrote the file.
"""

from __future__ import annotations

import numbers
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import RawcvError

FORMAT = "rawcv-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("state_dict", "config")
#: Version of the layout of a checkpoint's ``config``; configs without ``config_version`` are 1.
CONFIG_VERSION = 2


class CheckpointError(RawcvError, ValueError):
    """A checkpoint file is missing, corrupt, not a rawcv checkpoint, or for another architecture."""


def _discriminator_view_into_its_config(cfg: dict) -> dict:
    """Version 1 -> 2: how a GAN's discriminator saw the (raw, image) pairs moves from the run's
    options ``d_view`` / ``d_range`` / ``d_detail_gain`` into the discriminator's own config, as
    ``config["discriminator"]["view"] = {"name", "value_range", "detail_gain", "detail_sigma"}``
    (:data:`rawcv.train.restore.DISCRIMINATOR_VIEW`), where it travels with the weights. A
    version-1 GAN config without an option was written before it existed, and saw the pairs as
    the rawcv of then did: ``display`` (no detail band), ``clipped``, detail gain 4."""
    legacy = {key: cfg.pop(key, None) for key in ("d_view", "d_range", "d_detail_gain")}
    disc = cfg.get("discriminator")
    if isinstance(disc, dict) and "view" not in disc:
        name = legacy["d_view"] or "display"
        detail = name == "display+detail"
        cfg["discriminator"] = {**disc, "view": {
            "name": name, "value_range": legacy["d_range"] or "clipped",
            "detail_gain": float(legacy["d_detail_gain"] or 4.0) if detail else None,
            "detail_sigma": 1.5 if detail else None}}
    return cfg


#: ``version -> upgrade`` of a config from that version to the next one.
_UPGRADES = {1: _discriminator_view_into_its_config}


def migrate_config(cfg: dict) -> dict:
    """A copy of a checkpoint config brought up to :data:`CONFIG_VERSION`, one version at a time.

    Version 1 is every config written before ``config_version`` existed; version 2 records a GAN
    discriminator's view of its pairs in its own config
    (:func:`_discriminator_view_into_its_config`). A view that rawcv no longer trains with stays
    as it was recorded: prediction and evaluation need only the generator, and resuming such a
    run is refused in one line (:func:`rawcv.train.restore.require_trained_view`).

    Raises
    ------
    CheckpointError
        A ``config_version`` that is not a whole number from 1 to :data:`CONFIG_VERSION` (a file
        written by a newer rawcv, or doctored).

    Examples
    --------
    >>> old = {"name": "unet_generator", "task": "restore", "mode": "gan", "d_view": "display+detail",
    ...        "discriminator": {"name": "patchgan70", "in_chans": 10, "num_classes": 1, "kwargs": {}}}
    >>> new = migrate_config(old)
    >>> new["config_version"], new["discriminator"]["view"], "d_view" in new
    (2, {'name': 'display+detail', 'value_range': 'clipped', 'detail_gain': 4.0, 'detail_sigma': 1.5}, False)
    >>> migrate_config(new) == new
    True
    """
    cfg = dict(cfg)
    version = cfg.get("config_version", 1)
    if not _is_positive_int(version) or version > CONFIG_VERSION:
        raise CheckpointError(f"its config has config_version {_brief(version)}; this rawcv reads 1 to "
                              f"{CONFIG_VERSION} (a file from a newer rawcv?)")
    while version < CONFIG_VERSION:
        cfg = _UPGRADES[version](cfg)
        version += 1
    cfg["config_version"] = version
    return cfg


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under ``torch.compile`` / DataParallel wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def model_config(model: nn.Module, **extra) -> dict:
    """``model.rawcv_config`` merged with task / layout / classes / ... (the checkpoint's ``config``)."""
    base = getattr(unwrap_model(model), "rawcv_config", None)
    if base is None:
        raise TypeError(f"{type(model).__name__} has no rawcv_config: build it with rawcv.models.create_model")
    config = dict(base)
    config.update(extra)
    return config


def save_checkpoint(path, model: nn.Module, *, config: Optional[dict] = None, epoch: int = 0,
                    metrics: Optional[dict] = None, **extra) -> Path:
    """Save ``model``'s weights and config atomically to ``path``; returns the path.

    Parameters
    ----------
    config : dict, optional
        The full config; default :func:`model_config` of ``model``.
    **extra
        More entries (``optimizer=...``, ``scheduler=...``, ``rng=...``) for resumable files.
    """
    path = Path(path)
    model = unwrap_model(model)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": {**(config if config is not None else model_config(model)), "config_version": CONFIG_VERSION},
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
    }
    payload.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def resolve_weights(path) -> Path:
    """``path`` itself, or ``path/best.pt`` (then ``path/last.pt``) when ``path`` is a run folder."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder has no best.pt or last.pt")
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and validate a checkpoint (``path`` may be a run folder: its ``best.pt``).

    Raises
    ------
    CheckpointError
        One line naming the file: missing, corrupt / not a torch file, or not a rawcv checkpoint.
    """
    path = resolve_weights(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" not in str(exc) and "Weights only" not in str(exc):
            raise CheckpointError(f"{path}: not a readable rawcv checkpoint (corrupt, truncated or not a "
                                  f"torch file: {_first_line(exc)})") from None
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"{path}: refused: the file asks to run code{what} when it is loaded; a rawcv "
                              "checkpoint holds only tensors and plain values, and rawcv runs no code from "
                              "a file") from None
    except Exception as exc:  # zip / truncation errors: all mean "not a checkpoint we can read"
        raise CheckpointError(f"{path}: not a readable rawcv checkpoint (corrupt, truncated or not a "
                              f"torch file: {_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a rawcv checkpoint (a torch file without 'state_dict' and 'config')")
    config = ckpt["config"]
    if not isinstance(config, dict) or "name" not in config or not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{path}: not a rawcv checkpoint (its config names no model)")
    try:
        config = ckpt["config"] = migrate_config(config)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    problem = _config_problem(config) or _state_problem(ckpt["state_dict"])
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    ckpt["path"] = str(path)
    return ckpt


def _first_line(exc: BaseException, limit: int = 120) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def _brief(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _config_problem(config: dict):
    """What is wrong with the model part of a checkpoint config (None if nothing): the types
    :func:`build_model` relies on, checked before anything is built from them."""
    if not isinstance(config["name"], str):
        return f"its config names no model (name {_brief(config['name'])} is not a string)"
    for key in ("in_chans", "num_classes"):
        if config.get(key) is not None and not _is_positive_int(config[key]):
            return f"its config has {key} {_brief(config[key])}, not a positive integer"
    kwargs = config.get("kwargs")
    if kwargs is not None and not (isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)):
        return f"its config has model arguments {_brief(kwargs)}, not a mapping of names to values"
    return None


def _state_problem(state_dict: dict):
    bad = next((k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)),
               None)
    if bad is not None:
        return f"its weights hold {_brief(bad)}, which is not a named tensor"
    return None


def _mismatch_message(path, model: nn.Module, ckpt_name, missing, unexpected, shapes) -> str:
    name = getattr(unwrap_model(model), "rawcv_name", type(unwrap_model(model)).__name__)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
    return (f"{path}: checkpoint of model {ckpt_name!r} does not fit model {name!r} "
            f"(another architecture or size: {', '.join(parts)})")


def load_state_dict(model: nn.Module, ckpt_or_path, *, skip_prefixes=(), strict: bool = True) -> dict:
    """Load a checkpoint's weights into ``model``.

    Parameters
    ----------
    ckpt_or_path : dict or path
        A dict from :func:`load_checkpoint` or a file.
    skip_prefixes : sequence of str
        Keys starting with these (``"head."``) are not loaded when their shape differs: a
        backbone transferred to a task with a different number of classes.
    strict : bool
        Otherwise any missing/unexpected key or shape mismatch raises :class:`CheckpointError`.

    Returns
    -------
    dict
        The checkpoint.
    """
    ckpt = ckpt_or_path if isinstance(ckpt_or_path, dict) else load_checkpoint(ckpt_or_path)
    target = unwrap_model(model)
    state = fitting_state(target, ckpt, skip_prefixes=skip_prefixes, strict=strict)
    target.load_state_dict(state, strict=False)
    return ckpt


def fitting_state(model: nn.Module, ckpt: dict, *, skip_prefixes=(), strict: bool = True) -> dict:
    """The part of ``ckpt``'s weights that :func:`load_state_dict` loads into ``model``, after
    checking names and shapes; ``model`` may live on the ``meta`` device (shapes only), which is
    how :func:`build_model` checks a checkpoint before building anything real.

    Raises
    ------
    CheckpointError
        When keys are missing or unexpected (``strict``) or shapes differ (outside ``skip_prefixes``).
    """
    path = ckpt.get("path", "<checkpoint>")
    own = model.state_dict()
    state = dict(ckpt["state_dict"])
    shapes, skipped = [], []
    for k in list(state):
        if k in own and tuple(own[k].shape) != tuple(state[k].shape):
            if any(k.startswith(p) for p in skip_prefixes):
                skipped.append(k)
                state.pop(k)
            else:
                shapes.append(f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}")
    missing = [k for k in own if k not in state and k not in skipped]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected or shapes):
        raise CheckpointError(_mismatch_message(path, model, ckpt["config"].get("name"), missing, unexpected, shapes))
    if shapes:
        raise CheckpointError(_mismatch_message(path, model, ckpt["config"].get("name"), [], [], shapes))
    return state


def build_model(ckpt_or_path, device="cpu") -> tuple:
    """Rebuild the checkpoint's model from its config, load its weights, and put it in eval mode.

    The model is first built on the ``meta`` device and its shapes compared with the weights, so
    a config that does not match them (``num_classes`` of a billion, a doctored ``width``) is
    refused before any memory is spent on it.

    Returns
    -------
    (model, ckpt)

    Raises
    ------
    CheckpointError
        One line naming the file: a config that does not build, or weights that do not fit it.
    """
    from ..models import create_model, model_skeleton

    ckpt = ckpt_or_path if isinstance(ckpt_or_path, dict) else load_checkpoint(ckpt_or_path)
    config = ckpt["config"]
    arguments = dict(in_chans=config.get("in_chans"), num_classes=config.get("num_classes"),
                     kwargs=config.get("kwargs") or {})
    try:
        fitting_state(model_skeleton(config["name"], **arguments), ckpt)
        model = create_model(config["name"], **arguments)
    except CheckpointError:
        raise
    except RawcvError as exc:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: {exc}") from None
    load_state_dict(model, ckpt)
    model.to(device).eval()
    return model, ckpt


__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_state_dict", "fitting_state", "build_model",
           "model_config", "unwrap_model", "resolve_weights", "migrate_config", "FORMAT", "VERSION", "CONFIG_VERSION"]
