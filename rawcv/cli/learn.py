"""The learning subcommands: ``rawcv train|predict|eval TASK`` and ``rawcv models``.

Each of ``train``, ``predict`` and ``eval`` takes the task as its first word (``classify``,
``segment``, ``restore``: each adds itself by appending an ``add_*`` function to
:data:`TRAIN_TASKS`, :data:`PREDICT_TASKS` or :data:`EVAL_TASKS`). Every ``predict`` writes
where ``-o/--out`` says. Nothing here imports torch at import time: the ``run_*`` functions
import the training room when they run.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..options import LAYOUTS, OPTIMIZERS, SCHEDULES, TASKS
from ._common import fail_line


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _number(text) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_float(text):
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _fraction(text):
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _decay(text):
    value = _fraction(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be in (0, 1), e.g. 0.999, got 0")
    return value


def _input_size(text):
    if text.strip().lower() == "full":
        return "full"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def model_arg_pair(text):
    """``KEY=VALUE`` with VALUE read as JSON where it parses (``width=16``, ``small_input=false``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


# What ``rawcv train classify`` uses without options: sized for a run of minutes on a CPU. They
# live here, not in rawcv.train, because --help shows them without importing torch.
CLASSIFY_EPOCHS = 200
CLASSIFY_BATCH = 16
CLASSIFY_INPUT_SIZE = 32


def _add_task_group(sub, name, help_text, description, tasks):
    p = sub.add_parser(name, help=help_text, description=description)
    tsub = p.add_subparsers(dest="task", metavar="TASK")
    for add in tasks:
        add(tsub)

    def _usage(args, parser=p):
        parser.print_help(sys.stderr)
        return 2

    p.set_defaults(func=_usage)
    return p


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------

def register_models(sub):
    p = sub.add_parser("models", help="list the networks of each task and their sizes",
                       description="List the registered networks of each task with their parameter counts, "
                                   "counted for the input channels and classes that rawcv train gives them (said "
                                   "per task) and, for a task's default network, its preset arguments.")
    p.add_argument("--task", choices=TASKS, default=None,
                   help="only the networks of this task; None: every task")
    p.set_defaults(func=run_models)


def run_models(args) -> int:
    from ..train.catalogue import training_models, training_slots

    entries = training_models(args.task)
    width = max(len(e.name) for e in entries)
    for i, slot in enumerate(training_slots(args.task)):
        if i:
            print()
        role = "" if slot.role == "model" else f" {slot.role}s"
        print(f"{slot.task}{role} of rawcv train {slot.task}, counted for {slot.in_chans} input channels "
              f"({slot.inputs}) and {slot.num_classes} outputs ({slot.outputs}):")
        for e in entries:
            if (e.task, e.role) != (slot.task, slot.role):
                continue
            preset = ", ".join(f"{k}={json.dumps(v)}" for k, v in e.kwargs.items())
            note = "  default" + (f", preset {preset}" if preset else "") if e.default else ""
            print(f"  {e.name:<{width}}  {e.parameters:>12,}{note}")
    return 0


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------

def add_training_options(p, *, default_epochs: int, default_batch: int, lr_help: str, lr_default=None,
                         data_required: bool = True, data_help: str = None, init_help: str = None):
    """The options every ``rawcv train TASK`` shares (engine settings, run folder, resume ...).

    ``lr_help`` is the help of ``--lr`` (with ``lr_default`` None, it says what None resolves to
    for the task); ``data_help`` and ``init_help`` replace the help of ``--data`` and ``--init``
    where the task reads them differently.
    """
    p.add_argument("--data", required=data_required, default=None, metavar="DIR",
                   help=data_help or "a folder with one sub-folder of RAW files per class, or a synthetic dataset "
                                     "(with manifest.json: its train/val splits are used)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run folder: best.pt (the best validation score), last.pt, run.json, metrics.json/.csv, "
                        "curves.png")
    p.add_argument("--model", default=None, metavar="NAME",
                   help="architecture ('rawcv models' lists them with their sizes); None: the task's default "
                        "(marked there), or with --init/--resume the checkpoint's")
    p.add_argument("--model-arg", action="append", type=model_arg_pair, default=[], metavar="KEY=VALUE",
                   help="architecture keyword, repeatable (e.g. width=16; a wrong one lists the model's)")
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="packed: 4 x H/2 x W/2 Bayer planes; rgb: 3 x H x W from --pipeline; None: packed, or "
                        "with --init/--resume the checkpoint's")
    p.add_argument("--pipeline", default=None, metavar="NAME|FILE",
                   help="ISP pipeline of --layout rgb, e.g. default (display sRGB); None: linear")
    p.add_argument("--epochs", type=_positive_int, default=default_epochs,
                   help="epochs to train (in all, with --resume)")
    p.add_argument("--batch-size", type=_positive_int, default=default_batch, help="images per optimisation step")
    p.add_argument("--lr", type=_positive_float, default=lr_default, help=lr_help)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimiser (sgd: with --momentum)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay of the optimiser")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="learning-rate schedule per epoch")
    p.add_argument("--patience", type=_positive_int, default=None, metavar="EPOCHS",
                   help="stop when the validation score (accuracy for classifiers, else the loss) has not "
                        "improved for this many epochs; None: never stop early")
    p.add_argument("--ema", type=_decay, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.999): "
                        "validation, best.pt and last.pt's weights are the average's; None: no average")
    p.add_argument("--val-fraction", type=_fraction, default=0.2,
                   help="share of a class folder (or of a synthetic dataset without a val split) held out for "
                        "validation")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and split")
    p.add_argument("--workers", type=_non_negative_int, default=0, help="DataLoader worker processes")
    p.add_argument("--cache", choices=("none", "memory", "disk"), default="memory",
                   help="cache decoded mosaics (disk: .npy files under DIR/.rawcv-cache)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help=init_help or "start from a checkpoint's weights; None: from scratch")
    p.add_argument("--freeze", choices=("backbone",), default=None,
                   help="train only the head (transfer learning, with --init); None: train everything")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt up to --epochs")
    p.add_argument("--overwrite", action="store_true", help="start afresh in a RUN_DIR holding a previous run")
    p.add_argument("--max-batches", type=_positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_train_classify(tsub):
    p = tsub.add_parser("classify", help="train an image classifier",
                        description="Train a classifier on RAW files (packed Bayer planes or ISP output).")
    add_training_options(p, default_epochs=CLASSIFY_EPOCHS, default_batch=CLASSIFY_BATCH,
                         lr_help="learning rate; None: 2e-3 with adam, 0.01 with sgd")
    p.add_argument("--crop", type=_positive_int, default=None, metavar="N",
                   help="centre-crop class-folder images to N x N (for mixed sizes); None: whole images")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="share of the target probability spread over the other classes")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random flips and transposes (Bayer-aware for packed, plus exposure) of training images, "
                        "and a random rotation of the resized network input")
    p.add_argument("--augment-noise", metavar="SPEC", default=None,
                   help="with --augment and --layout packed: also add sensor noise of the synthetic camera's model "
                        "to each training image (SPEC as for rawcv synth --noise: high, 0.004, or a lambda_shot "
                        "range such as 1e-4:6e-3); None: no added noise")
    p.add_argument("--input-transform", metavar="NAME", default=None,
                   help="per-image transform of every network input, stored in the checkpoint and applied by "
                        "predict/eval too: mean (divide by the image mean: exposure-invariant), sqrt, mean_sqrt "
                        "(mean then sqrt: also variance-stabilised), log (log(x + 1/256)) or none; None: mean "
                        "from scratch, the checkpoint's with --init/--resume")
    p.add_argument("--input-size", type=_input_size, default=None, metavar="N|full",
                   help="resize every network input to N x N (area average; packed planes or RGB pixels), stored in "
                        "the checkpoint and applied by predict/eval too; full: the images' own size; None: "
                        f"{CLASSIFY_INPUT_SIZE} from scratch, the checkpoint's with --init/--resume")
    p.set_defaults(func=run_train_classify)


def run_train_classify(args) -> int:
    from ..train.classify import CLI_DEFAULT_INPUT_TRANSFORM, train_classifier

    input_transform, input_size = args.input_transform, args.input_size
    if not (args.init or args.resume):
        input_transform = input_transform or CLI_DEFAULT_INPUT_TRANSFORM
        input_size = input_size or CLASSIFY_INPUT_SIZE
    result = train_classifier(
        args.data, args.out, model=args.model, model_kwargs=dict(args.model_arg), layout=args.layout,
        pipeline=args.pipeline, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, schedule=args.schedule, weight_decay=args.weight_decay, momentum=args.momentum,
        device=args.device, seed=args.seed, workers=args.workers, patience=args.patience, ema=args.ema,
        compile=args.compile, init=args.init, freeze=args.freeze, resume=args.resume, overwrite=args.overwrite,
        val_fraction=args.val_fraction, cache=None if args.cache == "none" else args.cache, crop=args.crop,
        label_smoothing=args.label_smoothing, augment=args.augment, augment_noise=args.augment_noise,
        input_transform=input_transform, input_size=input_size,
        max_batches=args.max_batches, progress=False if args.no_progress else None,
    )
    return 0 if result.history else 1


TRAIN_TASKS = [add_train_classify]


def register_train(sub):
    _add_task_group(sub, "train", "train a network on RAW data",
                    "Train a network on RAW files or a synthetic dataset: rawcv train TASK --data DIR --out RUN_DIR.",
                    TRAIN_TASKS)


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------

def add_predict_classify(tsub):
    p = tsub.add_parser("classify", help="classify RAW files",
                        description="Print the label and top-k probabilities of each RAW file, and with -o also "
                                    "write them to a file. A file that cannot be read gives one error line; the "
                                    "others are still classified.")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="RAW files or folders (searched recursively)")
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint (best.pt) or a run folder")
    p.add_argument("-o", "--out", default=None, metavar="FILE|DIR",
                   help="also write the predictions: a .json file (a list of objects), a .csv file, or a folder "
                        "(its predictions.csv); None: print only")
    p.add_argument("--top-k", type=_positive_int, default=3, help="probabilities shown per file")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (one per line)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.set_defaults(func=run_predict_classify)


def run_predict_classify(args) -> int:
    from ..errors import OutputExistsError
    from ..train.classify import prediction_record, predictions_path, predict_files, write_predictions

    if args.out is not None and predictions_path(args.out).exists() and not args.overwrite:
        raise OutputExistsError(f"{predictions_path(args.out)}: exists (use --overwrite to replace it)")
    failures, written = 0, []
    for path, pred in predict_files(args.weights, args.inputs, top_k=args.top_k, device=args.device):
        if isinstance(pred, Exception):
            fail_line("predict", pred)
            failures += 1
            continue
        written.append(pred)
        if args.json:
            print(json.dumps(prediction_record(pred)), flush=True)
        else:
            top = ", ".join(f"{c} {p:.3f}" for c, p in pred["top_k"])
            print(f"{path}: {pred['label']}  ({top})", flush=True)
    if args.out is not None:
        target = write_predictions(written, args.out, overwrite=args.overwrite)
        print(f"wrote {len(written)} predictions to {target}", file=sys.stderr)
    return 1 if failures else 0


PREDICT_TASKS = [add_predict_classify]


def register_predict(sub):
    _add_task_group(sub, "predict", "run a trained network on RAW files",
                    "Run a trained network on RAW files: rawcv predict TASK --weights CKPT FILE...", PREDICT_TASKS)


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------

def _add_eval_arguments(p, *, data_help: str, out_help: str, batch_size: int) -> None:
    """The options every ``rawcv eval`` task over a dataset split takes."""
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint (best.pt) or a run folder")
    p.add_argument("--data", required=True, metavar="DIR", help=data_help)
    p.add_argument("--split", default="test", help="split of a synthetic dataset ('all' for every item)")
    p.add_argument("--out", default=None, metavar="DIR", help=out_help)
    p.add_argument("--batch-size", type=_positive_int, default=batch_size, help="images per batch")
    p.add_argument("--workers", type=_non_negative_int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def add_eval_classify(tsub):
    p = tsub.add_parser("classify", help="accuracy and confusion matrix of a classifier",
                        description="Evaluate a classifier: accuracy and confusion matrix, printed and saved "
                                    "as confusion_matrix.png (in the checkpoint's folder or --out).")
    _add_eval_arguments(p, data_help="a synthetic dataset or a class folder (all its files)",
                        out_help="folder of confusion_matrix.png and eval_SPLIT.json; None: the checkpoint's",
                        batch_size=64)
    p.set_defaults(func=run_eval_classify)


def run_eval_classify(args) -> int:
    from ..train.classify import evaluate_classifier, format_confusion

    res = evaluate_classifier(args.weights, args.data, split=args.split, batch_size=args.batch_size,
                              workers=args.workers, device=args.device, out=args.out)
    if args.json:
        print(json.dumps(res))
        return 0
    import numpy as np

    print(f"accuracy {res['accuracy']:.4f} ({res['correct']}/{res['total']}) on {res['where']}")
    print(f"loss {res['loss']:.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion(np.asarray(res["confusion"]), res["classes"]))
    print(f"saved {res['png']}")
    return 0


EVAL_TASKS = [add_eval_classify]


def register_eval(sub):
    _add_task_group(sub, "eval", "evaluate a trained network on a dataset",
                    "Evaluate a trained network: rawcv eval TASK --weights CKPT --data DIR.", EVAL_TASKS)


# --------------------------------------------------------------------------------------------
# segment and restore (rawcv.train.segment, rawcv.train.restore)
# --------------------------------------------------------------------------------------------

def add_train_segment(tsub):
    p = tsub.add_parser("segment", help="train a U-Net segmenter",
                        description="Train a U-Net on a synthetic dataset with masks (rawcv synth --task segment): "
                                    "cross-entropy + Dice; per-class IoU, mIoU and Dice on validation.")
    add_training_options(p, default_epochs=20, default_batch=8,
                         lr_help="learning rate; None: 3e-4 with adam, 0.01 with sgd")
    p.add_argument("--crop", type=_positive_int, default=None, metavar="N",
                   help="train on random N x N crops (even offsets) of the training images; validation sees "
                        "whole images; None: whole training images")
    p.add_argument("--augment", action="store_true",
                   help="random flips and transposes (Bayer-aware for packed, plus exposure) of image and mask")
    p.add_argument("--dice-weight", type=float, default=1.0, help="weight of the Dice term (0: cross-entropy only)")
    p.set_defaults(func=run_train_segment)


def run_train_segment(args) -> int:
    from ..errors import RawcvError
    from ..train.segment import train_segmenter

    if args.freeze:
        raise RawcvError("--freeze applies to classifiers only")
    result = train_segmenter(
        args.data, args.out, model=args.model, model_kwargs=dict(args.model_arg), layout=args.layout,
        pipeline=args.pipeline, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, schedule=args.schedule, weight_decay=args.weight_decay, momentum=args.momentum,
        device=args.device, seed=args.seed, workers=args.workers, patience=args.patience, ema=args.ema,
        compile=args.compile, init=args.init, resume=args.resume, overwrite=args.overwrite,
        val_fraction=args.val_fraction,
        cache=None if args.cache == "none" else args.cache, crop=args.crop, augment=args.augment,
        dice_weight=args.dice_weight, max_batches=args.max_batches, progress=False if args.no_progress else None,
    )
    return 0 if result.history else 1


def add_train_restore(tsub):
    from ..options import RestoreOptions
    from .dataclass_args import add_dataclass_arguments

    p = tsub.add_parser("restore", help="train a raw restoration GAN (joint denoising + demosaicing)",
                        description="Train a pix2pix-style restorer: noisy packed raw + noise-variance map -> clean "
                                    "white-balanced linear camera RGB. Pairs are made on the fly from procedural "
                                    "scenes and scikit-image photographs through the synthetic camera, unless --data "
                                    "names a 'rawcv synth --task restore' dataset.")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run folder: best.pt (the best validation score), last.pt, run.json, metrics.json/.csv, "
                        "curves.png")
    add_dataclass_arguments(p, RestoreOptions, key_value=model_arg_pair,
                            checks={"positive_int": _positive_int, "non_negative_int": _non_negative_int,
                                    "positive_float": _positive_float, "decay": _decay})
    p.set_defaults(func=run_train_restore)


def run_train_restore(args) -> int:
    from ..options import RestoreOptions
    from ..train.restore import train_restorer
    from .dataclass_args import dataclass_from_args

    result = train_restorer(args.out, dataclass_from_args(RestoreOptions, args))
    return 0 if result.history else 1


def add_predict_segment(tsub):
    p = tsub.add_parser("segment", help="segment RAW files (mask and overlay PNGs)",
                        description="Write STEM_mask.png (class id per pixel) and STEM_overlay.png (classes "
                                    "coloured over the display image) per RAW file into -o/--out.")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="RAW files or folders (searched recursively)")
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint (best.pt) or a run folder")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--display-pipeline", default="default", metavar="NAME|FILE",
                   help="pipeline of the overlay's display image")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--json", action="store_true", help="one JSON object per file (one per line)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.set_defaults(func=run_predict_segment)


def run_predict_segment(args) -> int:
    from ..errors import RawcvError
    from ..train.segment import predict_segmentation, write_segmentation

    failures = 0
    for path, pred in predict_segmentation(args.weights, args.inputs, device=args.device,
                                           display_pipeline=args.display_pipeline):
        if not isinstance(pred, Exception):
            try:
                mask_path, overlay_path = write_segmentation(pred, args.out, overwrite=args.overwrite)
            except RawcvError as exc:
                pred = exc
        if isinstance(pred, Exception):
            fail_line("predict", pred)
            failures += 1
            continue
        present = {c: n for c, n in pred["counts"].items() if n}
        if args.json:
            print(json.dumps({"path": path, "mask": str(mask_path), "overlay": str(overlay_path),
                              "pixels": present}), flush=True)
        else:
            classes = ", ".join(f"{c} {n}" for c, n in present.items())
            print(f"{path}: {mask_path}, {overlay_path}  ({classes})", flush=True)
    return 1 if failures else 0


def add_predict_restore(tsub):
    p = tsub.add_parser("restore", help="restore (denoise + demosaic) RAW files with a trained generator",
                        description="Run the restoration generator (tiled with overlap, any size), then the ISP's "
                                    "display stages (colour matrix, sRGB curve, 8 bits) - or with --linear write "
                                    "linear sRGB float32 (.tiff or .npy).")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="RAW files or folders (searched recursively)")
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint (best.pt) or a run folder")
    p.add_argument("-o", "--out", required=True, metavar="FILE|DIR",
                   help="output file (.png, .tiff, .jpg; .tiff/.npy with --linear), or a folder for several inputs")
    p.add_argument("--linear", action="store_true", help="write linear float32 (linear sRGB) instead of display 8-bit")
    p.add_argument("--pipeline", default=None, metavar="NAME|FILE",
                   help="pipeline whose stages after demosaic finish the image; None: default, or linear with "
                        "--linear")
    p.add_argument("--noise", default="auto",
                   help="noise level: auto (the file's NoiseProfile, else estimated), or e.g. high / 0.012")
    p.add_argument("--tile", type=_positive_int, default=256, help="tile side in pixels")
    p.add_argument("--overlap", type=_non_negative_int, default=32, help="tile overlap in pixels")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the generator over the 8 Bayer-preserving flips/transposes (8x the time)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.set_defaults(func=run_predict_restore)


def run_predict_restore(args) -> int:
    from ..train.restore import predict_restore_files

    failures = 0
    for path, target, info in predict_restore_files(args.weights, args.inputs, args.out, linear=args.linear,
                                                    pipeline=args.pipeline, noise=args.noise, tile=args.tile,
                                                    overlap=args.overlap, self_ensemble=args.self_ensemble,
                                                    overwrite=args.overwrite,
                                                    device=args.device):
        if isinstance(target, Exception):
            fail_line("predict", target)
            failures += 1
            continue
        print(f"{path} -> {target}  (noise {info['noise_source']}: lambda_shot {info['lambda_shot']:.3g}, "
              f"lambda_read {info['lambda_read']:.3g}; {info['seconds']:.2f}s)", flush=True)
    return 1 if failures else 0


def add_eval_segment(tsub):
    p = tsub.add_parser("segment", help="per-class IoU and mIoU of a segmenter",
                        description="Evaluate a segmenter on a synthetic dataset split: per-class IoU and Dice, "
                                    "mIoU (over the whole split), saved as eval_segment_SPLIT.json.")
    _add_eval_arguments(p, data_help="a synthetic dataset with masks",
                        out_help="folder of eval_segment_SPLIT.json; None: the checkpoint's", batch_size=8)
    p.set_defaults(func=run_eval_segment)


def run_eval_segment(args) -> int:
    from ..train.segment import evaluate_segmenter, format_segmentation

    res = evaluate_segmenter(args.weights, args.data, split=args.split, batch_size=args.batch_size,
                             workers=args.workers, device=args.device, out=args.out)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"mIoU {res['miou']:.4f}  (shapes only {res['miou_fg']:.4f}), mean Dice {res['mdice']:.4f}, "
          f"pixel accuracy {res['pixel_accuracy']:.4f} on {res['n']} images of split {res['split']!r} of {res['data']}")
    print(format_segmentation(res))
    print(f"saved {res['json']}")
    return 0


def add_eval_restore(tsub):
    p = tsub.add_parser("restore", help="PSNR/SSIM of restorers against classical baselines",
                        description="PSNR and SSIM (linear and sRGB) of restoration models side by side with "
                                    "classical baselines (ISP median/mean 3x3, non-local means after a "
                                    "variance-stabilising transform) on the same images, with three sharpness "
                                    "scores against the ground truth (detail: share of its finest detail "
                                    "reproduced; HF energy: high-frequency energy relative to it, which noise and "
                                    "invented texture raise too; invented: the part of that energy that is not "
                                    "the truth's detail); writes eval_restore.json and "
                                    "restore_side_by_side.png.")
    p.add_argument("--weights", action="append", default=[], metavar="CKPT",
                   help="a checkpoint or run folder; repeat to compare several (e.g. L1-only and GAN)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="a 'rawcv synth --task restore' dataset; None: test pairs made on the fly (--synthetic)")
    p.add_argument("--split", default="test", help="split of --data")
    p.add_argument("--synthetic", type=_positive_int, default=None, metavar="N",
                   help="N test pairs made on the fly instead of --data; None: 32 without --data")
    p.add_argument("--noise", default="high", help="noise of the --synthetic pairs")
    p.add_argument("--size", type=_positive_int, default=256, help="side of the --synthetic images")
    p.add_argument("--sources", choices=("mixed", "synthetic", "skimage"), default="mixed",
                   help="scenes of the --synthetic pairs: procedural, scikit-image photographs, or both (mixed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --synthetic test pairs")
    p.add_argument("--no-nlm", action="store_true", help="skip the (slow) non-local means baseline")
    p.add_argument("--nlm-h", type=_positive_float, default=None, help="non-local means h; None: 0.6")
    p.add_argument("--show", type=_non_negative_int, default=4, help="images in the side-by-side PNG")
    p.add_argument("--tile", type=_positive_int, default=256, help="tile side in pixels of the models' inference")
    p.add_argument("--overlap", type=_non_negative_int, default=32, help="tile overlap in pixels")
    p.add_argument("--self-ensemble", action="store_true",
                   help="also report each model averaged over the 8 Bayer-preserving flips/transposes ('LABEL x8')")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder; None: the first checkpoint's")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run_eval_restore)


def run_eval_restore(args) -> int:
    from ..errors import RawcvError
    from ..train.restore import evaluate_restore, format_restore_table

    if args.data is not None and args.synthetic is not None:
        raise RawcvError("give --data or --synthetic, not both")
    res = evaluate_restore(args.weights, data=args.data, split=args.split, synthetic=args.synthetic,
                           noise=args.noise, size=args.size, seed=args.seed, sources=args.sources,
                           nlm=not args.no_nlm, nlm_params={"h": args.nlm_h} if args.nlm_h else None,
                           tile=args.tile, overlap=args.overlap, self_ensemble=args.self_ensemble,
                           device=args.device, out=args.out, n_show=args.show,
                           progress=None)
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if k != "per_image"}))
        return 0
    print(f"{res['n']} images: {res['where']}")
    print(format_restore_table(res))
    for label, margin in (res.get("margin_vs_best_classical_db") or {}).items():
        print(f"{label}: {margin:+.2f} dB linear PSNR vs the best classical ({res['best_classical']})")
    print(f"saved {res['json']}" + (f" and {res['png']}" if res.get("png") else ""))
    return 0


TRAIN_TASKS += [add_train_segment, add_train_restore]
PREDICT_TASKS += [add_predict_segment, add_predict_restore]
EVAL_TASKS += [add_eval_segment, add_eval_restore]


__all__ = ["register_models", "register_train", "register_predict", "register_eval", "add_training_options",
           "TRAIN_TASKS", "PREDICT_TASKS", "EVAL_TASKS"]
