"""Semantic segmentation on raw data with a U-Net: the task, training on a synthetic dataset,
prediction (class-id mask + colour overlay PNGs) and evaluation (what ``rawcv train|predict|eval
segment`` run).

The network sees packed Bayer raw (``4 x H/2 x W/2``; the U-Net's pixel-shuffle head predicts at
the full ``H x W`` sensor resolution) or an ISP pipeline's RGB (``--layout rgb``). The loss is
cross-entropy + soft Dice; the metrics are per-class IoU, mean IoU and mean Dice computed from a
confusion matrix accumulated over the whole validation set (not averaged per batch).

>>> from rawcv.train.segment import train_segmenter, evaluate_segmenter
>>> train_segmenter("synth_seg/", out="runs/seg", epochs=10, augment=True)     # doctest: +SKIP
>>> evaluate_segmenter("runs/seg", "synth_seg/", split="test")["miou"]          # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OutputExistsError, RawcvError
from .checkpoint import load_state_dict
from .inputs import input_normalisation
from .runs import write_run_info
from .engine import (Task, TrainConfig, Trainer, checkpoint_architecture, fit_and_report, inference,
                    load_trained, make_loader, make_loaders, predict_batches, require_classes,
                    require_model_task, require_resumed_classes, require_task, resolve_device, seed_everything,
                    starting_checkpoint)

TASK = "segment"
DEFAULT_MODEL = "unet_small"
#: Adam learning rate when none is given: on the synthetic shapes, 1e-3 left unet_small predicting
#: background only for 2000+ steps, while 3e-4 learnt the shape classes (docs/DENSE_RESULTS.md).
DEFAULT_ADAM_LR = 3e-4
#: Overlay colours (RGB) by class id; class 0 (background) is left uncoloured.
PALETTE = np.array([
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128),
], dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Metrics and losses
# --------------------------------------------------------------------------------------------

def confusion_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``num_classes x num_classes`` int64 pixel counts, rows = true class, columns = predicted.

    Target values outside ``[0, num_classes)`` (e.g. an ignore label 255) are not counted.
    """
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long()
    keep = (t >= 0) & (t < num_classes)
    idx = t[keep] * num_classes + p[keep].clamp(0, num_classes - 1)
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).cpu()


def segmentation_scores(cm, class_names: Optional[Sequence[str]] = None) -> dict:
    """Per-class IoU and Dice, their means, and pixel accuracy from a confusion matrix.

    ``IoU_c = TP / (TP + FP + FN)``, ``Dice_c = 2 TP / (2 TP + FP + FN)``; a class absent from
    both the ground truth and the prediction (no union) has no score (``None``) and is left out
    of the means. ``miou_fg`` / ``mdice_fg`` leave out class 0 (the background) too.

    Examples
    --------
    >>> s = segmentation_scores(np.array([[3, 1], [0, 4]]))
    >>> [round(v, 4) for v in s["iou"]], round(s["miou"], 4)
    ([0.75, 0.8], 0.775)
    """
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    union = tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(union > 0, 2 * tp / (2 * tp + fp + fn), np.nan)

    def mean(v):
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    as_list = lambda v: [None if not np.isfinite(x) else float(x) for x in v]  # noqa: E731
    total = cm.sum()
    return {"iou": as_list(iou), "dice": as_list(dice), "miou": mean(iou), "mdice": mean(dice),
            "miou_fg": mean(iou[1:]), "mdice_fg": mean(dice[1:]),
            "pixel_accuracy": float(tp.sum() / total) if total else float("nan"), "classes": names}


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, num_classes: int, eps: float = 1.0) -> torch.Tensor:
    """``1 - mean_c (2 sum(p_c t_c) + eps) / (sum p_c + sum t_c + eps)`` over the batch (softmax
    probabilities ``p``, one-hot targets ``t``); pixels with a target outside the classes are
    ignored."""
    probs = torch.softmax(logits.float(), dim=1)
    t = target.long()
    valid = ((t >= 0) & (t < num_classes)).unsqueeze(1).float()
    onehot = F.one_hot(t.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2).float() * valid
    probs = probs * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


class SegmentationTask(Task):
    """Cross-entropy + ``dice_weight`` x soft Dice on ``N x K x H x W`` logits; metrics from an
    accumulated confusion matrix: ``miou``, ``mdice``, ``pixel_acc`` and ``iou_<class>``."""

    name = TASK

    def __init__(self, num_classes: int, class_names: Optional[Sequence[str]] = None, dice_weight: float = 1.0,
                 ignore_index: int = 255):
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        self.dice_weight = float(dice_weight)
        self.ignore_index = ignore_index

    def loss(self, outputs, targets):
        logits = outputs.float()
        ce = F.cross_entropy(logits, targets.long(), ignore_index=self.ignore_index)
        if self.dice_weight:
            return ce + self.dice_weight * soft_dice_loss(logits, targets, self.num_classes)
        return ce

    def init_metrics(self) -> dict:
        return {"cm": torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)}

    def update_metrics(self, state, outputs, targets) -> None:
        state["cm"] += confusion_counts(outputs.argmax(dim=1), targets, self.num_classes)

    def compute_metrics(self, state) -> dict:
        s = segmentation_scores(state["cm"].numpy(), self.class_names)
        out = {"miou": s["miou"], "mdice": s["mdice"], "pixel_acc": s["pixel_accuracy"]}
        for name, v in zip(self.class_names, s["iou"]):
            out[f"iou_{name}"] = float("nan") if v is None else v
        return out

    def config(self) -> dict:
        return {"task": self.name, "dice_weight": self.dice_weight}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

class PairedAugment:
    """Random crop (even offsets: the CFA is kept), flips and transpose of an input and its mask
    alike (Bayer-aware for packed inputs: :func:`rawcv.torch.augment.flip_packed`), and for packed
    inputs a random exposure."""

    def __init__(self, layout: str = "packed", crop: Optional[int] = None, flip: bool = True, transpose: bool = True,
                 exposure=(0.7, 1.4)):
        self.layout = layout
        self.crop = None if crop is None else int(crop) // 2 * 2
        self.flip, self.transpose = flip, transpose
        self.exposure = exposure if layout == "packed" else None

    def __call__(self, x, y):
        from ..torch.augment import flip_packed, flip_spatial

        s = 2 if self.layout == "packed" else 1
        if self.crop is not None:
            H, W = y.shape[-2:]
            c = self.crop
            if c > min(H, W):
                raise RawcvError(f"--crop {c} is larger than the {W}x{H} images")
            top = int(torch.randint(0, (H - c) // 2 + 1, ())) * 2
            left = int(torch.randint(0, (W - c) // 2 + 1, ())) * 2
            y = y[..., top:top + c, left:left + c]
            x = x[..., top // s:(top + c) // s, left // s:(left + c) // s]
        t = bool(self.transpose and y.shape[-1] == y.shape[-2] and torch.rand(()) < 0.5)
        h = bool(self.flip and torch.rand(()) < 0.5)
        v = bool(self.flip and torch.rand(()) < 0.5)
        flip = flip_packed if self.layout == "packed" else flip_spatial
        x = flip(x, horizontal=h, vertical=v, transpose=t)
        y = flip_spatial(y, horizontal=h, vertical=v, transpose=t)
        if self.exposure is not None:
            lo, hi = self.exposure
            x = x * float(lo + (hi - lo) * torch.rand(()))
        return x.contiguous(), y.contiguous()


def load_segmentation_data(data, *, layout: str = "packed", pipeline=None, val_fraction: float = 0.2, seed: int = 0,
                           cache: Optional[str] = None, train_transform=None):
    """Training and validation sets (input, mask) of a synthetic dataset (``rawcv synth``).

    The dataset's ``val`` split is used for validation, or ``val_fraction`` of ``train`` when it
    has none. Returns ``(train, val or None, classes)``; ``classes`` include ``background`` (id 0).
    """
    from ..data import is_synth_dataset
    from .inputs import synth_train_val

    if not Path(data).is_dir():
        raise RawcvError(f"{data}: no such data folder")
    if not is_synth_dataset(data):
        raise RawcvError(f"{data}: segmentation needs a synthetic dataset with masks (a folder with manifest.json, "
                         "made by 'rawcv synth --task segment')")

    return synth_train_val(data, target="mask", layout=layout, pipeline=pipeline, cache=cache,
                           train_transform=train_transform, val_fraction=val_fraction, seed=seed)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _check_task(ckpt: dict) -> None:
    require_task(ckpt, TASK, "a segmentation model")
    require_classes(ckpt)


def train_segmenter(data, out, *, model: Optional[str] = None, model_kwargs: Optional[dict] = None,
                    layout: Optional[str] = None, pipeline=None, epochs: int = 20, batch_size: int = 8,
                    lr: Optional[float] = None, optimizer: str = "adam", schedule: str = "cosine",
                    weight_decay: float = 0.0, momentum: float = 0.9, device="auto", seed: int = 0, workers: int = 0,
                    patience: Optional[int] = None, ema: Optional[float] = None, compile: bool = False, init=None,
                    resume: bool = False,
                    overwrite: bool = False, val_fraction: float = 0.2, cache: Optional[str] = "memory",
                    crop: Optional[int] = None, augment: bool = False, dice_weight: float = 1.0,
                    max_batches: Optional[int] = None, progress: Optional[bool] = None, log=None):
    """Train a U-Net segmenter on a ``rawcv synth`` dataset; checkpoints and logs go to ``out``.

    Parameters
    ----------
    data : path
        A synthetic dataset folder with masks (``rawcv synth --task segment``).
    model : str, optional
        A ``segment`` model (default ``unet_small``; with ``init``: the checkpoint's).
    lr : float, optional
        Default 3e-4 with Adam (:data:`DEFAULT_ADAM_LR`), 0.01 with SGD.
    layout : {"packed", "rgb"}, optional
        Default ``packed``; ``rgb`` uses ``pipeline`` (default ``linear``; ``default`` = display sRGB).
    crop : int, optional
        Train on random ``crop x crop`` crops (even offsets) of the training images (faster on a
        CPU); validation always sees whole images.
    augment : bool
        Random flips / transposes (Bayer-aware for packed) and exposure (packed) of the training pairs.
    dice_weight : float
        Weight of the soft Dice term added to the cross-entropy (0: cross-entropy alone).
    ema : float, optional
        Decay of a moving average of the weights that validation and the checkpoints use
        (:class:`~rawcv.train.engine.TrainConfig`), e.g. 0.999.
    init : path, optional
        Start from a checkpoint's weights (a head for another class count is re-initialised).

    Returns
    -------
    FitResult
    """
    from ..data import pipeline_spec
    from ..models import create_model
    from .inputs import run_input

    out = Path(out)
    say = log or (lambda line: print(line, flush=True))
    base_ckpt = starting_checkpoint(out, resume=resume, init=init, overwrite=overwrite, check=_check_task)
    model, model_kwargs = checkpoint_architecture(base_ckpt, model, model_kwargs, resume=resume, log=say)
    layout, pipeline = run_input(base_ckpt, layout, pipeline, resume=resume)
    model = model or DEFAULT_MODEL
    in_chans = 4 if layout == "packed" else 3
    require_model_task(model, TASK, "segmentation models", in_chans=in_chans, kwargs=model_kwargs)

    if lr is None and optimizer == "adam":
        lr = DEFAULT_ADAM_LR
    config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                         momentum=momentum, patience=patience, ema=ema, device=device, seed=seed, compile=compile,
                         progress=progress, max_batches=max_batches)
    dev = resolve_device(device)
    transform = PairedAugment(layout, crop=crop) if augment else (
        PairedAugment(layout, crop=crop, flip=False, transpose=False, exposure=None) if crop else None)
    train_ds, val_ds, classes = load_segmentation_data(data, layout=layout, pipeline=pipeline,
                                                       val_fraction=val_fraction, seed=seed, cache=cache,
                                                       train_transform=transform)
    require_resumed_classes(base_ckpt, classes, data, resume=resume)
    seed_everything(seed)
    net = create_model(model, in_chans=in_chans, num_classes=len(classes), **(model_kwargs or {}))
    if init and not resume:
        load_state_dict(net, base_ckpt, skip_prefixes=("head.",))
        say(f"initialised from {base_ckpt['path']}")
    ckpt_config = {"layout": layout, "classes": classes,
                   "pipeline": pipeline_spec(pipeline) if layout == "rgb" else None,
                   "normalisation": input_normalisation(layout, pipeline), "crop": crop,
                   "output": "class logits at full sensor resolution (H x W)"}
    train_loader, val_loader = make_loaders(train_ds, val_ds, batch_size=batch_size, workers=workers, device=dev,
                                            seed=seed)
    task = SegmentationTask(len(classes), classes, dice_weight=dice_weight)
    trainer = Trainer(net, task, train_loader, val_loader, config=config, out_dir=out, checkpoint_config=ckpt_config,
                      log=say)
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    say(f"{model} ({n_params:,} trainable parameters) on {dev.type}: {len(train_ds)} training / "
        f"{len(val_ds) if val_ds is not None else 0} validation images, {len(classes)} classes, layout {layout}"
        + (f", crops {crop}" if crop else ""))
    out.mkdir(parents=True, exist_ok=True)
    write_run_info(out, data=data, source="synth", model=model, model_kwargs=model_kwargs, config=config,
                    ckpt_config=ckpt_config, init=init, freeze=None, batch_size=batch_size, workers=workers,
                    val_fraction=val_fraction, augment=augment, resume=resume, dice_weight=dice_weight)
    return fit_and_report(trainer, resume=resume, metric="miou", label="mIoU")


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------

def load_segmenter(weights, device="auto"):
    """``(model, ckpt, device)`` of a segmentation checkpoint (file or run folder), in eval mode."""
    return load_trained(weights, device, check=_check_task)


def colorize(mask: np.ndarray) -> np.ndarray:
    """Class ids ``H x W`` -> ``H x W x 3`` uint8 palette colours."""
    return PALETTE[np.asarray(mask, dtype=np.int64) % len(PALETTE)]


def overlay(display: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the palette colour of every non-background pixel into the display image (uint8)."""
    img = np.asarray(display)
    if img.dtype != np.uint8:
        img = np.clip(np.asarray(img, np.float32) * (255.0 if img.dtype.kind == "f" else 255.0 / 65535.0), 0, 255)
        img = img.astype(np.uint8)
    h, w = mask.shape
    img = img[:h, :w].astype(np.float32)
    colours = colorize(mask).astype(np.float32)
    fg = (mask > 0)[..., None]
    out = np.where(fg, (1 - alpha) * img + alpha * colours, img)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def predict_segmentation(weights, files, *, device="auto", display_pipeline="default") -> Iterator:
    """Segment RAW files (folders are searched recursively), one at a time.

    Yields
    ------
    (path, prediction or RawcvError)
        ``prediction = {"path", "mask" (H x W uint8 class ids), "display" (H x W x 3 uint8 from
        ``display_pipeline``), "classes", "counts" (pixels per class)}``.
    """
    from ..data import raw_to_tensor, resolve_pipeline
    from ..io import read
    from .inputs import collect_files

    model, ckpt, dev = load_segmenter(weights, device)
    cfg = ckpt["config"]
    classes = list(cfg["classes"])
    layout = cfg.get("layout", "packed")
    pipe = resolve_pipeline(cfg.get("pipeline")) if layout == "rgb" else None
    display = resolve_pipeline(display_pipeline)
    for path in collect_files(files):
        try:
            raw = read(path)
            x = raw_to_tensor(raw, layout, pipe)[None].to(dev)
            with inference(dev):
                logits = model(x)
            mask = logits.float().argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
            shown = np.asarray(display(raw))
        except RawcvError as exc:
            yield str(path), exc
            continue
        except (RuntimeError, ValueError) as exc:
            yield str(path), RawcvError(f"{path}: cannot segment ({str(exc).splitlines()[0]})")
            continue
        counts = np.bincount(mask.ravel(), minlength=len(classes))
        yield str(path), {"path": str(path), "mask": mask, "display": shown, "classes": classes,
                          "counts": {c: int(n) for c, n in zip(classes, counts)}}


def write_segmentation(pred: dict, out_dir, *, overwrite: bool = False) -> tuple:
    """Write ``STEM_mask.png`` (class ids, uint8) and ``STEM_overlay.png`` into ``out_dir``
    (atomically; existing files are kept unless ``overwrite``). Returns both paths."""
    from ..io.writers import write_image

    out_dir = Path(out_dir)
    stem = Path(pred["path"]).stem
    mask_path, overlay_path = out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png"
    if not overwrite:
        for p in (mask_path, overlay_path):
            if p.exists():
                raise OutputExistsError(f"{p}: exists (use --overwrite to replace it)")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_image(mask_path, pred["mask"].astype(np.uint8), overwrite=overwrite)
    write_image(overlay_path, overlay(pred["display"], pred["mask"]), overwrite=overwrite)
    return mask_path, overlay_path


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def evaluate_segmenter(weights, data, *, split: str = "test", batch_size: int = 8, workers: int = 0, device="auto",
                       out=None, progress: Optional[bool] = None) -> dict:
    """Per-class IoU / Dice, mIoU and pixel accuracy of a segmenter on a synthetic dataset split.

    The confusion matrix is accumulated over the whole split. Writes ``eval_segment_<split>.json``
    into ``out`` (default: the checkpoint's folder).

    Returns
    -------
    dict with ``miou``, ``mdice``, ``miou_fg``, ``mdice_fg``, ``pixel_accuracy``,
    ``per_class_iou`` / ``per_class_dice`` (class -> value or None), ``confusion``, ``loss``,
    ``classes``, ``split``, ``n``, ``json``.
    """
    from ..data import is_synth_dataset
    from .inputs import run_input, synth_split

    model, ckpt, dev = load_segmenter(weights, device)
    cfg = ckpt["config"]
    classes = list(cfg["classes"])
    layout, pipeline = run_input(ckpt, None, None, resume=False)
    if not Path(data).is_dir():
        raise RawcvError(f"{data}: no such data folder")
    if not is_synth_dataset(data):
        raise RawcvError(f"{data}: evaluation needs a synthetic dataset with masks (manifest.json)")
    ds = synth_split(data, split, layout=layout, target="mask", pipeline=pipeline)
    if list(ds.classes) != classes:
        raise RawcvError(f"{data}: classes {ds.classes} differ from the model's {classes}")
    loader = make_loader(ds, batch_size=batch_size, shuffle=False, workers=workers, device=dev)
    task = SegmentationTask(len(classes), classes, dice_weight=float(cfg.get("dice_weight", 1.0)))
    cm = torch.zeros(len(classes), len(classes), dtype=torch.int64)
    total_loss, n = 0.0, 0
    for logits, y in predict_batches(model, loader, dev, progress=progress):
        total_loss += float(task.loss(logits, y)) * len(y)
        n += len(y)
        cm += confusion_counts(logits.float().argmax(dim=1), y, len(classes))
    s = segmentation_scores(cm.numpy(), classes)
    result = {"weights": ckpt["path"], "data": str(data), "split": split, "n": n, "classes": classes,
              "miou": s["miou"], "mdice": s["mdice"], "miou_fg": s["miou_fg"], "mdice_fg": s["mdice_fg"],
              "pixel_accuracy": s["pixel_accuracy"], "loss": total_loss / max(n, 1),
              "per_class_iou": dict(zip(classes, s["iou"])), "per_class_dice": dict(zip(classes, s["dice"])),
              "confusion": cm.tolist(), "layout": layout}
    out_dir = Path(out) if out is not None else Path(ckpt["path"]).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    from ..io.atomic import write_bytes_atomic

    path = out_dir / f"eval_segment_{split}.json"
    result["json"] = str(path)
    write_bytes_atomic(path, (json.dumps(result, indent=1) + "\n").encode(), overwrite=True)
    return result


def format_segmentation(result: dict) -> str:
    """Per-class IoU / Dice of :func:`evaluate_segmenter` as a text table."""
    width = max(len(c) for c in result["classes"] + ["class"])
    lines = [f"{'class':<{width}}  {'IoU':>7}  {'Dice':>7}"]
    for c in result["classes"]:
        iou, dice = result["per_class_iou"][c], result["per_class_dice"][c]
        fmt = lambda v: "    n/a" if v is None else f"{v:7.4f}"  # noqa: E731
        lines.append(f"{c:<{width}}  {fmt(iou)}  {fmt(dice)}")
    return "\n".join(lines)


__all__ = ["SegmentationTask", "PairedAugment", "train_segmenter", "predict_segmentation", "write_segmentation",
           "evaluate_segmenter", "load_segmenter", "load_segmentation_data", "confusion_counts",
           "segmentation_scores", "soft_dice_loss", "overlay", "colorize", "format_segmentation", "PALETTE", "TASK"]
