"""The first `rawcv process` on a cold Numba cache says, once, that it compiles the kernels; a run
on the warm cache says nothing. Runs in subprocesses with NUMBA_CACHE_DIR pointing at an empty
folder, so the project's own cache is neither used nor touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import rawcv

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "compiling the ISP kernels"


def _process(*args, cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "process", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_cold_cache_notice_once_then_never(tmp_path):
    files = []
    for i in range(2):
        f = tmp_path / f"f{i}.dng"
        rawcv.write_dng(f, np.random.default_rng(i).integers(64, 4000, (48, 64)).astype(np.uint16), cfa="RGGB",
                        black=64, white=4095)
        files.append(f)
    # one stage: few kernels, so the cold run compiles in seconds
    pipe = tmp_path / "levels.yaml"
    pipe.write_text("stages:\n- stage: black_level\n")
    cache = tmp_path / "numba-cache"
    cache.mkdir()

    code, out, err = _process(*files, "-o", tmp_path / "cold", "--pipeline", pipe, "--quiet", cache=cache)
    assert code == 0, err
    notices = [line for line in err.splitlines() if NOTICE in line]
    assert notices == [f"rawcv process: {NOTICE} (once; cached in {cache})"], err
    assert "processed 2 of 2" in out and "compiling kernels before" in out
    assert any(cache.rglob("*.nbi"))          # Numba did write its cache where the line says

    code, out, err = _process(*files, "-o", tmp_path / "warm", "--pipeline", pipe, "--quiet", cache=cache)
    assert code == 0, err
    assert NOTICE not in err and "compiling" not in out
    for f in files:
        assert np.array_equal(np.load(tmp_path / "warm" / f"{f.stem}.npy"), np.load(tmp_path / "cold" / f"{f.stem}.npy"))
