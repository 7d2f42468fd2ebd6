"""What every training and evaluation step shares: seeds and RNG state, progress bars, the
inference context, moving batches to a device."""

from __future__ import annotations

import contextlib
import random
import sys
from typing import Optional

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def progress_bar(iterable, desc: str, *, progress: Optional[bool] = None, total: Optional[int] = None) -> tuple:
    """``(iterable to loop over, tqdm bar or None)``: a bar on stderr unless ``progress`` is False
    (None: tqdm decides, i.e. only on a terminal) or tqdm is missing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable, None
    bar = tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr,
               disable=None if progress is None else not progress, dynamic_ncols=True)
    return bar, bar


@contextlib.contextmanager
def inference(device):
    """How every prediction runs: no gradients and, on CUDA, bf16 autocast (as in training)."""
    device = torch.device(device)
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                         enabled=device.type == "cuda"):
        yield


def predict_batches(model: nn.Module, loader, device, *, progress: Optional[bool] = None, desc: str = "eval"):
    """``(logits, targets)`` of every ``(inputs, targets)`` batch of ``loader``, both on ``device``,
    the logits computed under :func:`inference`; a progress bar as :func:`progress_bar`."""
    device = torch.device(device)
    iterable, bar = progress_bar(loader, desc, progress=progress)
    try:
        for x, y in iterable:
            x, y = x.to(device, non_blocking=device.type == "cuda"), y.to(device)
            with inference(device):
                logits = model(x)
            yield logits, y
    finally:
        if bar is not None:
            bar.close()


def move_to(obj, device, *, non_blocking: bool = False, channels_last: bool = False):
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device, non_blocking=non_blocking)
        if channels_last and obj.ndim == 4 and obj.is_floating_point():
            obj = obj.contiguous(memory_format=torch.channels_last)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(o, device, non_blocking=non_blocking, channels_last=channels_last) for o in obj)
    if isinstance(obj, dict):
        return {k: move_to(v, device, non_blocking=non_blocking, channels_last=channels_last) for k, v in obj.items()}
    return obj


def _batch_size(targets, inputs) -> int:
    for t in (targets, inputs):
        if isinstance(t, torch.Tensor) and t.ndim > 0:
            return int(t.shape[0])
        if isinstance(t, (list, tuple)) and t:
            return _batch_size(t[0], None)
    return 1


# RNG state in a weights_only-loadable form

def get_rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except (RuntimeError, IndexError):
            pass   # a different number of GPUs: keep the fresh CUDA generators


__all__ = ["seed_everything", "progress_bar", "inference", "predict_batches", "move_to", "get_rng_state",
           "set_rng_state"]
