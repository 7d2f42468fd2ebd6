"""Training, checkpoints, prediction and evaluation for rawcv networks.

* :mod:`rawcv.train.engine` — :class:`Trainer` (optimizers, schedules, early stopping, resumable
  checkpoints, logs, CUDA fast paths) over a :class:`Task` (loss + metrics);
* :mod:`rawcv.train.checkpoint` — atomic, ``weights_only``-loadable checkpoints;
* :mod:`rawcv.train.classify` — the classification task, ``train_classifier``, ``predict_files``,
  ``evaluate_classifier``;
* :mod:`rawcv.train.plots` — training curves and confusion matrices as PNG.
"""

from .._optional import require as _require

_require("torch", "rawcv.train")

from .checkpoint import (CheckpointError, build_model, load_checkpoint, load_state_dict, model_config,
                         save_checkpoint, unwrap_model)
from .classify import (ClassificationTask, confusion_matrix, evaluate_classifier, format_confusion,
                       load_classifier, predict_files, train_classifier)
from .engine import (FitResult, Task, TrainConfig, Trainer, TrainingError, make_loader, resolve_device,
                     seed_everything)
from .plots import plot_confusion_matrix, plot_history

__all__ = [
    "Trainer", "TrainConfig", "FitResult", "Task", "TrainingError", "make_loader", "resolve_device",
    "seed_everything", "CheckpointError", "save_checkpoint", "load_checkpoint", "load_state_dict", "build_model",
    "model_config", "unwrap_model", "ClassificationTask", "train_classifier", "predict_files",
    "evaluate_classifier", "load_classifier", "confusion_matrix", "format_confusion", "plot_history",
    "plot_confusion_matrix",
]
