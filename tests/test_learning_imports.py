"""Imports of the learning side that the layer contracts (pyproject's ``[tool.importlinter]``)
do not cover: the options and the classical baselines import no torch at all (the command line
builds its parser from the options without it), and tasks share helpers through public names
(:mod:`rawcv.train.inputs`, :mod:`rawcv.train.runs`), not the classifier's private ones. Checked
on the source, imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TORCH_STAGE = ("rawcv.torch", "rawcv.data", "rawcv.models", "rawcv.train", "rawcv.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """``(imported module, imported names)`` of every import statement in the file."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            yield ".".join(base + ([node.module] if node.module else [])), tuple(a.name for a in node.names)


def _sources(*names):
    for name in names:
        path = ROOT / "rawcv" / name
        yield from (sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")])


@pytest.mark.parametrize("path", list(_sources("options", "baselines")), ids=_module_name)
def test_options_and_baselines_import_no_torch(path):
    found = [m for m, _ in _imports(path) if m == "torch" or m.startswith(("torch.",) + TORCH_STAGE)]
    assert not found, f"{_module_name(path)} imports {found}"


@pytest.mark.parametrize("path", list(_sources("train")), ids=_module_name)
def test_tasks_import_no_private_helpers_of_the_classifier(path):
    private = [name for module, names in _imports(path) if module == "rawcv.train.classify"
               for name in names if name.startswith("_")]
    assert not private, f"{_module_name(path)} imports {private} from rawcv.train.classify"
