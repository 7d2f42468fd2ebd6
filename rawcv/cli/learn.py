"""The learning subcommands: ``rawcv train|predict|eval TASK``.

Each of ``train``, ``predict`` and ``eval`` takes the task as its first word (``classify`` now;
segmentation and restoration add theirs by appending an ``add_*`` function to
:data:`TRAIN_TASKS`, :data:`PREDICT_TASKS` or :data:`EVAL_TASKS`). Nothing here imports torch
at import time: the ``run_*`` functions import the training room when they run.
"""

from __future__ import annotations

import argparse
import json
import sys

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


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _model_arg(text):
    """``KEY=VALUE`` with VALUE read as JSON where it parses (``width=16``, ``small_input=false``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


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
# train
# --------------------------------------------------------------------------------------------

def add_training_options(p, *, default_model="resnet18", default_epochs=10, default_batch=32):
    """The options every ``rawcv train TASK`` shares (engine settings, run folder, resume ...)."""
    p.add_argument("--data", required=True, metavar="DIR",
                   help="a folder with one sub-folder of RAW files per class, or a synthetic dataset "
                        "(with manifest.json: its train/val splits are used)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run folder: best.pt, last.pt, metrics.json/.csv, curves.png")
    p.add_argument("--model", default=None, metavar="NAME",
                   help=f"architecture (default {default_model}; with --init: the checkpoint's)")
    p.add_argument("--model-arg", action="append", type=_model_arg, default=[], metavar="KEY=VALUE",
                   help="architecture keyword, repeatable (e.g. width=16)")
    p.add_argument("--layout", choices=("packed", "rgb"), default=None,
                   help="packed: 4 x H/2 x W/2 Bayer planes (default); rgb: 3 x H x W from --pipeline")
    p.add_argument("--pipeline", default=None, metavar="NAME|FILE",
                   help="ISP pipeline of --layout rgb: linear (default) or default (display sRGB)")
    p.add_argument("--epochs", type=_positive_int, default=default_epochs, help=f"default {default_epochs}")
    p.add_argument("--batch-size", type=_positive_int, default=default_batch, help=f"default {default_batch}")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default 1e-3 adam, 0.01 sgd)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="adam", help="default adam (sgd: momentum 0.9)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=("cosine", "step", "none"), default="cosine",
                   help="learning-rate schedule per epoch (default cosine)")
    p.add_argument("--patience", type=_positive_int, default=None, metavar="EPOCHS",
                   help="stop when the validation loss has not improved for this many epochs")
    p.add_argument("--val-fraction", type=_fraction, default=0.2,
                   help="share of a class folder held out for validation (default 0.2)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and split (default 0)")
    p.add_argument("--workers", type=_non_negative_int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--cache", choices=("none", "memory", "disk"), default="memory",
                   help="cache decoded mosaics (default memory; disk: .npy files under DIR/.rawcv-cache)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--init", default=None, metavar="CKPT", help="start from a checkpoint's weights")
    p.add_argument("--freeze", choices=("backbone",), default=None,
                   help="train only the head (transfer learning, with --init)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt up to --epochs")
    p.add_argument("--overwrite", action="store_true", help="start afresh in a RUN_DIR holding a previous run")
    p.add_argument("--max-batches", type=_positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_train_classify(tsub):
    p = tsub.add_parser("classify", help="train an image classifier",
                        description="Train a classifier on RAW files (packed Bayer planes or ISP output).")
    add_training_options(p)
    p.add_argument("--crop", type=_positive_int, default=None, metavar="N",
                   help="centre-crop class-folder images to N x N (mixed sizes)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--augment", action="store_true",
                   help="random flips and transposes (Bayer-aware for packed, plus exposure) of training images")
    p.set_defaults(func=run_train_classify)


def run_train_classify(args) -> int:
    from ..train.classify import train_classifier

    result = train_classifier(
        args.data, args.out, model=args.model, model_kwargs=dict(args.model_arg), layout=args.layout,
        pipeline=args.pipeline, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, schedule=args.schedule, weight_decay=args.weight_decay, momentum=args.momentum,
        device=args.device, seed=args.seed, workers=args.workers, patience=args.patience, compile=args.compile,
        init=args.init, freeze=args.freeze, resume=args.resume, overwrite=args.overwrite,
        val_fraction=args.val_fraction, cache=None if args.cache == "none" else args.cache, crop=args.crop,
        label_smoothing=args.label_smoothing, augment=args.augment, max_batches=args.max_batches,
        progress=False if args.no_progress else None,
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
                        description="Print the label and top-k probabilities of each RAW file. A file that "
                                    "cannot be read gives one error line; the others are still classified.")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR", help="RAW files or folders (searched recursively)")
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint (best.pt) or a run folder")
    p.add_argument("--top-k", type=_positive_int, default=3, help="probabilities shown per file (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per file (one per line)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run_predict_classify)


def run_predict_classify(args) -> int:
    from ..train.classify import predict_files

    failures = 0
    for path, pred in predict_files(args.weights, args.inputs, top_k=args.top_k, device=args.device):
        if isinstance(pred, Exception):
            fail_line("predict", pred)
            failures += 1
            continue
        if args.json:
            print(json.dumps({"path": pred["path"], "label": pred["label"], "probability": pred["probability"],
                              "top_k": [{"class": c, "probability": p} for c, p in pred["top_k"]]}), flush=True)
        else:
            top = ", ".join(f"{c} {p:.3f}" for c, p in pred["top_k"])
            print(f"{path}: {pred['label']}  ({top})", flush=True)
    return 1 if failures else 0


PREDICT_TASKS = [add_predict_classify]


def register_predict(sub):
    _add_task_group(sub, "predict", "run a trained network on RAW files",
                    "Run a trained network on RAW files: rawcv predict TASK --weights CKPT FILE...", PREDICT_TASKS)


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------

def add_eval_classify(tsub):
    p = tsub.add_parser("classify", help="accuracy and confusion matrix of a classifier",
                        description="Evaluate a classifier: accuracy and confusion matrix, printed and saved "
                                    "as confusion_matrix.png (in the checkpoint's folder or --out).")
    p.add_argument("--weights", required=True, metavar="CKPT", help="a checkpoint (best.pt) or a run folder")
    p.add_argument("--data", required=True, metavar="DIR", help="a synthetic dataset or a class folder")
    p.add_argument("--split", default="test", help="split of a synthetic dataset (default test; 'all' for all)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder of confusion_matrix.png and eval_SPLIT.json")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--workers", type=_non_negative_int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
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


__all__ = ["register_train", "register_predict", "register_eval", "add_training_options", "TRAIN_TASKS",
           "PREDICT_TASKS", "EVAL_TASKS"]
