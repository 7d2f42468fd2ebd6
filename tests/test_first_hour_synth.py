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


@pytest.mark.parametrize("case", ["file", "under_file", "name_too_long"])
def test_synth_bad_output_folder_is_one_line_and_creates_nothing(tmp_path, case, capsys):
    from rawcv.cli import main

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = {"file": blocker, "under_file": blocker / "ds", "name_too_long": tmp_path / ("x" * 300)}[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["synth", "--task", "classify", "-n", "2", "--size", "32", "-o", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("rawcv synth: error: ")
    assert str(out if case != "under_file" else blocker) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert blocker.read_text() == "x"
