"""Checkpoints: weights plus everything needed to rebuild the model and its inputs.

A checkpoint is a dict saved with :func:`torch.save`::

    {"format": "rawcv-checkpoint", "version": 1,
     "state_dict": ...,                     # model weights
     "config": {"name", "in_chans", "num_classes", "kwargs",     # model.rawcv_config
                "task", "layout", "classes", "pipeline", "normalisation", ...},
     "epoch": int, "metrics": {...},
     # resumable ``last.pt`` files also hold:
     "optimizer", "scheduler", "rng", "history", "trainer"}

Files are written atomically (a temporary file in the same folder, then :func:`os.replace`) and
read with ``torch.load(..., weights_only=True)``: only tensors and plain containers, never code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import RawcvError

FORMAT = "rawcv-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("state_dict", "config")


class CheckpointError(RawcvError, ValueError):
    """A checkpoint file is missing, corrupt, not a rawcv checkpoint, or for another architecture."""


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
        "config": dict(config) if config is not None else model_config(model),
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
    except Exception as exc:  # zip / pickle / unsafe-global errors: all mean "not a checkpoint we can read"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if len(reason) > 120:
            reason = reason[:117] + "..."
        raise CheckpointError(f"{path}: not a readable rawcv checkpoint (corrupt, truncated or not a "
                              f"torch file: {reason})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a rawcv checkpoint (a torch file without 'state_dict' and 'config')")
    config = ckpt["config"]
    if not isinstance(config, dict) or "name" not in config or not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{path}: not a rawcv checkpoint (its config names no model)")
    ckpt["path"] = str(path)
    return ckpt


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
    path = ckpt.get("path", "<checkpoint>")
    target = unwrap_model(model)
    own = target.state_dict()
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
        raise CheckpointError(_mismatch_message(path, target, ckpt["config"].get("name"), missing, unexpected, shapes))
    if shapes:
        raise CheckpointError(_mismatch_message(path, target, ckpt["config"].get("name"), [], [], shapes))
    target.load_state_dict(state, strict=False)
    return ckpt


def build_model(ckpt_or_path, device="cpu") -> tuple:
    """Rebuild the checkpoint's model from its config, load its weights, and put it in eval mode.

    Returns
    -------
    (model, ckpt)
    """
    from ..models import create_model

    ckpt = ckpt_or_path if isinstance(ckpt_or_path, dict) else load_checkpoint(ckpt_or_path)
    config = ckpt["config"]
    try:
        model = create_model(config["name"], in_chans=config.get("in_chans"), num_classes=config.get("num_classes"),
                             kwargs=config.get("kwargs") or {})
    except RawcvError as exc:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: {exc}") from None
    except TypeError as exc:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: its model config does not build "
                              f"({exc})") from None
    load_state_dict(model, ckpt)
    model.to(device).eval()
    return model, ckpt


__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_state_dict", "build_model",
           "model_config", "unwrap_model", "resolve_weights", "FORMAT", "VERSION"]
