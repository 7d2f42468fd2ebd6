"""The training engine shared by every rawcv task (classification, segmentation, restoration).

A :class:`Trainer` runs epochs of a model over DataLoaders; what the model's outputs *mean* is a
:class:`Task`'s business (its loss and metrics). The Trainer provides:

* SGD with momentum or Adam, a cosine or step learning-rate schedule (stepped per epoch);
* a validation pass per epoch, early stopping on the validation score (``patience``; the
  task's :attr:`Task.monitor`: the loss, or the accuracy of a classifier);
* ``best.pt`` (best validation score) and ``last.pt`` (resumable: optimizer, scheduler, RNG,
  history) checkpoints in the run folder, written atomically;
* ``metrics.json`` / ``metrics.csv`` (one row per epoch) and ``curves.png``;
* tqdm progress bars, seeded determinism (``seed``; shuffling is re-seeded per epoch so a resumed
  run sees the same batches as an uninterrupted one);
* on CUDA: bf16 autocast, channels_last, ``cudnn.benchmark``, pinned memory and non-blocking
  copies, optional ``torch.compile``; on CPU plain fp32.

Tasks with a different training step (a GAN's two optimizers) subclass :class:`Trainer` and
override :meth:`Trainer.train_step`.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..data.loaders import make_loader, make_loaders, seed_worker
from ..options import OPTIMIZERS, SCHEDULES
from ..torch.device import resolve_device
from .checkpoint import CheckpointError, load_checkpoint, load_state_dict, save_checkpoint, unwrap_model
from .runs import (BEST, CHECKPOINT_TASKS, CURVES_PNG, LAST, METRICS_CSV, METRICS_JSON, MODEL_TASK_OF, TrainingError,
                   checkpoint_architecture, load_trained, require_classes, require_model_task, require_resumed_classes,
                   require_task, starting_checkpoint)
from .steps import (_batch_size, get_rng_state, inference, move_to, predict_batches, progress_bar, seed_everything,
                    set_rng_state)

DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}


CURVES_INTERVAL_S = 30.0


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------

class Task:
    """What a model's outputs mean: the loss and the metrics of one kind of problem.

    Subclasses set :attr:`name` and implement :meth:`loss`; metrics are accumulated over an
    epoch through :meth:`init_metrics` / :meth:`update_metrics` / :meth:`compute_metrics` (a
    state such as a running count or a confusion matrix, so they are exact over the epoch, not
    a mean of batch means). The loss the Trainer logs is the sample-weighted mean of the
    batches' losses.

    :attr:`monitor` names what decides the best epoch (``best.pt``) and early stopping: a key of
    the epoch's metrics and whether lower (``"min"``) or higher (``"max"``) is better.
    """

    name = "task"
    monitor = ("loss", "min")

    def loss(self, outputs, targets) -> torch.Tensor:
        raise NotImplementedError

    def init_metrics(self) -> dict:
        return {}

    def update_metrics(self, state: dict, outputs, targets) -> None:
        pass

    def compute_metrics(self, state: dict) -> dict:
        return {}

    def config(self) -> dict:
        """Entries this task adds to the checkpoint config."""
        return {"task": self.name}


# --------------------------------------------------------------------------------------------
# Configuration and result
# --------------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Settings of a :class:`Trainer` run (the CLI's flags).

    ``lr=None`` takes :data:`DEFAULT_LR` of the optimizer (and ``lr`` then holds it). ``step_size=None`` with the step
    schedule divides the rate by 10 (``gamma``) every third of the run. ``patience=None`` never
    stops early. ``progress=None`` shows tqdm bars only on a terminal. ``ema`` (a decay such as
    0.999) keeps an exponential moving average of the weights (:meth:`Trainer.update_ema`):
    validation, ``best.pt`` and the weights of ``last.pt`` are the average's.
    """

    epochs: int = 10
    lr: Optional[float] = None
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    step_size: Optional[int] = None
    gamma: float = 0.1
    patience: Optional[int] = None
    min_delta: float = 0.0
    device: str = "auto"
    seed: int = 0
    compile: bool = False
    amp: bool = True
    channels_last: bool = True
    grad_clip: Optional[float] = None
    ema: Optional[float] = None            # decay of an exponential moving average of the weights
    progress: Optional[bool] = None
    max_batches: Optional[int] = None      # per epoch (quick experiments and tests)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown schedule {self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        if self.epochs < 1:
            raise TrainingError(f"epochs must be at least 1, got {self.epochs}")
        if self.lr is not None and not self.lr > 0:
            raise TrainingError(f"the learning rate must be positive, got {self.lr}")
        if self.patience is not None and self.patience < 1:
            raise TrainingError(f"patience must be at least 1 epoch, got {self.patience}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise TrainingError(f"the EMA decay must be between 0 and 1 (e.g. 0.999), got {self.ema}")
        if self.lr is None:     # resolved here, so that run.json and last.pt record the rate used
            self.lr = DEFAULT_LR[self.optimizer]
        self.lr = float(self.lr)

    @property
    def learning_rate(self) -> float:
        return self.lr


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    history: list
    best_epoch: Optional[int]
    best_loss: Optional[float]
    stopped_early: bool
    start_epoch: int
    out_dir: Optional[Path]
    last_path: Optional[Path] = None
    best_path: Optional[Path] = None
    extra: dict = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


# --------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------

class Trainer:
    """Train ``model`` on ``task`` with the settings of ``config``.

    Parameters
    ----------
    model : torch.nn.Module
        Built with :func:`rawcv.models.create_model` (its ``rawcv_config`` goes in checkpoints).
    task : Task
    train_loader, val_loader : DataLoader
        ``val_loader`` may be None: then the training metrics decide the best epoch and early stop.
        Loaders from :func:`make_loader` get their shuffling re-seeded every epoch.
    config : TrainConfig
    out_dir : path, optional
        Run folder for checkpoints, logs and the plot; None keeps nothing on disk.
    checkpoint_config : dict, optional
        More config entries for checkpoints (layout, classes, pipeline ...), merged with
        ``model.rawcv_config`` and ``task.config()``.
    frozen_modules : sequence of nn.Module
        Kept in eval mode while training (a frozen backbone's BatchNorm statistics stay fixed).
    log : callable, optional
        Receives one line per epoch; default prints to stdout.
    """

    def __init__(self, model: nn.Module, task: Task, train_loader, val_loader=None, *,
                 config: Optional[TrainConfig] = None, out_dir=None, checkpoint_config: Optional[dict] = None,
                 frozen_modules: Sequence[nn.Module] = (), log: Optional[Callable[[str], None]] = None):
        self.config = config or TrainConfig()
        self.task = task
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.log = log or (lambda line: print(line, flush=True))
        self.frozen_modules = list(frozen_modules)
        self.device = resolve_device(self.config.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        self.model = unwrap_model(model).to(self.device)
        self.channels_last = self.cuda and self.config.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.use_amp = self.cuda and self.config.amp
        self.forward_model = torch.compile(self.model) if self.config.compile else self.model
        self.ema_model: Optional[nn.Module] = None
        self.ema_updates = 0
        if self.config.ema:
            self._start_ema()
        extra = dict(task.config())
        extra.update(checkpoint_config or {})
        base = getattr(self.model, "rawcv_config", None) or {"name": type(self.model).__name__}
        self.checkpoint_config = {**base, **extra}
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.history: list = []
        self.epoch = 0                     # epochs completed
        self.best_loss: Optional[float] = None
        self.best_score: Optional[float] = None      # of task.monitor at the best epoch
        self.best_epoch: Optional[int] = None
        self.bad_epochs = 0
        self.stopped_early = False
        self._plotted_at: Optional[float] = None
        self._plotted_rows = 0

    # --- setup -----------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise TrainingError("the model has no trainable parameters (everything is frozen)")
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.learning_rate, momentum=c.momentum, weight_decay=c.weight_decay)
        return torch.optim.Adam(params, lr=c.learning_rate, weight_decay=c.weight_decay)

    def _make_scheduler(self):
        c = self.config
        if c.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(1, c.epochs))
        if c.schedule == "step":
            step = c.step_size or max(1, math.ceil(c.epochs / 3))
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=step, gamma=c.gamma)
        return None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # --- weight averaging --------------------------------------------------------------------
    def _start_ema(self) -> None:
        self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.ema_updates = 0

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the averaged weights towards the model's after an optimisation step:
        ``ema = d * ema + (1 - d) * weights`` for every parameter and floating-point buffer
        (BatchNorm statistics; counters are copied), with ``d = min(decay, (1 + n) / (10 + n))``
        at the ``n``-th update, so that the starting weights are forgotten within the first few
        hundred steps instead of ``1 / (1 - decay)``.

        Averaging smooths what the last steps did at random (SGD noise, and with a GAN the
        texture the generator invents differently from one step to the next) and keeps what
        they did consistently.
        """
        self.ema_updates += 1
        n = self.ema_updates
        decay = min(float(self.config.ema), (1.0 + n) / (10.0 + n))
        averaged = self.ema_model.state_dict()
        for key, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                averaged[key].lerp_(value, 1.0 - decay)
            else:
                averaged[key].copy_(value)

    @property
    def eval_model(self) -> nn.Module:
        """The model validation runs and checkpoints store: the weight average with ``ema``."""
        return self.ema_model if self.ema_model is not None else self.forward_model

    # --- one step / one pass ---------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_amp)

    def _split_batch(self, batch):
        if isinstance(batch, dict):
            return batch["input"], batch.get("target")
        inputs, targets = batch[0], batch[1]
        return inputs, targets

    def _to_device(self, obj):
        return move_to(obj, self.device, non_blocking=self.cuda, channels_last=self.channels_last)

    def train_step(self, batch):
        """One optimisation step; returns ``(loss tensor (detached), outputs, targets)``."""
        inputs, targets = self._split_batch(batch)
        inputs, targets = self._to_device(inputs), self._to_device(targets)
        with self._autocast():
            outputs = self.forward_model(inputs)
            loss = self.task.loss(outputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach(), outputs.detach() if isinstance(outputs, torch.Tensor) else outputs, targets

    @torch.no_grad()
    def eval_step(self, batch):
        inputs, targets = self._split_batch(batch)
        inputs, targets = self._to_device(inputs), self._to_device(targets)
        with self._autocast():
            outputs = self.eval_model(inputs)
            loss = self.task.loss(outputs, targets)
        return loss, outputs, targets

    def _set_train_mode(self, training: bool) -> None:
        self.model.train(training)
        if training:
            for m in self.frozen_modules:
                m.eval()

    def _progress(self, loader, desc):
        try:
            total = len(loader)
        except TypeError:
            total = None
        if total is not None and self.config.max_batches:
            total = min(total, self.config.max_batches)
        return progress_bar(loader, desc, progress=self.config.progress, total=total)

    def run_epoch(self, loader, *, train: bool, desc: str = "") -> dict:
        """One pass over ``loader``: the mean loss and the task's metrics (``{"loss": ..., ...}``)."""
        self._set_train_mode(train)
        state = self.task.init_metrics()
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        iterable, bar = self._progress(loader, desc)
        try:
            for i, batch in enumerate(iterable):
                if self.config.max_batches and i >= self.config.max_batches:
                    break
                loss, outputs, targets = self.train_step(batch) if train else self.eval_step(batch)
                if train and self.ema_model is not None:
                    self.update_ema()
                n = _batch_size(targets, outputs)
                total_loss += loss.double() * n
                count += n
                with torch.no_grad():
                    self.task.update_metrics(state, outputs, targets)
                if bar is not None and i % 10 == 0:
                    bar.set_postfix(loss=f"{float(total_loss) / max(count, 1):.4f}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
        if count == 0:
            raise TrainingError(f"{'training' if train else 'validation'} data gave no batches")
        metrics = {"loss": float(total_loss) / count}
        if train and not math.isfinite(metrics["loss"]):
            raise TrainingError(f"the training loss became {metrics['loss']} in epoch {self.epoch + 1}: "
                                "lower the learning rate (--lr)")
        metrics.update({k: float(v) for k, v in self.task.compute_metrics(state).items()})
        return metrics

    def evaluate(self, loader, desc: str = "eval") -> dict:
        return self.run_epoch(loader, train=False, desc=desc)

    # --- fitting ---------------------------------------------------------------------------
    def _reseed_loader(self, epoch: int) -> None:
        gen = getattr(self.train_loader, "generator", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(self.config.seed * 1_000_003 + epoch)

    def fit(self, *, resume: bool = False) -> FitResult:
        """Train for ``config.epochs`` epochs (in total, counting resumed ones) or until early stop."""
        if resume:
            self.resume()
        else:
            seed_everything(self.config.seed)
        start = self.epoch
        c = self.config
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        while self.epoch < c.epochs and not self.stopped_early:
            epoch = self.epoch + 1
            self._reseed_loader(epoch)
            t0 = time.perf_counter()
            lr = self.lr
            train_m = self.run_epoch(self.train_loader, train=True, desc=f"epoch {epoch}/{c.epochs} train")
            val_m = None
            if self.val_loader is not None:
                val_m = self.run_epoch(self.val_loader, train=False, desc=f"epoch {epoch}/{c.epochs} val")
            if self.scheduler is not None:
                self.scheduler.step()
            row = {"epoch": epoch, "lr": lr}
            row.update({f"train_{k}": v for k, v in train_m.items()})
            if val_m is not None:
                row.update({f"val_{k}": v for k, v in val_m.items()})
            row["time_s"] = round(time.perf_counter() - t0, 3)
            self.history.append(row)
            self.epoch = epoch
            monitored = val_m if val_m is not None else train_m
            improved = self._improves(monitored)
            if improved:
                self.best_loss, self.best_epoch, self.bad_epochs = monitored["loss"], epoch, 0
                self.best_score = monitored[self.task.monitor[0]]
            else:
                self.bad_epochs += 1
                if c.patience is not None and self.bad_epochs >= c.patience:
                    self.stopped_early = True
            self.log(self._epoch_line(row, improved))
            if self.out_dir is not None:
                if improved:
                    save_checkpoint(self.out_dir / BEST, unwrap_model(self.eval_model), config=self.checkpoint_config,
                                    epoch=epoch, metrics=row)
                self.save_last()
                self.write_logs()
            if self.stopped_early:
                self.log(f"early stop: no improvement of the {'validation' if val_m else 'training'} "
                         f"{self.task.monitor[0]} for {self.bad_epochs} epochs (best {self.best_score:.4f} at "
                         f"epoch {self.best_epoch})")
        if self.history:
            self.write_logs(final=True)
        out = self.out_dir
        return FitResult(
            history=list(self.history), best_epoch=self.best_epoch, best_loss=self.best_loss,
            stopped_early=self.stopped_early, start_epoch=start, out_dir=out,
            last_path=out / LAST if out is not None else None,
            best_path=out / BEST if out is not None and (out / BEST).exists() else None,
        )

    def _improves(self, metrics: dict) -> bool:
        """Whether an epoch's ``metrics`` beat the best so far by the task's :attr:`Task.monitor`
        (by ``min_delta``); a tie of a "max" score goes to the lower loss."""
        if self.best_score is None:
            return True
        key, mode = self.task.monitor
        value, delta = metrics[key], self.config.min_delta
        if mode == "min":
            return value < self.best_score - delta
        return value > self.best_score + delta or (value == self.best_score and metrics["loss"] < self.best_loss)

    def _best_score_of(self, row: dict):
        key = self.task.monitor[0]
        return row.get(f"val_{key}", row.get(f"train_{key}"))

    def _epoch_line(self, row: dict, improved: bool) -> str:
        parts = [f"epoch {row['epoch']}/{self.config.epochs}"]
        for k, v in row.items():
            if k in ("epoch", "time_s"):
                continue
            parts.append(f"{k} {v:.3g}" if k == "lr" else f"{k} {v:.4f}")
        parts.append(f"{row['time_s']:.1f}s")
        return "  ".join(parts) + ("  *" if improved else "")

    # --- checkpoints and logs --------------------------------------------------------------
    def trainer_state(self) -> dict:
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "best_score": self.best_score,
                "monitor": list(self.task.monitor), "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early, "config": asdict(self.config)}

    def save_last(self, path=None, **extra) -> Path:
        """``last.pt``: everything :meth:`resume` needs, and ``extra`` entries (a subclass's).
        With ``ema`` its weights are the average (what prediction and ``--init`` read) and
        ``ema`` holds the training weights, the decay and the number of updates."""
        path = Path(path) if path is not None else self.out_dir / LAST
        if self.ema_model is not None:
            extra["ema"] = {"decay": float(self.config.ema), "updates": self.ema_updates,
                            "training_state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}
        return save_checkpoint(
            path, unwrap_model(self.eval_model), config=self.checkpoint_config, epoch=self.epoch,
            metrics=self.history[-1] if self.history else {},
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            rng=get_rng_state(), history=self.history, trainer=self.trainer_state(), **extra,
        )

    def resume(self, path=None) -> dict:
        """Restore model, optimizer, scheduler, RNG, history and early-stopping state from ``last.pt``."""
        if path is None:
            if self.out_dir is None:
                raise TrainingError("resume needs a run folder (out_dir)")
            path = self.out_dir / LAST
            if not path.exists():
                raise TrainingError(f"{path}: nothing to resume (no last.pt in the run folder)")
        ckpt = load_checkpoint(path, map_location="cpu")
        for key in ("optimizer", "rng", "history", "trainer"):
            if key not in ckpt:
                raise CheckpointError(f"{ckpt['path']}: not a resumable checkpoint (no {key!r}; best.pt files "
                                      "hold weights only, resume from last.pt)")
        self._resume_weights(ckpt)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{ckpt['path']}: its optimizer state does not fit this run ({exc}); "
                                  "resume with the same --optimizer and --freeze settings") from None
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self._extend_cosine(max(1, self.config.epochs))
        set_rng_state(ckpt["rng"])
        self.history = list(ckpt["history"])
        self.epoch = int(ckpt["epoch"])
        t = ckpt["trainer"]
        self.best_loss, self.best_epoch = t.get("best_loss"), t.get("best_epoch")
        if t.get("monitor") == list(self.task.monitor):
            self.best_score = t.get("best_score")
        else:   # a run saved before the task monitored what it does now
            best_row = next((r for r in self.history if r.get("epoch") == self.best_epoch), {})
            self.best_score = self._best_score_of(best_row)
        self.bad_epochs = int(t.get("bad_epochs", 0))
        self.stopped_early = False
        self.log(f"resumed from {ckpt['path']} at epoch {self.epoch}")
        return ckpt

    def _resume_weights(self, ckpt: dict) -> None:
        """The training weights and, when the run averages them, the average. A run saved with
        ``ema`` keeps averaging (with this run's decay if it names one, else its own); one saved
        without starts its average from the weights it resumes."""
        saved = ckpt.get("ema")
        load_state_dict(self.model, ckpt if saved is None else {**ckpt, "state_dict": saved["training_state_dict"]})
        if saved is not None and self.config.ema is None:
            self.config.ema = float(saved["decay"])
        if self.config.ema is None:
            return
        self._start_ema()
        if saved is None:
            self.log(f"{ckpt['path']} has no weight average: --ema {self.config.ema:g} starts from its weights")
            return
        load_state_dict(self.ema_model, ckpt)
        self.ema_updates = int(saved["updates"])

    def _extend_cosine(self, t_max: int) -> None:
        """A run resumed with another ``epochs`` anneals to its new end (from the closed form)."""
        sched = self.scheduler
        if not isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) or sched.T_max == t_max:
            return
        sched.T_max = t_max
        t = min(sched.last_epoch, t_max)
        lrs = [sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
               for base in sched.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        sched._last_lr = list(lrs)

    def write_logs(self, *, final: bool = False) -> None:
        """Rewrite ``metrics.json`` and ``metrics.csv`` from the history (atomically), and
        ``curves.png`` after the first epoch, every :data:`CURVES_INTERVAL_S` seconds and when
        ``final`` (each time only if rows were added since the last plot)."""
        if self.out_dir is None:
            return
        due = final or self._plotted_at is None or time.monotonic() - self._plotted_at >= CURVES_INTERVAL_S
        plot = due and self._plotted_rows != len(self.history)
        write_history(self.history, self.out_dir, plot=plot)
        if plot:
            self._plotted_at, self._plotted_rows = time.monotonic(), len(self.history)


def write_history(history: list, out_dir, *, plot: bool = True) -> None:
    """``metrics.json`` (a list of rows), ``metrics.csv`` (one row per epoch) and, with ``plot``,
    ``curves.png``."""
    from ..io.atomic import write_bytes_atomic
    from .plots import plot_history

    out_dir = Path(out_dir)
    write_bytes_atomic(out_dir / METRICS_JSON, (json.dumps(history, indent=1) + "\n").encode(), overwrite=True)
    keys = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow(row)
    write_bytes_atomic(out_dir / METRICS_CSV, buf.getvalue().encode(), overwrite=True)
    if plot:
        plot_history(history, out_dir / CURVES_PNG)


def fit_and_report(trainer: "Trainer", *, resume: bool = False, metric: str, label: str, loss_name: str = "loss",
                   loss_format: str = ".4f", value_format: str = ".4f", unit: str = "") -> FitResult:
    """Run :meth:`Trainer.fit` and log (through the trainer's ``log``) the best epoch with its
    validation (else training) ``metric`` (a history key without the ``val_``/``train_`` prefix)
    as ``label``."""
    result = trainer.fit(resume=resume)
    if result.best_epoch is not None:
        best = next((row for row in result.history if row.get("epoch") == result.best_epoch), {})
        value = best.get(f"val_{metric}", best.get(f"train_{metric}"))
        trainer.log(f"best epoch {result.best_epoch}: {loss_name} {result.best_loss:{loss_format}}"
            + (f", {label} {value:{value_format}}{unit}" if value is not None else "")
            + f"; checkpoints in {trainer.out_dir}")
    return result


__all__ = ["Trainer", "TrainConfig", "FitResult", "Task", "TrainingError", "make_loader", "make_loaders",
           "fit_and_report", "progress_bar", "inference", "predict_batches", "starting_checkpoint",
           "checkpoint_architecture", "require_model_task", "require_task", "require_classes", "CHECKPOINT_TASKS",
           "MODEL_TASK_OF",
           "require_resumed_classes", "load_trained", "resolve_device",
           "seed_everything", "seed_worker", "move_to", "get_rng_state", "set_rng_state", "write_history",
           "OPTIMIZERS", "SCHEDULES", "DEFAULT_LR"]
