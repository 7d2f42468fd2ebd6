"""DataLoaders the way rawcv's training and evaluation expect them: seeded, with seeded workers."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed."""
    seed = torch.initial_seed() % (2 ** 32)
    np.random.seed(seed)
    random.seed(seed)


def make_loaders(train_ds, val_ds, *, batch_size: int, workers: int = 0, device="cpu", seed: int = 0) -> tuple:
    """``(train_loader, val_loader)``: the training set shuffled, the validation set (None or
    empty: no loader) in order, both from :func:`make_loader`."""
    train = make_loader(train_ds, batch_size=batch_size, shuffle=True, workers=workers, device=device, seed=seed)
    val = None
    if val_ds is not None and len(val_ds):
        val = make_loader(val_ds, batch_size=batch_size, shuffle=False, workers=workers, device=device, seed=seed)
    return train, val


def make_loader(dataset, *, batch_size: int = 32, shuffle: bool = False, workers: int = 0, device="cpu",
                seed: int = 0, drop_last: bool = False, collate_fn=None):
    """A DataLoader set up the way the Trainer expects.

    A seeded ``generator`` (re-seeded per epoch by the Trainer), seeded workers, pinned memory
    on CUDA and persistent workers (so a dataset's memory cache survives between epochs).

    Workers start through ``forkserver`` (``spawn`` where that is missing), not ``fork``: once
    the ISP's Numba kernels have run in this process on the GNU OpenMP threading layer, a
    forked worker running them again is terminated ("fork() called from a process already
    using GNU OpenMP").
    """
    import multiprocessing

    from torch.utils.data import DataLoader

    device = torch.device(device)
    generator = torch.Generator()
    generator.manual_seed(seed)
    context = None
    if workers > 0:
        methods = multiprocessing.get_all_start_methods()
        context = "forkserver" if "forkserver" in methods else "spawn"
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, generator=generator,
        worker_init_fn=seed_worker, pin_memory=device.type == "cuda", drop_last=drop_last,
        persistent_workers=workers > 0, collate_fn=collate_fn, multiprocessing_context=context,
    )


__all__ = ["make_loader", "make_loaders", "seed_worker"]
