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
