"""rawcv as a released library: the wheel works like the checkout, torch is an optional extra.

The wheel test builds the wheel from a copy of this tree, installs it without ``-e`` into a new
virtual environment (its dependencies from the package index, torch not among them), and runs
``rawcv process`` and ``rawcv stages`` from a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
import venv
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shapes" / "train" / "00000.dng"
TORCH_HINT = "pip install 'rawcv[torch]'"


def test_pyproject_names_every_package_under_rawcv():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "rawcv").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"rawcv.pipelines"}
    assert config["package-dir"] == {"rawcv.pipelines": "pipelines"}
    assert config["package-data"]["rawcv.pipelines"] == ["*.yaml"]


def test_torch_is_an_extra_without_upper_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("torch") for d in project["dependencies"])
    assert project["optional-dependencies"]["torch"] == ["torch>=2.4"]


def _copy_tree(dst: Path) -> Path:
    skip = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "out", "runs",
                                  ".pytest_cache", ".bench", ".whl", "sample_data")
    shutil.copytree(ROOT, dst, ignore=skip)
    return dst


def _run(cmd, *, cwd, env=None, timeout=900):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_wheel_installs_into_a_fresh_venv_and_processes_without_torch(tmp_path):
    src = _copy_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src], cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("rawcv-*.whl")

    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    installed = _run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]

    work = tmp_path / "work"     # outside the checkout: nothing can be found relative to the source
    work.mkdir()
    where = _run([bin_dir / "python", "-c", "import rawcv, rawcv.pipelines, importlib.util; "
                  "print(rawcv.__file__); print(rawcv.pipelines.__file__); "
                  "print(importlib.util.find_spec('torch') is None)"], cwd=work, env=env)
    assert where.returncode == 0, where.stderr
    module, pipelines, no_torch = where.stdout.split()
    site = str(env_dir)
    assert module.startswith(site) and pipelines.startswith(site) and no_torch == "True"

    stages = _run([bin_dir / "rawcv", "stages"], cwd=work, env=env)
    assert stages.returncode == 0, stages.stderr
    assert "pipelines: camera, core, default, linear" in stages.stdout

    shutil.copy(SAMPLE, work / "frame.dng")
    processed = _run([bin_dir / "rawcv", "process", "frame.dng", "-o", "out", "--quiet"], cwd=work, env=env)
    assert processed.returncode == 0, processed.stderr
    assert "processed 1 of 1 files with pipeline 'default'" in processed.stdout
    import imageio.v3 as iio

    image = iio.imread(work / "out" / "frame.png")
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    sidecar = json.loads((work / "out" / "frame.png.json").read_text())
    assert sidecar["output"]["color_space"] == "sRGB"

    train = _run([bin_dir / "rawcv", "train", "classify", "--data", "ds", "--out", "run"], cwd=work, env=env)
    assert train.returncode == 1
    assert train.stderr.strip().splitlines() == [
        f"rawcv train: error: this command needs PyTorch, which is not installed: {TORCH_HINT}"]


HIDE_TORCH = "import sys; sys.modules['torch'] = None  # import torch now raises ImportError\n"


def _python(code: str, tmp_path):
    return _run([sys.executable, "-c", HIDE_TORCH + textwrap.dedent(code)], cwd=tmp_path)


def test_library_and_isp_commands_work_with_torch_unimportable(tmp_path):
    result = _python(f"""
        import numpy as np, rawcv
        from rawcv.cli import main
        raw = rawcv.read({str(SAMPLE)!r})
        image = rawcv.load_pipeline("default")(raw)
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8, image.shape
        assert main(["info", {str(SAMPLE)!r}]) == 0
        assert main(["process", {str(SAMPLE)!r}, "-o", "out", "--quiet"]) == 0
        assert main(["stages"]) == 0
        assert main(["synth", "--task", "classify", "-n", "2", "--size", "32", "-o", "ds"]) == 0
        print("torch loaded:", sys.modules["torch"] is not None)
        """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch loaded: False" in result.stdout
    assert (tmp_path / "out" / "00000.png").is_file()


@pytest.mark.parametrize("module", ["rawcv.torch", "rawcv.models", "rawcv.data", "rawcv.train"])
def test_importing_a_torch_room_without_torch_says_what_to_install(tmp_path, module):
    result = _python(f"""
        from rawcv.errors import MissingDependencyError
        try:
            import {module}
        except MissingDependencyError as exc:
            print(exc)
        """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"{module} needs PyTorch, which is not installed: {TORCH_HINT}"


@pytest.mark.parametrize("argv", [["train", "classify", "--data", "d", "--out", "r"],
                                  ["predict", "classify", "--weights", "w.pt", "x.dng"],
                                  ["eval", "segment", "--weights", "w.pt", "--data", "d"]])
def test_learning_commands_without_torch_print_one_line(tmp_path, argv):
    result = _python(f"""
        from rawcv.cli import main
        raise SystemExit(main({argv!r}))
        """, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"rawcv {argv[0]}: error: this command needs PyTorch, which is not installed: {TORCH_HINT}"]
