"""Shared fixtures of the rawcv test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

RAW_SAMPLES = Path(__file__).parent.parent.parent / "shared" / "raw-samples"


@pytest.fixture(scope="session")
def raw_samples() -> Path:
    """The folder of real camera samples, ``../shared/raw-samples`` from the repository root."""
    if not RAW_SAMPLES.is_dir():
        pytest.skip("../shared/raw-samples not found (real camera samples are not part of the repo)")
    return RAW_SAMPLES


@pytest.fixture(scope="module")
def single_threaded():
    """One thread each for torch and Numba while a module runs on tiny arrays, so no thread pool
    wakes up or spins for every small op (on a busy 2-core machine that costs milliseconds per op)."""
    import numba
    import torch

    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    numba.set_num_threads(numba_threads)
