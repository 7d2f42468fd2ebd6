"""``rawcv synth`` writes the ground truth each task trains on, and no more unless asked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rawcv.cli import main

# What each task trains on besides the raw file and the manifest's label (rawcv.data reads these).
NEEDED = {"classify": set(), "segment": {"mask"}, "restore": {"clean"}}
SUFFIX = {"mask": "_mask.png", "clean": "_clean.npy"}


def _synth(tmp_path, task, *extra):
    out = tmp_path / task
    assert main(["synth", "--task", task, "-n", "3", "--size", "32", "--split", "1,1,1", "-o", str(out),
                 "--quiet", *extra]) == 0
    return out, json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("task", sorted(NEEDED))
def test_each_task_gets_only_the_files_it_trains_on(task, tmp_path):
    out, manifest = _synth(tmp_path, task)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = ["manifest.json"]
    for item in manifest["items"]:
        expected.append(f"{item['id']}.dng")
        expected += [f"{item['id']}{SUFFIX[kind]}" for kind in NEEDED[task]]
    assert files == sorted(expected)
    for item in manifest["items"]:
        assert {"mask", "clean"} & set(item) == NEEDED[task]       # the manifest names only what exists
    assert set(manifest["truth"]) == NEEDED[task]


def test_with_truth_writes_masks_and_clean_images_for_any_task(tmp_path):
    out, manifest = _synth(tmp_path, "classify", "--with-truth")
    for item in manifest["items"]:
        clean = np.load(out / item["clean"])
        assert clean.shape == (32, 32, 3) and clean.dtype == np.float32
        assert (out / item["mask"]).is_file()
    assert set(manifest["truth"]) == {"clean", "mask"}


def test_the_same_seed_gives_the_same_raw_files_with_or_without_truth(tmp_path):
    plain, _ = _synth(tmp_path / "a", "classify")
    full, _ = _synth(tmp_path / "b", "classify", "--with-truth")
    for dng in sorted(plain.rglob("*.dng")):
        assert dng.read_bytes() == (full / dng.relative_to(plain)).read_bytes()
