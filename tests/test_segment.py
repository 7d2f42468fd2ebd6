"""U-Net segmentation: metrics on hand-made masks, the loss, paired Bayer-aware augmentation, a CPU
training smoke test, and ``rawcv train|predict|eval segment`` through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rawcv.data import make_toy_synth
from rawcv.meta import BAYER_PATTERNS
from rawcv.train.segment import (PairedAugment, SegmentationTask, confusion_counts, overlay, segmentation_scores,
                                 soft_dice_loss)

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("single_threaded")   # tiny models: one torch / Numba thread
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}   # small models: one thread is faster on a busy 2-core machine


def rawcv(*args, timeout=170):
    return subprocess.run([sys.executable, "cli.py", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


# --------------------------------------------------------------------------------------------
# Metrics on hand-made masks
# --------------------------------------------------------------------------------------------

TARGET = torch.tensor([[0, 0, 1, 1],
                       [0, 0, 1, 1]])
PRED = torch.tensor([[0, 1, 1, 1],
                     [0, 0, 1, 2]])


def test_confusion_counts_rows_true_columns_predicted():
    cm = confusion_counts(PRED, TARGET, 3)
    assert cm.tolist() == [[3, 1, 0], [0, 3, 1], [0, 0, 0]]
    # an ignore label outside the classes is not counted
    t = TARGET.clone()
    t[0, 0] = 255
    assert int(confusion_counts(PRED, t, 3).sum()) == 7


def test_iou_and_dice_analytic():
    s = segmentation_scores(confusion_counts(PRED, TARGET, 4).numpy(), ["bg", "a", "b", "absent"])
    # class 0: TP 3, FP 0, FN 1; class 1: TP 3, FP 1, FN 1; class 2: TP 0, FP 1, FN 0; class 3: nowhere
    assert s["iou"][:3] == pytest.approx([3 / 4, 3 / 5, 0.0])
    assert s["dice"][:3] == pytest.approx([6 / 7, 6 / 8, 0.0])
    assert s["iou"][3] is None and s["dice"][3] is None          # no union: left out of the means
    assert s["miou"] == pytest.approx((3 / 4 + 3 / 5 + 0) / 3)
    assert s["mdice"] == pytest.approx((6 / 7 + 6 / 8 + 0) / 3)
    assert s["miou_fg"] == pytest.approx((3 / 5 + 0) / 2)
    assert s["pixel_accuracy"] == pytest.approx(6 / 8)


def test_task_metrics_come_from_the_whole_set_not_batch_means():
    task = SegmentationTask(2, ["bg", "fg"])
    state = task.init_metrics()
    # batch 1: perfect on 4 background pixels; batch 2: half of 8 foreground pixels missed
    t1, p1 = torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long)
    t2 = torch.ones(1, 2, 4, dtype=torch.long)
    p2 = torch.tensor([[[1, 1, 0, 0], [1, 1, 0, 0]]])
    for p, t in ((p1, t1), (p2, t2)):
        logits = torch.nn.functional.one_hot(p, 2).permute(0, 3, 1, 2).float() * 10
        task.update_metrics(state, logits, t)
    m = task.compute_metrics(state)
    # whole set: bg TP 4, FP 4 -> 0.5; fg TP 4, FN 4 -> 0.5
    assert m["iou_bg"] == pytest.approx(0.5) and m["iou_fg"] == pytest.approx(0.5)
    assert m["miou"] == pytest.approx(0.5)
    assert m["mdice"] == pytest.approx(2 / 3)
    assert m["pixel_acc"] == pytest.approx(8 / 12)
    # the mean of the per-batch mIoUs, (1.0 + 0.25) / 2, is not what is reported
    batch1 = segmentation_scores(confusion_counts(p1, t1, 2).numpy())["miou"]
    batch2 = segmentation_scores(confusion_counts(p2, t2, 2).numpy())["miou"]
    assert (batch1 + batch2) / 2 != pytest.approx(m["miou"])


def test_soft_dice_loss_is_zero_for_a_perfect_prediction_and_large_for_a_wrong_one():
    t = torch.randint(0, 3, (2, 8, 8))
    good = torch.nn.functional.one_hot(t, 3).permute(0, 3, 1, 2).float() * 50
    bad = torch.nn.functional.one_hot((t + 1) % 3, 3).permute(0, 3, 1, 2).float() * 50
    assert float(soft_dice_loss(good, t, 3)) < 1e-3
    assert float(soft_dice_loss(bad, t, 3)) > 0.95      # (0 + eps) / (sum + eps) per class
    task = SegmentationTask(3)
    assert float(task.loss(good, t)) < 1e-3


# --------------------------------------------------------------------------------------------
# Paired augmentation keeps image and mask aligned (and the Bayer meaning of packed channels)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("crop", [None, 6])
def test_paired_augment_keeps_packed_input_and_mask_aligned(crop):
    from rawcv.torch.tensors import pack, unpack

    torch.manual_seed(0)
    mask = torch.randint(0, 7, (12, 12))
    packed = pack(mask.float(), "RGGB")           # every raw value is its pixel's class id
    aug = PairedAugment("packed", crop=crop, exposure=None)
    seen_cfas = set()
    for _ in range(40):
        x, y = aug(packed, mask)
        matches = [c for c in BAYER_PATTERNS if torch.equal(unpack(x, c)[0], y.float())]
        assert matches, "the augmented input no longer lines up with the augmented mask"
        seen_cfas.update(matches)
        if crop:
            assert tuple(y.shape) == (crop, crop) and tuple(x.shape) == (4, crop // 2, crop // 2)
    assert len(seen_cfas) > 1       # flips / transposes did happen


def test_paired_augment_rgb_layout():
    torch.manual_seed(1)
    mask = torch.randint(0, 5, (8, 8))
    x = mask.float()[None].repeat(3, 1, 1)
    for _ in range(20):
        xa, ya = PairedAugment("rgb")(x, mask)
        assert torch.equal(xa[0], ya.float())


def test_overlay_colours_foreground_only():
    display = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = 2
    out = overlay(display, mask)
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3)
    assert (out[0, 0] == 100).all() and not (out[1, 1] == 100).all()


# --------------------------------------------------------------------------------------------
# Training (CPU smoke test), prediction and evaluation through the command line
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_synth(tmp_path_factory.mktemp("seg") / "toy", n_train=16, n_val=4, n_test=4, size=64, seed=0)


@pytest.fixture(scope="module")
def run_dir(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg_run") / "run"
    res = rawcv("train", "segment", "--data", toy, "--model-arg", "base_width=8", "--model-arg", "depth=2",
                "--epochs", 6, "--batch-size", 4, "--lr", 5e-3, "--device", "cpu", "--seed", 0, "--no-progress",
                "--augment", "--out", out)
    assert res.returncode == 0, res.stderr
    return out, res


def test_train_smoke_loss_goes_down_and_logs_val_iou(run_dir):
    out, res = run_dir
    for name in ("best.pt", "last.pt", "metrics.json", "metrics.csv", "curves.png", "run.json"):
        assert (out / name).is_file(), name
    hist = json.loads((out / "metrics.json").read_text())
    assert len(hist) == 6
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    for key in ("val_miou", "val_mdice", "val_iou_background", "val_iou_circle"):
        assert key in hist[-1]
    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert ckpt["config"]["task"] == "segment" and ckpt["config"]["classes"][0] == "background"
    assert ckpt["config"]["layout"] == "packed"


def test_cli_eval_segment_prints_and_writes_iou(run_dir, toy, tmp_path):
    out, _ = run_dir
    res = rawcv("eval", "segment", "--weights", out, "--data", toy, "--split", "test", "--device", "cpu",
                "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    assert "mIoU" in res.stdout and "circle" in res.stdout
    data = json.loads((tmp_path / "eval_segment_test.json").read_text())
    assert 0.0 <= data["miou"] <= 1.0 and data["n"] == 4
    assert set(data["per_class_iou"]) == set(data["classes"])
    cm = np.asarray(data["confusion"])
    assert cm.sum() == 4 * 64 * 64


def test_cli_predict_segment_writes_mask_and_overlay_without_overwriting(run_dir, toy, tmp_path):
    import imageio.v3 as iio

    out, _ = run_dir
    files = sorted((toy / "test").glob("*.dng"))[:2]
    res = rawcv("predict", "segment", "--weights", out, "--out", tmp_path / "pred", "--device", "cpu", *files)
    assert res.returncode == 0, res.stderr
    for f in files:
        mask = iio.imread(tmp_path / "pred" / f"{f.stem}_mask.png")
        over = iio.imread(tmp_path / "pred" / f"{f.stem}_overlay.png")
        assert mask.shape == (64, 64) and mask.dtype == np.uint8 and mask.max() < 7
        assert over.shape == (64, 64, 3)
    before = (tmp_path / "pred" / f"{files[0].stem}_mask.png").stat().st_mtime_ns
    # -o is --out, the spelling every predict task shares
    again = rawcv("predict", "segment", "--weights", out, "-o", tmp_path / "pred", "--device", "cpu", files[0])
    assert again.returncode == 1 and "exists" in again.stderr
    assert (tmp_path / "pred" / f"{files[0].stem}_mask.png").stat().st_mtime_ns == before
    forced = rawcv("predict", "segment", "--weights", out, "--out", tmp_path / "pred", "--device", "cpu",
                   "--overwrite", files[0])
    assert forced.returncode == 0, forced.stderr
    assert not [p for p in (tmp_path / "pred").iterdir() if p.name.startswith(".")]   # no temporaries left


def test_cli_segment_rejects_a_class_folder(tmp_path):
    from rawcv.data import make_toy_folder

    folder = make_toy_folder(tmp_path / "shapes", n_per_class=2, size=32)
    res = rawcv("train", "segment", "--data", folder, "--out", tmp_path / "run", "--epochs", 1, "--device", "cpu")
    assert res.returncode == 1 and "manifest" in res.stderr
