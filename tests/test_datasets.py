"""Tests of rawcv.data: RawFolder, SynthDataset, caches, layouts, worker pickling and splits."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

import rawcv
from rawcv.data import (DatasetError, RawFolder, SynthDataset, make_toy_folder, make_toy_synth, raw_to_tensor,
                        split_indices)
from rawcv.errors import RawcvError
from rawcv.meta import CameraMeta, RawImage

BLACK, WHITE = 64, 4095


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_toy_folder(tmp_path_factory.mktemp("toy") / "shapes", n_per_class=4, size=64, seed=3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_toy_synth(tmp_path_factory.mktemp("synth") / "ds", n_train=6, n_val=2, n_test=3, size=32, seed=5)


def _count_reads(monkeypatch):
    calls = []
    real = rawcv.io.read

    def counting(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(rawcv.io, "read", counting)
    return calls


# --- RawFolder ------------------------------------------------------------------------------

def test_rawfolder_class_mapping_follows_sorted_folder_names(tmp_path):
    make_toy_folder(tmp_path, classes=("square",), n_per_class=2, size=32, seed=1)
    make_toy_folder(tmp_path, classes=("disc",), n_per_class=3, size=32, seed=2)
    (tmp_path / "square" / "notes.txt").write_text("not a raw file")
    (tmp_path / "README.md").write_text("ignored: not a folder")
    ds = RawFolder(tmp_path)
    assert ds.classes == ["disc", "square"]
    assert ds.class_to_idx == {"disc": 0, "square": 1}
    assert ds.targets == [0, 0, 0, 1, 1]
    assert len(ds) == 5
    for path, target in ds.samples:
        assert path.endswith(".dng")
        assert f"/{ds.classes[target]}/" in path
    assert ds[4][1] == 1 and ds.num_classes == 2


def test_packed_layout_shape_and_values_match_the_mosaic(folder):
    ds = RawFolder(folder, layout="packed")
    x, y = ds[0]
    assert x.shape == (4, 32, 32) and x.dtype == torch.float32
    assert ds.in_chans == 4
    raw = rawcv.read(ds.samples[0][0])
    expected_r = (raw.data[0::2, 0::2].astype(np.float32) - BLACK) / (WHITE - BLACK)
    expected_b = (raw.data[1::2, 1::2].astype(np.float32) - BLACK) / (WHITE - BLACK)
    np.testing.assert_allclose(x[0].numpy(), expected_r, atol=1e-6)
    np.testing.assert_allclose(x[3].numpy(), expected_b, atol=1e-6)


def test_packed_tensor_orders_planes_r_g1_g2_b_for_every_cfa():
    # 4x4 mosaic whose value encodes the CFA position: R=1000, G(on R rows)=2000, G(on B rows)=3000, B=4000
    for cfa in ("RGGB", "BGGR", "GRBG", "GBRG"):
        m = np.zeros((4, 4), np.uint16)
        cmap = rawcv.meta.cfa_channel_map(cfa)
        r_row = int(np.argwhere(cmap == 0)[0][0])
        for dy in range(2):
            for dx in range(2):
                c = cmap[dy, dx]
                m[dy::2, dx::2] = {0: 1000, 2: 4000}.get(c, 2000 if dy == r_row else 3000)
        packed = raw_to_tensor(RawImage(m, CameraMeta(cfa, black_level=0, white_level=4000)), "packed")
        assert packed.shape == (4, 2, 2)
        np.testing.assert_allclose(packed[:, 0, 0].numpy(), [0.25, 0.5, 0.75, 1.0], err_msg=cfa)


def test_packed_layout_rejects_linear_data():
    raw = RawImage(np.zeros((4, 4, 3), np.uint16), CameraMeta(None, white_level=100, linear=True), "lin.dng")
    with pytest.raises(RawcvError, match="lin.dng: the packed layout needs a Bayer mosaic"):
        raw_to_tensor(raw, "packed")
    assert raw_to_tensor(raw, "rgb").shape == (3, 4, 4)


def test_rgb_layouts_linear_default_and_display(folder):
    lin = RawFolder(folder, layout="rgb")
    x, _ = lin[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and lin.in_chans == 3
    raw = rawcv.read(lin.samples[0][0])
    expected = rawcv.load_pipeline("linear")(raw).transpose(2, 0, 1)
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)

    disp = RawFolder(folder, layout="rgb", pipeline="default")
    xd, _ = disp[0]
    expected8 = rawcv.load_pipeline("default")(raw)
    assert expected8.dtype == np.uint8
    np.testing.assert_allclose(xd.numpy(), expected8.transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert 0.0 <= float(xd.min()) and float(xd.max()) <= 1.0
    assert disp.input_spec()["pipeline"] == "default"


def test_pipeline_argument_with_packed_layout_is_refused(folder):
    with pytest.raises(ValueError, match="applies to layout .rgb. only"):
        RawFolder(folder, layout="packed", pipeline="default")
    with pytest.raises(ValueError, match="unknown layout"):
        RawFolder(folder, layout="bayer")


def test_memory_cache_returns_identical_tensors_and_reads_once(folder, monkeypatch):
    calls = _count_reads(monkeypatch)
    ds = RawFolder(folder, cache="memory")
    first = [ds[i][0] for i in range(len(ds))]
    second = [ds[i][0] for i in range(len(ds))]
    assert len(calls) == len(ds)                      # decoded once each
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    uncached = RawFolder(folder)
    assert torch.equal(uncached[3][0], first[3])


def test_disk_cache_writes_npy_and_survives_a_new_dataset(tmp_path, monkeypatch):
    root = make_toy_folder(tmp_path / "shapes", n_per_class=2, size=32, seed=7)
    ds = RawFolder(root, cache="disk")
    first = [ds[i][0] for i in range(len(ds))]
    cache_dir = root / ".rawcv-cache"
    assert len(list(cache_dir.glob("*.npy"))) == 4 and len(list(cache_dir.glob("*.json"))) == 4

    def no_read(path):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(rawcv.io, "read", no_read)
    again = RawFolder(root, cache="disk")           # the hidden cache folder is not a class
    assert again.classes == ["disc", "square"]
    for i, a in enumerate(first):
        assert torch.equal(again[i][0], a)
    rgb = RawFolder(root, cache="disk", layout="rgb")
    assert rgb[0][0].shape == (3, 32, 32)


def test_disk_cache_in_explicit_folder(tmp_path):
    root = make_toy_folder(tmp_path / "shapes", n_per_class=1, size=32, seed=8)
    ds = RawFolder(root, cache="disk", cache_dir=tmp_path / "cache")
    x = ds[1][0]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    assert torch.equal(RawFolder(root, cache="disk", cache_dir=tmp_path / "cache")[1][0], x)


def test_dataset_pickles_without_cached_images(folder):
    ds = RawFolder(folder, cache="memory", layout="rgb")
    _ = [ds[i] for i in range(len(ds))]
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000                       # paths and settings only, no decoded images
    clone = pickle.loads(blob)
    assert torch.equal(clone[2][0], ds[2][0])


@pytest.mark.parametrize("layout", ["packed", "rgb"])
def test_dataset_works_in_dataloader_workers(folder, layout):
    from rawcv.train import make_loader

    ds = RawFolder(folder, cache="memory", layout=layout)
    _ = ds[0]                                        # the ISP has run in this process already
    batches0 = list(make_loader(ds, batch_size=4, workers=0))
    batches2 = list(make_loader(ds, batch_size=4, workers=2))
    assert len(batches0) == len(batches2) == 2
    for (x0, y0), (x2, y2) in zip(batches0, batches2):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)


def test_transform_is_applied(folder):
    ds = RawFolder(folder, transform=lambda x: x * 2)
    assert torch.allclose(ds[0][0], RawFolder(folder)[0][0] * 2)


def test_crop_keeps_cfa_alignment(folder):
    ds = RawFolder(folder, crop=40)
    x, _ = ds[0]
    assert x.shape == (4, 20, 20)
    full = RawFolder(folder)[0][0]
    # centre crop at even offsets: (64 - 40) / 2 = 12 pixels = 6 packed pixels
    assert torch.equal(x, full[:, 6:26, 6:26])


def test_rawfolder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        RawFolder(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no class folders"):
        RawFolder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetError, match="no RAW files"):
        RawFolder(tmp_path)


def test_bad_file_raises_a_rawcv_error_naming_it(tmp_path):
    make_toy_folder(tmp_path, classes=("disc",), n_per_class=1, size=32)
    bad = tmp_path / "disc" / "zz_broken.dng"
    bad.write_bytes(b"not a dng at all")
    ds = RawFolder(tmp_path)
    with pytest.raises(RawcvError, match="zz_broken.dng"):
        ds[1]


# --- SynthDataset ---------------------------------------------------------------------------

def test_synth_dataset_label_targets_and_splits(synth):
    train = SynthDataset(synth, "train")
    manifest = json.loads((synth / "manifest.json").read_text())
    assert len(train) == 6 and len(SynthDataset(synth, "val")) == 2 and len(SynthDataset(synth, "test")) == 3
    assert len(SynthDataset(synth, "all")) == 11 and len(SynthDataset(synth, None)) == 11
    # the background class is never an image label: classes are the 6 shapes, targets label - 1
    assert train.classes == manifest["classes"][1:] and train.num_classes == 6
    labels = [it["label"] for it in manifest["items"] if it["split"] == "train"]
    assert train.targets == [l - 1 for l in labels]
    x, y = train[1]
    assert x.shape == (4, 16, 16) and y == labels[1] - 1
    assert train.splits == ["test", "train", "val"]


def test_synth_dataset_mask_and_clean_targets(synth):
    ds = SynthDataset(synth, "val", target="mask")
    x, m = ds[0]
    assert m.shape == (32, 32) and m.dtype == torch.int64
    assert set(m.unique().tolist()) <= {0, 1, 2} and ds.classes[0] == "background"
    cl = SynthDataset(synth, "test", target="clean", layout="rgb")
    x, c = cl[0]
    assert x.shape == (3, 32, 32) and c.shape == (3, 32, 32) and c.dtype == torch.float32
    expected = np.load(synth / cl.items[0]["clean"]).transpose(2, 0, 1)
    np.testing.assert_array_equal(c.numpy(), expected)


def test_synth_joint_transform_gets_input_and_target(synth):
    seen = []

    def flip(x, y):
        seen.append(True)
        return x.flip(-1), y.flip(-1)

    ds = SynthDataset(synth, "train", target="mask", transform=flip)
    x, m = ds[0]
    plain_x, plain_m = SynthDataset(synth, "train", target="mask")[0]
    assert seen and torch.equal(m, plain_m.flip(-1)) and torch.equal(x, plain_x.flip(-1))


def test_synth_dataset_errors(tmp_path, synth):
    with pytest.raises(DatasetError, match="manifest.json"):
        SynthDataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        SynthDataset(tmp_path)
    with pytest.raises(ValueError, match="unknown target"):
        SynthDataset(synth, target="boxes")


# --- raw_to_tensor and splits -----------------------------------------------------------------

def test_raw_to_tensor_matches_dataset(folder):
    ds = RawFolder(folder, layout="rgb", pipeline="default")
    raw = rawcv.read(ds.samples[5][0])
    assert torch.equal(raw_to_tensor(raw, "rgb", "default"), ds[5][0])
    assert torch.equal(raw_to_tensor(raw, "packed"), RawFolder(folder)[5][0])


def test_split_indices_is_deterministic_disjoint_and_complete():
    tr, va = split_indices(50, 0.2, seed=4)
    assert (tr, va) == split_indices(50, 0.2, seed=4)
    assert len(va) == 10 and len(tr) == 40
    assert sorted(tr + va) == list(range(50)) and not set(tr) & set(va)
    assert split_indices(50, 0.2, seed=5) != (tr, va)
    assert split_indices(10, 0.0) == (list(range(10)), [])
    assert len(split_indices(3, 0.01)[1]) == 1          # at least one validation sample


def test_split_indices_stratified_keeps_class_proportions():
    labels = [0] * 30 + [1] * 10
    tr, va = split_indices(40, 0.2, seed=0, labels=labels)
    val_labels = [labels[i] for i in va]
    assert val_labels.count(0) == 6 and val_labels.count(1) == 2
    with pytest.raises(ValueError):
        split_indices(10, 1.0)
