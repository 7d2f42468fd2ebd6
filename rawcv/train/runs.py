"""Run folders and the checkpoints a run starts from: what may be resumed, overwritten or
initialised from, and the checks that a checkpoint is of the task and classes at hand."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

from ..errors import OutputExistsError, RawcvError
from ..options import TASKS
from ..torch.device import resolve_device
from .checkpoint import CheckpointError, build_model, load_checkpoint

LAST, BEST = "last.pt", "best.pt"
METRICS_JSON, METRICS_CSV, CURVES_PNG = "metrics.json", "metrics.csv", "curves.png"


class TrainingError(RawcvError, RuntimeError):
    """Training cannot go on: a diverged (NaN) loss, nothing to resume, a bad setting."""


def starting_checkpoint(out, *, resume: bool = False, init=None, overwrite: bool = False,
                        check: Optional[Callable[[dict], None]] = None) -> Optional[dict]:
    """The checkpoint a training run in the folder ``out`` starts from, after checking that the
    run may start there: the folder's own ``last.pt`` with ``resume``, ``init``'s checkpoint,
    or None for a run from scratch. A folder holding a previous run is refused unless the run
    resumes it or ``overwrite`` is set; ``check`` (e.g. a task check) is called on the checkpoint.
    Every task's ``train_*`` starts with this, so the rules are the same for all of them."""
    out = Path(out)
    if resume and init:
        raise TrainingError("--resume continues the run's own last.pt; it cannot be combined with --init")
    if (out / LAST).exists() and not resume and not overwrite:
        raise OutputExistsError(f"{out}: holds a previous run (last.pt); use --resume to continue it "
                                "or --overwrite to start again")
    if resume:
        if not (out / LAST).exists():
            raise TrainingError(f"{out / LAST}: nothing to resume (no last.pt in the run folder)")
        ckpt = load_checkpoint(out / LAST)
    elif init:
        ckpt = load_checkpoint(init)
    else:
        return None
    if check is not None:
        check(ckpt)
    return ckpt


def load_trained(weights, device="auto", *, check: Callable[[dict], None]) -> tuple:
    """``(model, ckpt, device)`` of a trained checkpoint (file or run folder), in eval mode, after
    ``check(ckpt)`` (the task's: :func:`require_task`, :func:`require_classes`)."""
    dev = resolve_device(device)
    ckpt = load_checkpoint(weights)
    check(ckpt)
    model, ckpt = build_model(ckpt, device=dev)
    return model, ckpt, dev


#: The tasks a checkpoint's config may name under ``"task"`` (what ``rawcv train TASK`` writes),
#: and the registry task of the model each holds.
CHECKPOINT_TASKS = TASKS
MODEL_TASK_OF = {"classify": "classify", "segment": "segment", "restore": "restore_generator"}


def require_task(ckpt: dict, task: str, noun: str) -> None:
    """Refuse a checkpoint whose config does not name ``task`` (``noun``: what a model of the task
    is called in the message, e.g. "a classifier"), in one line naming the file."""
    found = ckpt["config"].get("task")
    if found is None:
        raise CheckpointError(f"{ckpt['path']}: its config names no task (one of {', '.join(CHECKPOINT_TASKS)}), "
                              f"so it cannot be taken for {noun}")
    if found not in CHECKPOINT_TASKS:
        raise CheckpointError(f"{ckpt['path']}: its config names task {str(found)[:40]!r}, none of "
                              f"{', '.join(CHECKPOINT_TASKS)}")
    if found != task:
        raise CheckpointError(f"{ckpt['path']}: a {found!r} checkpoint, not {noun}")
    from ..models import list_models, model_task

    name = ckpt["config"]["name"]
    if name in list_models() and model_task(name) != MODEL_TASK_OF[task]:
        raise CheckpointError(f"{ckpt['path']}: a {task!r} checkpoint holding model {name!r}, which is a "
                              f"{model_task(name)!r} model")


def require_classes(ckpt: dict) -> None:
    """Refuse a checkpoint whose config lacks the names of its ``num_classes`` outputs: a list of
    that many distinct strings (what predictions are reported as)."""
    cfg = ckpt["config"]
    classes, count = cfg.get("classes"), cfg.get("num_classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{ckpt['path']}: its config has classes {str(classes)[:60]}, not a list of "
                              "class names")
    if len(classes) != count or len(set(classes)) != len(classes):
        raise CheckpointError(f"{ckpt['path']}: its config names {len(classes)} classes "
                              f"({len(set(classes))} distinct) for a model of {count} outputs")


def require_model_task(model: str, task: str, noun: str, *, in_chans: Optional[int] = None,
                       kwargs: Optional[dict] = None) -> None:
    """Refuse a model name that is not registered for ``task`` (``noun``: what the task's models
    are called in the message, e.g. "classifiers"), naming only the ones that fit, and a model
    that does not build with ``in_chans`` and the arguments ``kwargs`` (checked on the ``meta``
    device, before any data is read; the message names the arguments the model takes)."""
    from ..models import list_models, model_skeleton, model_task, unknown_model_error

    if model not in list_models():
        raise unknown_model_error(model, list_models(task), f"{noun} are")
    if model_task(model) != task:
        raise TrainingError(f"model {model!r} is a {model_task(model)!r} model; {noun} are: "
                            f"{', '.join(list_models(task))}")
    model_skeleton(model, in_chans, kwargs=kwargs or {})


def require_resumed_classes(ckpt: Optional[dict], classes, data, *, resume: bool) -> None:
    """A resumed run must see the classes it was started with."""
    if resume and list(ckpt["config"].get("classes", classes)) != list(classes):
        raise TrainingError(f"{data}: classes {classes} differ from those of the run being resumed "
                            f"({ckpt['config'].get('classes')})")


def checkpoint_architecture(ckpt: Optional[dict], model: Optional[str], model_kwargs: Optional[dict], *,
                            resume: bool, log: Optional[Callable[[str], None]] = None) -> tuple:
    """``(model, model_kwargs)`` for a run starting from ``ckpt``: the checkpoint's architecture
    when resuming or when no model is named (model arguments given with it are then ignored, with
    a note through ``log``), else the ones given."""
    if ckpt is None or not (resume or model is None):
        return model, model_kwargs
    cfg = ckpt["config"]
    if model_kwargs and log is not None:
        log(f"note: using the architecture of {ckpt['path']}; model arguments ignored")
    return cfg["name"], dict(cfg.get("kwargs") or {})
#: Seconds between redraws of ``curves.png`` during a run (it is always drawn after the first
#: and the last epoch): a plot costs about a second on a CPU, more than an epoch of a small run.


def write_run_info(out: Path, **info) -> None:
    """Write what a run was started with to ``out/run.json`` (``run_resumed.json`` when
    ``info["resume"]``): the entries of ``info`` as JSON, with ``info["config"]`` (a
    :class:`~rawcv.train.engine.TrainConfig`) as a dict and paths as strings."""
    from ..io.atomic import write_bytes_atomic

    info = dict(info)
    info["data"] = str(info["data"])
    info["init"] = None if info["init"] is None else str(info["init"])
    info["config"] = asdict(info["config"])
    name = "run_resumed.json" if info.get("resume") else "run.json"
    write_bytes_atomic(Path(out) / name, (json.dumps(info, indent=1, default=str) + "\n").encode(), overwrite=True)


__all__ = ["TrainingError", "starting_checkpoint", "load_trained", "CHECKPOINT_TASKS", "MODEL_TASK_OF", "require_task",
           "require_classes", "require_model_task", "require_resumed_classes", "checkpoint_architecture", "LAST",
           "BEST", "METRICS_JSON", "METRICS_CSV", "CURVES_PNG", "write_run_info"]
