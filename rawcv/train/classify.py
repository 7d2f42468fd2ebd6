"""Image classification on raw data: the task, training from a class folder or a synthetic
dataset, prediction and evaluation (what ``rawcv train|predict|eval classify`` run).

>>> from rawcv.train.classify import train_classifier, predict_files, evaluate_classifier
>>> result = train_classifier("shapes/", out="runs/shapes", model="resnet18",       # doctest: +SKIP
...                           model_kwargs={"width": 16}, epochs=10)
>>> for path, pred in predict_files("runs/shapes/best.pt", ["img.dng"]):            # doctest: +SKIP
...     print(path, pred["label"], pred["top_k"])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from ..errors import RawcvError
from .checkpoint import CheckpointError, load_state_dict
from .runs import write_run_info
from .inputs import (CLI_DEFAULT_INPUT_TRANSFORM, INPUT_TRANSFORMS, InputTransform, NoiseLevels, RGBFlip,
                     checkpoint_input, checkpoint_input_transform, collect_files, default_augmentation,
                     input_normalisation, run_input, synth_split, synth_train_val, training_transform,
                     with_input_transform)
from .engine import (Task, TrainConfig, Trainer, TrainingError, checkpoint_architecture, fit_and_report,
                    inference, load_trained, make_loader, make_loaders, predict_batches, require_classes,
                    require_model_task, require_resumed_classes, require_task, resolve_device, seed_everything,
                    starting_checkpoint)

TASK = "classify"
CONFUSION_PNG = "confusion_matrix.png"
#: The network ``train_classifier`` builds when none is named, and the arguments it presets for
#: it (over which ``model_kwargs`` win): small enough (176 k parameters) to train in about a
#: minute on a 2-core CPU.
DEFAULT_MODEL = "resnet18"
DEFAULT_MODEL_KWARGS = {"width": 8}
#: Adam learning rate when none is given; SGD takes the engine's.
DEFAULT_ADAM_LR = 2e-3


class ClassificationTask(Task):
    """Cross-entropy on ``N x num_classes`` logits; the metric is the accuracy, and it picks the
    best epoch: on a small validation set the loss of an overconfident network keeps rising while
    its accuracy still does, so the lowest loss would keep an untrained first epoch."""

    name = TASK
    monitor = ("accuracy", "max")

    def __init__(self, num_classes: Optional[int] = None, label_smoothing: float = 0.0):
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)

    def loss(self, outputs, targets):
        return F.cross_entropy(outputs.float(), targets, label_smoothing=self.label_smoothing)

    def init_metrics(self) -> dict:
        return {"correct": 0, "total": 0}

    def update_metrics(self, state, outputs, targets) -> None:
        state["correct"] += int((outputs.argmax(dim=1) == targets).sum())
        state["total"] += int(targets.numel())

    def compute_metrics(self, state) -> dict:
        return {"accuracy": state["correct"] / max(state["total"], 1)}


def load_classification_data(data, *, layout: str = "packed", pipeline=None, val_fraction: float = 0.2,
                             seed: int = 0, cache: Optional[str] = None, crop=None, train_transform=None,
                             val_transform=None):
    """Training and validation datasets from a class folder or a synthetic dataset.

    A synthetic dataset (``manifest.json``) uses its ``train`` and ``val`` splits (``val`` split
    off ``train`` by ``val_fraction`` if it has none); a class folder is split by
    ``val_fraction`` (stratified, deterministic in ``seed``). ``train_transform`` applies to the
    training images only, ``val_transform`` to the validation images only.

    Returns
    -------
    (train, val or None, classes, source) with source ``"synth"`` or ``"folder"``.
    """
    from ..data import RawFolder, is_synth_dataset, split_indices

    if not Path(data).is_dir():
        raise RawcvError(f"{data}: no such data folder")
    if is_synth_dataset(data):
        if crop is not None:
            raise RawcvError("--crop applies to class folders only (a synthetic dataset has one image size)")

        return synth_train_val(data, target="label", layout=layout, pipeline=pipeline, cache=cache,
                               train_transform=train_transform, val_transform=val_transform,
                               val_fraction=val_fraction, seed=seed) + ("synth",)

    def folder(transform=None):
        return RawFolder(data, layout=layout, cache=cache, pipeline=pipeline, crop=crop, transform=transform)

    full = folder(train_transform)
    if val_fraction > 0 and len(full) >= 2:
        tr_idx, va_idx = split_indices(len(full), val_fraction, seed, labels=full.targets)
        return Subset(full, tr_idx), Subset(folder(val_transform), va_idx), list(full.classes), "folder"
    return full, None, list(full.classes), "folder"


class _Remapped(Dataset):
    """A dataset whose integer targets are mapped through ``mapping`` (dataset class -> model class)."""

    def __init__(self, dataset, mapping: Sequence[int]):
        self.dataset = dataset
        self.mapping = list(mapping)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x, y = self.dataset[index]
        return x, self.mapping[int(y)]


def _class_mapping(data_classes, model_classes, source) -> list:
    unknown = [c for c in data_classes if c not in model_classes]
    if unknown:
        raise RawcvError(f"{source}: class {unknown[0]!r} is not one the model knows "
                         f"({', '.join(model_classes)})")
    return [list(model_classes).index(c) for c in data_classes]


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _check_task(ckpt: dict) -> None:
    require_task(ckpt, TASK, "a classifier")
    require_classes(ckpt)
    try:
        checkpoint_input(ckpt["config"])
    except RawcvError as exc:
        raise CheckpointError(f"{ckpt['path']}: {exc}") from None


def train_classifier(data, out, *, model: Optional[str] = None, model_kwargs: Optional[dict] = None,
                     layout: Optional[str] = None, pipeline=None, epochs: int = 10, batch_size: int = 32,
                     lr: Optional[float] = None, optimizer: str = "adam", schedule: str = "cosine",
                     weight_decay: float = 0.0, momentum: float = 0.9, device="auto", seed: int = 0,
                     workers: int = 0, patience: Optional[int] = None, ema: Optional[float] = None,
                     compile: bool = False, init=None, freeze: Optional[str] = None, resume: bool = False,
                     overwrite: bool = False,
                     val_fraction: float = 0.2, cache: Optional[str] = None, crop=None,
                     label_smoothing: float = 0.0, augment: bool = False, augment_noise=None,
                     input_transform: Optional[str] = None, input_size=None,
                     max_batches: Optional[int] = None, progress: Optional[bool] = None, log=None):
    """Train a classifier; checkpoints, logs and curves go to the run folder ``out``.

    Parameters
    ----------
    data : path
        A class folder (one sub-folder of RAW files per class) or a synthetic dataset folder.
    model : str, optional
        A ``classify`` model name (default :data:`DEFAULT_MODEL`; with ``init``, the checkpoint's).
    model_kwargs : dict, optional
        Architecture keywords such as ``{"width": 16}``; for :data:`DEFAULT_MODEL` trained from
        scratch they override :data:`DEFAULT_MODEL_KWARGS`.
    layout : {"packed", "rgb"}, optional
        Default ``packed`` (with ``init``: the checkpoint's layout).
    pipeline : str, optional
        ISP pipeline of the ``rgb`` layout (default ``linear``; ``default`` = display sRGB).
    init : path, optional
        Start from this checkpoint's weights; a head of another class count is re-initialised.
    freeze : {"backbone"}, optional
        Train only the head (with ``init``: transfer learning).
    lr : float, optional
        Default :data:`DEFAULT_ADAM_LR` with Adam, 0.01 with SGD.
    ema : float, optional
        Decay of a moving average of the weights that validation and the checkpoints use
        (:class:`~rawcv.train.engine.TrainConfig`), e.g. 0.999.
    resume : bool
        Continue ``out/last.pt`` (model, optimizer, scheduler, RNG, history) up to ``epochs``.
    overwrite : bool
        Start afresh in a run folder that already holds a ``last.pt``.
    augment : bool
        Augment the training images (:func:`~rawcv.train.inputs.training_transform`: Bayer-aware
        flips, transposes and exposure, then a random rotation of the resized input).
    augment_noise : str or float, optional
        With ``augment`` and the packed layout: also add sensor noise of the synthetic camera's
        model to every training image (a :func:`rawcv.synth.parse_noise` specification, e.g.
        ``"1e-4:6e-3"``: ``lambda_shot`` drawn log-uniformly per image).
    input_transform : {"none", "mean", "sqrt", "mean_sqrt", "log"}, optional
        Per-image transform of every input (:class:`InputTransform`), after augmentation; it is
        stored in the checkpoint config and applied identically by ``predict`` and ``eval``.
        Default: the checkpoint's with ``init`` / ``resume``, else ``"none"`` (the command line
        defaults to :data:`CLI_DEFAULT_INPUT_TRANSFORM`).
    input_size : int or "full", optional
        Side every input is resized to (:class:`InputTransform`), stored in the checkpoint config
        and applied by ``predict`` and ``eval``; ``"full"`` keeps the images' size. Default: the
        checkpoint's with ``init`` / ``resume``, else ``"full"`` (the command line resizes, see
        ``rawcv train classify --help``).

    Returns
    -------
    FitResult
    """
    from ..data import pipeline_spec
    from ..models import create_model, freeze_backbone

    out = Path(out)
    say = log or (lambda line: print(line, flush=True))
    if freeze not in (None, "backbone"):
        raise TrainingError(f"unknown --freeze {freeze!r}: only 'backbone' can be frozen")
    if augment_noise is not None and not augment:
        raise TrainingError("--augment-noise is part of the training augmentation: add --augment")
    if freeze and not (init or resume):
        raise TrainingError("--freeze backbone needs --init CHECKPOINT (a pretrained backbone to keep)")
    base_ckpt = starting_checkpoint(out, resume=resume, init=init, overwrite=overwrite, check=_check_task)
    model, model_kwargs = checkpoint_architecture(base_ckpt, model, model_kwargs, resume=resume, log=say)
    layout, pipeline = run_input(base_ckpt, layout, pipeline, resume=resume)
    if base_ckpt is not None:
        cfg = base_ckpt["config"]
        if resume or crop is None:
            crop = cfg.get("crop", crop)
        if resume or input_transform is None:
            input_transform = checkpoint_input_transform(cfg)
        if resume or input_size is None:
            input_size = cfg.get("input_size")
    input_size = None if input_size == "full" else input_size
    net_input = InputTransform(input_transform or "none", input_size)
    input_transform = net_input.name
    model = model or DEFAULT_MODEL
    if base_ckpt is None and model == DEFAULT_MODEL:
        model_kwargs = {**DEFAULT_MODEL_KWARGS, **(model_kwargs or {})}
    in_chans = 4 if layout == "packed" else 3
    require_model_task(model, TASK, "classifiers", in_chans=in_chans, kwargs=model_kwargs)

    if lr is None and optimizer == "adam":
        lr = DEFAULT_ADAM_LR
    config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                         momentum=momentum, patience=patience, ema=ema, device=device, seed=seed, compile=compile,
                         progress=progress, max_batches=max_batches)
    dev = resolve_device(device)
    train_ds, val_ds, classes, source = load_classification_data(
        data, layout=layout, pipeline=pipeline, val_fraction=val_fraction, seed=seed, cache=cache, crop=crop,
        train_transform=training_transform(layout, net_input, augment=augment, noise=augment_noise),
        val_transform=with_input_transform(None, net_input))
    require_resumed_classes(base_ckpt, classes, data, resume=resume)

    seed_everything(seed)
    net = create_model(model, in_chans=in_chans, num_classes=len(classes), **(model_kwargs or {}))
    if init and not resume:
        init_classes = base_ckpt["config"].get("classes")
        load_state_dict(net, base_ckpt, skip_prefixes=("head.",))
        if base_ckpt["config"].get("num_classes") != len(classes) or init_classes != classes:
            say(f"initialised from {base_ckpt['path']} (backbone; new head for {len(classes)} classes)")
        else:
            say(f"initialised from {base_ckpt['path']}")
    frozen = []
    if freeze == "backbone":
        freeze_backbone(net)
        frozen = [net.backbone]

    ckpt_config = {"layout": layout, "classes": classes,
                   "pipeline": pipeline_spec(pipeline) if layout == "rgb" else None,
                   "normalisation": input_normalisation(layout, pipeline), "crop": crop,
                   "input_transform": input_transform, "input_size": input_size}
    train_loader, val_loader = make_loaders(train_ds, val_ds, batch_size=batch_size, workers=workers, device=dev,
                                            seed=seed)
    trainer = Trainer(net, ClassificationTask(len(classes), label_smoothing), train_loader, val_loader, config=config,
                      out_dir=out, checkpoint_config=ckpt_config, frozen_modules=frozen, log=say)
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    say(f"{model} ({n_params:,} trainable parameters) on {dev.type}: {len(train_ds)} training / "
        f"{len(val_ds) if val_ds is not None else 0} validation images, {len(classes)} classes, layout {layout}, "
        f"input transform {input_transform}"
        + (f", inputs resized to {input_size} x {input_size}" if input_size else ""))
    out.mkdir(parents=True, exist_ok=True)
    write_run_info(out, data=data, source=source, model=model, model_kwargs=model_kwargs, config=config,
                    ckpt_config=ckpt_config, init=init, freeze=freeze, batch_size=batch_size, workers=workers,
                    val_fraction=val_fraction, augment=augment, augment_noise=augment_noise,
                    input_transform=input_transform, input_size=input_size, resume=resume)
    return fit_and_report(trainer, resume=resume, metric="accuracy", label="accuracy")


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------

def load_classifier(weights, device="auto"):
    """``(model, ckpt, device)`` of a classification checkpoint (file or run folder), in eval mode."""
    return load_trained(weights, device, check=_check_task)


def _input_of(raw, cfg: dict):
    from ..data import center_crop, raw_to_tensor

    raw = center_crop(raw, cfg.get("crop"))
    x = raw_to_tensor(raw, cfg.get("layout", "packed"), cfg.get("pipeline") if cfg.get("layout") == "rgb" else None)
    return checkpoint_input(cfg)(x)


def predict_files(weights, files, *, top_k: int = 3, device="auto") -> Iterator:
    """Classify RAW files (folders are searched recursively), one at a time.

    Yields
    ------
    (path, prediction or RawcvError)
        ``prediction = {"path", "label", "index", "probability", "top_k": [(class, p), ...]}``;
        a file that cannot be read yields its error instead (the others go on).
    """
    from ..io import read

    model, ckpt, dev = load_classifier(weights, device)
    cfg = ckpt["config"]
    classes = cfg["classes"]
    k = max(1, min(int(top_k), len(classes)))
    pipeline = None
    if cfg.get("layout") == "rgb":
        from ..data import resolve_pipeline

        pipeline = resolve_pipeline(cfg.get("pipeline"))
    for path in collect_files(files):
        try:
            raw = read(path)
            local = dict(cfg)
            if pipeline is not None:
                local["pipeline"] = pipeline
            x = _input_of(raw, local)[None].to(dev)
            with inference(dev):
                logits = model(x)
            probs = torch.softmax(logits.float(), dim=1)[0].cpu()
        except RawcvError as exc:
            yield str(path), exc
            continue
        except (RuntimeError, ValueError) as exc:   # e.g. an image too small for the network
            yield str(path), RawcvError(f"{path}: cannot classify ({str(exc).splitlines()[0]})")
            continue
        p, idx = probs.topk(k)
        top = [(classes[int(i)], float(v)) for v, i in zip(p, idx)]
        yield str(path), {"path": str(path), "label": top[0][0], "index": int(idx[0]), "probability": top[0][1],
                          "top_k": top}


#: File written into a folder given to ``rawcv predict classify -o``.
PREDICTIONS_CSV = "predictions.csv"


def predictions_path(out) -> Path:
    """Where :func:`write_predictions` writes for ``out``: ``out`` itself when it ends in ``.json``
    or ``.csv``, else ``out/predictions.csv`` (a folder)."""
    out = Path(out)
    return out if out.suffix.lower() in (".json", ".csv") else out / PREDICTIONS_CSV


def prediction_record(pred: dict) -> dict:
    """The JSON-able form of a :func:`predict_files` prediction (one line of ``--json`` output)."""
    return {"path": pred["path"], "label": pred["label"], "probability": pred["probability"],
            "top_k": [{"class": c, "probability": p} for c, p in pred["top_k"]]}


def write_predictions(predictions: Sequence[dict], out, *, overwrite: bool = False) -> Path:
    """Write :func:`predict_files` predictions to ``predictions_path(out)`` atomically: a JSON list
    of :func:`prediction_record` objects, or CSV rows ``path, label, probability, top_k`` (the
    top-k as ``class:probability`` pairs joined by ``;``).

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    """
    import csv
    import io

    from ..io.atomic import write_bytes_atomic

    path = predictions_path(out)
    if path.suffix.lower() == ".json":
        text = json.dumps([prediction_record(p) for p in predictions], indent=1) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["path", "label", "probability", "top_k"])
        for p in predictions:
            writer.writerow([p["path"], p["label"], f"{p['probability']:.6f}",
                             ";".join(f"{c}:{v:.6f}" for c, v in p["top_k"])])
        text = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, text.encode(), overwrite=overwrite)
    return path


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def confusion_matrix(targets, predictions, num_classes: int) -> np.ndarray:
    """``num_classes x num_classes`` counts, rows = true class, columns = predicted class."""
    t = np.asarray(targets, dtype=np.int64)
    p = np.asarray(predictions, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def format_confusion(cm: np.ndarray, classes: Sequence[str]) -> str:
    """The matrix as a text table (rows true, columns predicted)."""
    width = max(max(len(c) for c in classes), len(str(int(cm.max(initial=0)))), 4)
    lines = [" " * width + "  " + " ".join(f"{c[:width]:>{width}}" for c in classes)]
    for c, row in zip(classes, cm):
        lines.append(f"{c:>{width}}  " + " ".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)


def evaluate_classifier(weights, data, *, split: str = "test", batch_size: int = 64, workers: int = 0,
                        device="auto", out=None, progress: Optional[bool] = None) -> dict:
    """Accuracy and confusion matrix of a classifier on a dataset; saves ``confusion_matrix.png``.

    Parameters
    ----------
    data : path
        A synthetic dataset (its ``split``; ``all`` for every item) or a class folder (all files;
        its class names must be among the model's).
    out : path, optional
        Folder of the PNG (and ``eval_<split>.json``); default the checkpoint's folder.

    Returns
    -------
    dict with ``accuracy``, ``loss``, ``correct``, ``total``, ``classes``, ``confusion`` (list of
    lists), ``per_class_accuracy``, ``split``, ``png``.
    """
    from ..data import RawFolder, is_synth_dataset
    from .plots import plot_confusion_matrix

    model, ckpt, dev = load_classifier(weights, device)
    cfg = ckpt["config"]
    classes = list(cfg["classes"])
    layout, pipeline = run_input(ckpt, None, None, resume=False)
    if not Path(data).is_dir():
        raise RawcvError(f"{data}: no such data folder")
    transform = with_input_transform(None, checkpoint_input(cfg))
    if is_synth_dataset(data):
        ds = synth_split(data, split, layout=layout, target="label", pipeline=pipeline, transform=transform)
        where = f"split {split!r} of {data}"
        split_name = split
    else:
        ds = RawFolder(data, layout=layout, pipeline=pipeline, crop=cfg.get("crop"), transform=transform)
        where = str(data)
        split_name = "all"
    mapping = _class_mapping(ds.classes, classes, data)
    dataset = ds if mapping == list(range(len(ds.classes))) else _Remapped(ds, mapping)
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, workers=workers, device=dev)
    task = ClassificationTask(len(classes))
    targets, preds = [], []
    total_loss, n = 0.0, 0
    for logits, y in predict_batches(model, loader, dev, progress=progress):
        total_loss += float(task.loss(logits, y)) * len(y)
        n += len(y)
        targets.append(y.cpu())
        preds.append(logits.argmax(dim=1).cpu())
    t = torch.cat(targets).numpy()
    p = torch.cat(preds).numpy()
    cm = confusion_matrix(t, p, len(classes))
    correct = int(np.trace(cm))
    per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None) for i, c in enumerate(classes)}
    out_dir = Path(out) if out is not None else Path(ckpt["path"]).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_confusion_matrix(cm, classes, out_dir / CONFUSION_PNG,
                                title=f"{cfg.get('name')} on {Path(str(data)).name} ({split_name}): "
                                      f"accuracy {correct / max(n, 1):.3f}")
    result = {"weights": ckpt["path"], "data": str(data), "split": split_name,
              "where": where, "input_transform": checkpoint_input_transform(cfg), "input_size": cfg.get("input_size"),
              "accuracy": correct / max(n, 1), "loss": total_loss / max(n, 1), "correct": correct,
              "total": int(n), "classes": classes, "confusion": cm.tolist(), "per_class_accuracy": per_class,
              "png": str(png)}
    from ..io.atomic import write_bytes_atomic

    write_bytes_atomic(out_dir / f"eval_{result['split']}.json", (json.dumps(result, indent=1) + "\n").encode(),
                       overwrite=True)
    return result


__all__ = ["ClassificationTask", "RGBFlip", "InputTransform", "INPUT_TRANSFORMS", "CLI_DEFAULT_INPUT_TRANSFORM",
           "checkpoint_input_transform", "checkpoint_input", "default_augmentation", "training_transform",
           "NoiseLevels",
           "DEFAULT_MODEL", "DEFAULT_MODEL_KWARGS", "DEFAULT_ADAM_LR", "train_classifier", "predict_files",
           "evaluate_classifier", "load_classifier", "load_classification_data", "collect_files", "confusion_matrix",
           "write_predictions", "predictions_path", "prediction_record", "PREDICTIONS_CSV",
           "format_confusion", "TASK", "CONFUSION_PNG"]
