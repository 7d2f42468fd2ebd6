"""Tests of rawcv.train: the Trainer, checkpoints, resume, early stopping, logs, transfer learning."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from rawcv.data import RawFolder, make_toy_folder
from rawcv.errors import RawcvError
from rawcv.models import create_model
from rawcv.train import (CheckpointError, ClassificationTask, Task, TrainConfig, Trainer, TrainingError, build_model,
                         load_checkpoint, load_state_dict, make_loader, save_checkpoint, train_classifier)
from rawcv.train.engine import get_rng_state, resolve_device, set_rng_state

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Bright discs vs bright squares on a dark background, 16 per class, 64 x 64 DNGs."""
    return make_toy_folder(tmp_path_factory.mktemp("engine") / "shapes", n_per_class=16, size=64, seed=0)


@pytest.fixture(scope="module")
def tensors(shapes):
    """The toy folder decoded once, as an in-memory TensorDataset (fast for the many small runs)."""
    ds = RawFolder(shapes)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return TensorDataset(torch.stack(xs), torch.tensor(ys))


def _trainer(model, dataset, out=None, *, val=None, epochs=2, **kw):
    cfg = TrainConfig(epochs=epochs, device="cpu", progress=False, **kw)
    return Trainer(model, ClassificationTask(2), make_loader(dataset, batch_size=8, shuffle=True, seed=cfg.seed),
                   make_loader(val, batch_size=16) if val is not None else None, config=cfg, out_dir=out,
                   checkpoint_config={"layout": "packed", "classes": ["disc", "square"]}, log=lambda line: None)


# --- learning ---------------------------------------------------------------------------------

def test_cpu_smoke_training_lowers_the_loss(shapes, tmp_path):
    torch.manual_seed(0)
    ds = RawFolder(shapes, cache="memory")
    model = create_model("resnet18", in_chans=4, num_classes=2, width=8)
    trainer = Trainer(model, ClassificationTask(2), make_loader(ds, batch_size=8, shuffle=True),
                      config=TrainConfig(epochs=5, lr=3e-3, device="cpu", progress=False),
                      out_dir=tmp_path / "run", log=lambda line: None)
    result = trainer.fit()
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 5
    assert losses[-1] < losses[0] - 0.15, losses
    assert result.history[-1]["train_accuracy"] > 0.75


def test_resolve_device_and_config_validation():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TrainingError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(TrainingError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(TrainingError, match="learning rate"):
        TrainConfig(lr=0)
    assert TrainConfig(optimizer="sgd").learning_rate == 0.01 and TrainConfig().learning_rate == 1e-3
    # the rate used is what the config (and so run.json and last.pt) records, not None
    assert TrainConfig(optimizer="sgd").lr == 0.01 and TrainConfig(lr=3e-3).lr == 3e-3


def test_schedules_change_the_learning_rate(tensors):
    cos = _trainer(create_model("lenet5", 4, 2), tensors, epochs=4, schedule="cosine", lr=0.01)
    cos.config.max_batches = 1
    cos.fit()
    lrs = [row["lr"] for row in cos.history]
    assert lrs[0] == pytest.approx(0.01) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.002
    step = _trainer(create_model("lenet5", 4, 2), tensors, epochs=4, schedule="step", step_size=2, lr=0.01,
                    optimizer="sgd")
    step.config.max_batches = 1
    step.fit()
    assert [row["lr"] for row in step.history] == pytest.approx([0.01, 0.01, 0.001, 0.001])


# --- checkpoints ------------------------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = create_model("resnet18", in_chans=4, num_classes=3, width=8).eval()
    with torch.no_grad():                       # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = save_checkpoint(tmp_path / "m.pt", model, config={**model.rawcv_config, "task": "classify",
                                                               "classes": ["a", "b", "c"], "layout": "packed"},
                           epoch=7, metrics={"val_loss": 0.5})
    assert not [p for p in tmp_path.iterdir() if p.name != "m.pt"]     # no temporary left behind
    raw = torch.load(path, weights_only=True)
    assert set(raw) >= {"state_dict", "config", "epoch", "metrics"}
    twin, ckpt = build_model(path)
    assert ckpt["epoch"] == 7 and ckpt["metrics"] == {"val_loss": 0.5}
    assert ckpt["config"]["classes"] == ["a", "b", "c"] and ckpt["config"]["kwargs"] == {"width": 8}
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), twin(x))
    assert not twin.training


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "lenet.pt", create_model("lenet5", 4, 2))
    with pytest.raises(CheckpointError) as info:
        load_state_dict(create_model("resnet18", 4, 2, width=8), path)
    msg = str(info.value)
    assert "lenet.pt" in msg and "lenet5" in msg and "resnet18" in msg and "\n" not in msg
    assert isinstance(info.value, RawcvError)
    wider = save_checkpoint(tmp_path / "wide.pt", create_model("resnet18", 4, 2, width=16))
    with pytest.raises(CheckpointError, match="wide.pt.*shape"):
        load_state_dict(create_model("resnet18", 4, 2, width=8), wider)


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a zip archive", b"PK\x03\x04 truncated zip"])
def test_corrupt_checkpoint_file_is_a_clear_error(tmp_path, content):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    assert "broken.pt" in str(info.value) and "\n" not in str(info.value)


def test_truncated_and_foreign_torch_files_are_clear_errors(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", create_model("lenet5", 4, 2))
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a rawcv checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="missing.pt: no such"):
        load_checkpoint(tmp_path / "missing.pt")


# --- checkpoints that ask for too much, or lie ----------------------------------------------------

class _RunsCodeWhenUnpickled:
    """Unpickling this touches ``marker``: a file that holds it asks to run code when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _classifier_checkpoint(path, model_name="lenet5", **config_changes):
    """A lenet5 / resnet18 classifier checkpoint whose config gets ``config_changes`` (None: drop the key)."""
    model = create_model(model_name, 4, 2, **({"width": 8} if model_name == "resnet18" else {}))
    config = {**model.rawcv_config, "task": "classify", "classes": ["disc", "square"], "layout": "packed"}
    for key, value in config_changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return save_checkpoint(path, model, config=config)


BAD_CONFIGS = {
    "float_classes": ({"num_classes": 1e9}, "num_classes 1000000000.0, not a positive integer"),
    "billion_classes": ({"num_classes": 10**9}, "2 classes (2 distinct) for a model of 1000000000 outputs"),
    "no_task": ({"task": None}, "its config names no task"),
    "no_classes": ({"classes": None}, "classes None, not a list of class names"),
    "repeated_classes": ({"classes": ["disc", "disc"]}, "2 classes (1 distinct)"),
    "unknown_argument": ({"kwargs": {"bogus": 1}}, "model 'lenet5' takes no argument 'bogus': its arguments are "
                                                    "drop_rate"),
    "arguments_not_a_mapping": ({"kwargs": [1]}, "model arguments [1], not a mapping"),
    "huge_width": ({"name": "resnet18", "kwargs": {"width": 200_000}}, "would hold"),
    "other_head": ({"num_classes": 3, "classes": ["a", "b", "c"]}, "does not fit model 'lenet5'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["predict", "eval"])
def test_a_bad_checkpoint_config_is_one_line_naming_the_file_before_any_model_is_built(case, command, shapes,
                                                                                       tmp_path, capsys,
                                                                                       monkeypatch):
    import rawcv.models._registry as registry
    from rawcv.cli import main

    changes, expected = BAD_CONFIGS[case]
    path = _classifier_checkpoint(tmp_path / f"{case}.pt", **changes)
    built = []          # the default device of every model build: "meta" allocates nothing
    real_build = registry._build

    def recording_build(registration, config):
        built.append(torch.empty(0).device.type)
        return real_build(registration, config)

    monkeypatch.setattr(registry, "_build", recording_build)
    argv = (["predict", "classify", "--weights", str(path), str(shapes / "disc" / "disc_000.dng")]
            if command == "predict" else ["eval", "classify", "--weights", str(path), "--data", str(shapes)])
    assert main(argv + ["--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"rawcv {command}: error: {path}: ") and expected in err, err
    assert "cpu" not in built       # nothing was built outside the meta device


def test_a_checkpoint_that_asks_to_run_code_is_refused_without_running_it(shapes, tmp_path, capsys):
    from rawcv.cli import main

    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "config": {"name": "lenet5"}, "payload": _RunsCodeWhenUnpickled(marker)}, path)
    assert main(["predict", "classify", "--weights", str(path), str(shapes / "disc" / "disc_000.dng")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"rawcv predict: error: {path}: refused: the file asks to run code")
    assert not marker.exists()


# --- resume -----------------------------------------------------------------------------------

def test_resume_continues_at_the_right_epoch_with_identical_state(tensors, tmp_path):
    kw = dict(optimizer="sgd", lr=0.02, seed=3)
    torch.manual_seed(3)
    full = _trainer(create_model("lenet5", 4, 2, drop_rate=0.3), tensors, tmp_path / "full", epochs=3, **kw)
    full.fit()

    torch.manual_seed(3)
    first = _trainer(create_model("lenet5", 4, 2, drop_rate=0.3), tensors, tmp_path / "part", epochs=3, **kw)
    real_save = first.save_last

    def save_then_crash(*args):
        path = real_save(*args)
        if first.epoch == 2:
            raise KeyboardInterrupt            # the run dies right after epoch 2's checkpoint
        return path

    first.save_last = save_then_crash
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    saved = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert saved["epoch"] == 2 and len(saved["history"]) == 2

    torch.manual_seed(99)                           # a different fresh model: everything must come from last.pt
    second = _trainer(create_model("lenet5", 4, 2, drop_rate=0.3), tensors, tmp_path / "part", epochs=3, **kw)
    second.resume()
    assert second.epoch == 2
    opt = second.optimizer.state_dict()
    assert opt["param_groups"][0]["lr"] == saved["optimizer"]["param_groups"][0]["lr"]
    for k, st in saved["optimizer"]["state"].items():
        assert torch.equal(opt["state"][k]["momentum_buffer"], st["momentum_buffer"])
    assert second.scheduler.state_dict()["last_epoch"] == 2
    assert second.lr == pytest.approx(saved["optimizer"]["param_groups"][0]["lr"])
    result = second.fit(resume=True)
    assert result.start_epoch == 2 and [r["epoch"] for r in result.history] == [1, 2, 3]
    # an interrupted-and-resumed run ends exactly where the uninterrupted one does
    for a, b in zip(full.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert result.history[-1]["train_loss"] == full.history[-1]["train_loss"]
    rows = list(csv.DictReader((tmp_path / "part" / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def test_resume_with_more_epochs_extends_the_cosine_schedule(tensors, tmp_path):
    first = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path, epochs=2, lr=0.01)
    first.config.max_batches = 1
    first.fit()
    more = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path, epochs=4, lr=0.01)
    more.config.max_batches = 1
    result = more.fit(resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    lrs = [r["lr"] for r in result.history]
    assert lrs[2] > lrs[3] > 0                       # annealing towards the new last epoch


def test_resume_without_last_checkpoint_is_an_error(tensors, tmp_path):
    trainer = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path / "empty")
    with pytest.raises(TrainingError, match="nothing to resume"):
        trainer.fit(resume=True)


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(5)
    state = get_rng_state()
    torch.save({"rng": state}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


# --- weight averaging (ema) -------------------------------------------------------------------

def _snapshots(trainer):
    """Record the training weights the average receives at every update."""
    seen, real_update = [], trainer.update_ema

    def record():
        seen.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        real_update()

    trainer.update_ema = record
    return seen


def _reference_average(start, seen, decay):
    """The average :meth:`Trainer.update_ema` should reach, in float64, written out step by step."""
    expected = {k: v.double() for k, v in start.items()}
    for n, weights in enumerate(seen, start=1):
        d = min(decay, (1 + n) / (10 + n))
        expected = {k: d * expected[k] + (1 - d) * weights[k].double() for k in expected}
    return expected


def test_ema_equals_a_slow_reference_average(tensors):
    torch.manual_seed(4)
    model = create_model("resnet18", in_chans=4, num_classes=2, width=8)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # decay 0.3: the warm-up (1 + n) / (10 + n) rules the first 3 updates, the decay the rest
    trainer = _trainer(model, tensors, epochs=2, lr=0.01, ema=0.3, max_batches=3)
    seen = _snapshots(trainer)
    trainer.fit()
    assert len(seen) == 6 and trainer.ema_updates == 6
    expected = _reference_average(start, seen, 0.3)
    averaged = trainer.ema_model.state_dict()
    for key, value in averaged.items():
        if value.dtype.is_floating_point:
            assert torch.allclose(value.double(), expected[key], rtol=1e-5, atol=1e-6), key
        else:                                    # BatchNorm's step counters are the model's own
            assert torch.equal(value, trainer.model.state_dict()[key]), key
    moved = [k for k, v in averaged.items() if v.dtype.is_floating_point and not torch.equal(v, seen[-1][k])]
    assert moved                                 # the average is not simply the last weights
    assert all(not p.requires_grad for p in trainer.ema_model.parameters()) and not trainer.ema_model.training


def test_ema_weights_are_validated_and_saved_and_the_training_weights_kept(tensors, tmp_path):
    torch.manual_seed(6)
    trainer = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path, val=tensors, epochs=2, lr=0.01, ema=0.5,
                       max_batches=2)
    trainer.fit()
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    averaged, training = trainer.ema_model.state_dict(), trainer.model.state_dict()
    assert any(not torch.equal(averaged[k], training[k]) for k in averaged)
    for key in averaged:
        assert torch.equal(last["state_dict"][key], averaged[key])
        assert torch.equal(last["ema"]["training_state_dict"][key], training[key])
    assert last["ema"]["decay"] == 0.5 and last["ema"]["updates"] == 4 and last["trainer"]["config"]["ema"] == 0.5
    assert set(best["state_dict"]) == set(averaged)
    # the last epoch's validation loss is the averaged model's (a loop independent of the Trainer)
    model, _ = build_model(tmp_path / "last.pt")
    x, y = tensors.tensors
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x), y).item()
    assert trainer.history[-1]["val_loss"] == pytest.approx(loss, rel=1e-5)
    # without ema nothing changes: no average, no extra entry
    plain = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path / "plain", epochs=1, max_batches=1)
    plain.fit()
    assert plain.ema_model is None and "ema" not in torch.load(tmp_path / "plain" / "last.pt", weights_only=True)


def test_resume_with_ema_ends_where_the_uninterrupted_run_does(tensors, tmp_path):
    kw = dict(optimizer="sgd", lr=0.02, seed=3, ema=0.9, max_batches=2, schedule="none")   # same rates in both
    torch.manual_seed(3)
    full = _trainer(create_model("resnet18", 4, 2, width=8), tensors, tmp_path / "full", epochs=3, **kw)
    full.fit()
    torch.manual_seed(3)
    _trainer(create_model("resnet18", 4, 2, width=8), tensors, tmp_path / "part", epochs=2, **kw).fit()
    torch.manual_seed(99)
    # resumed without naming the decay: the run's own (0.9) is kept
    second = _trainer(create_model("resnet18", 4, 2, width=8), tensors, tmp_path / "part", epochs=3,
                      **{**kw, "ema": None})
    second.fit(resume=True)
    assert second.config.ema == 0.9 and second.ema_updates == full.ema_updates == 6
    for mine, theirs in ((second.model, full.model), (second.ema_model, full.ema_model)):
        for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()):
            assert torch.equal(a, b)


def test_resume_of_a_run_without_ema_starts_the_average_from_its_weights(tensors, tmp_path):
    _trainer(create_model("lenet5", 4, 2), tensors, tmp_path, epochs=1, lr=0.01, max_batches=2).fit()
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["state_dict"]
    lines = []
    more = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path, epochs=2, lr=0.01, max_batches=2, ema=0.99)
    more.log = lines.append
    seen = _snapshots(more)
    more.fit(resume=True)
    assert any("no weight average" in line and "last.pt" in line for line in lines)
    assert more.ema_updates == 2
    expected = _reference_average(saved, seen, 0.99)
    for key, value in more.ema_model.state_dict().items():
        assert torch.allclose(value.double(), expected[key], rtol=1e-5, atol=1e-6), key


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_ema_decay_outside_0_1_is_a_clear_error(decay):
    with pytest.raises(TrainingError, match="EMA decay must be between 0 and 1"):
        TrainConfig(ema=decay)


# --- early stopping ---------------------------------------------------------------------------

class _Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.rawcv_config = {"name": "scalar", "in_chans": 1, "num_classes": 1, "kwargs": {}}

    def forward(self, x):
        return x * self.w


class _ScriptedTask(Task):
    """Training loss from the model; validation loss read from a script, one value per epoch."""

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def loss(self, outputs, targets):
        if torch.is_grad_enabled():
            return (outputs ** 2).mean()
        value = self.script[self.calls]
        self.calls += 1
        return torch.tensor(value)


def test_early_stopping_stops_when_the_validation_loss_stops_improving(tmp_path):
    data = TensorDataset(torch.ones(4, 1), torch.zeros(4))
    task = _ScriptedTask([1.0, 0.8, 0.9, 0.85, 0.95, 0.5, 0.4, 0.3])
    trainer = Trainer(_Scalar(), task, make_loader(data, batch_size=4), make_loader(data, batch_size=4),
                      config=TrainConfig(epochs=8, patience=3, device="cpu", progress=False, lr=0.01),
                      out_dir=tmp_path, log=lambda line: None)
    result = trainer.fit()
    assert result.stopped_early and result.epochs_run == 5
    assert result.best_epoch == 2 and result.best_loss == pytest.approx(0.8)
    assert [r["val_loss"] for r in result.history] == pytest.approx([1.0, 0.8, 0.9, 0.85, 0.95])
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 2
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 5


class _ScriptedAccuracyTask(_ScriptedTask):
    """Validation (loss, accuracy) read from a script; the accuracy picks the best epoch."""

    monitor = ("accuracy", "max")
    pending = None          # the scripted accuracy of the validation batch whose loss was just read

    def loss(self, outputs, targets):
        if torch.is_grad_enabled():
            return (outputs ** 2).mean()
        value, self.pending = self.script[self.calls]
        self.calls += 1
        return torch.tensor(value)

    def update_metrics(self, state, outputs, targets):
        if self.pending is not None:
            state["accuracy"], self.pending = self.pending, None

    def compute_metrics(self, state):
        return {"accuracy": state.get("accuracy", 0.0)}


def test_a_task_monitoring_accuracy_keeps_the_most_accurate_epoch_not_the_lowest_loss(tmp_path):
    # An overconfident classifier: its validation loss rises from epoch 1 while its accuracy
    # rises to epoch 3; the tie at epoch 4 goes to the lower loss, so epoch 3 stays best.
    script = [(1.0, 0.2), (1.5, 0.4), (2.0, 0.6), (2.5, 0.6), (3.0, 0.5)]
    data = TensorDataset(torch.ones(4, 1), torch.zeros(4))
    trainer = Trainer(_Scalar(), _ScriptedAccuracyTask(script), make_loader(data, batch_size=4),
                      make_loader(data, batch_size=4),
                      config=TrainConfig(epochs=5, device="cpu", progress=False, lr=0.01), out_dir=tmp_path,
                      log=lambda line: None)
    result = trainer.fit()
    assert [r["val_accuracy"] for r in result.history] == [0.2, 0.4, 0.6, 0.6, 0.5]
    assert result.best_epoch == 3 and result.best_loss == pytest.approx(2.0)
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 3
    assert load_checkpoint(tmp_path / "last.pt")["trainer"]["best_score"] == pytest.approx(0.6)


def test_no_early_stop_without_patience(tmp_path):
    data = TensorDataset(torch.ones(4, 1), torch.zeros(4))
    trainer = Trainer(_Scalar(), _ScriptedTask([1.0, 2.0, 3.0, 4.0]), make_loader(data, batch_size=4),
                      make_loader(data, batch_size=4),
                      config=TrainConfig(epochs=4, device="cpu", progress=False), log=lambda line: None)
    result = trainer.fit()
    assert not result.stopped_early and result.epochs_run == 4 and result.best_epoch == 1


def test_diverging_loss_is_a_training_error():
    class Nan(_ScriptedTask):
        def loss(self, outputs, targets):
            return (outputs * float("nan")).mean()

    data = TensorDataset(torch.ones(4, 1), torch.zeros(4))
    trainer = Trainer(_Scalar(), Nan([]), make_loader(data, batch_size=4),
                      config=TrainConfig(epochs=1, device="cpu", progress=False), log=lambda line: None)
    with pytest.raises(TrainingError, match="--lr"):
        trainer.fit()


# --- logs -------------------------------------------------------------------------------------

def test_logs_have_one_row_per_epoch_and_a_png_plot(tensors, tmp_path):
    trainer = _trainer(create_model("lenet5", 4, 2), tensors, tmp_path, val=tensors, epochs=3)
    trainer.fit()
    keys = {"epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "time_s"}
    history = json.loads((tmp_path / "metrics.json").read_text())
    assert len(history) == 3 and all(set(row) == keys for row in history)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 3 and set(rows[0]) == keys
    assert float(rows[2]["val_loss"]) == pytest.approx(history[2]["val_loss"])
    assert 0 <= float(rows[0]["val_accuracy"]) <= 1
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["config"]["task"] == "classify" and ckpt["config"]["name"] == "lenet5"
    assert ckpt["config"]["classes"] == ["disc", "square"] and ckpt["config"]["layout"] == "packed"
    assert "optimizer" not in ckpt                  # best.pt holds weights only; last.pt is the resumable one
    assert {"optimizer", "scheduler", "rng", "history"} <= set(load_checkpoint(tmp_path / "last.pt"))


# --- transfer learning ------------------------------------------------------------------------

def test_init_and_freeze_backbone_trains_only_the_head(shapes, tmp_path):
    base = train_classifier(shapes, tmp_path / "base", model="lenet5", epochs=1, batch_size=16, device="cpu",
                            progress=False, log=lambda line: None)
    assert base.best_path is not None
    before = load_checkpoint(base.best_path)["state_dict"]
    train_classifier(shapes, tmp_path / "tuned", init=base.best_path, freeze="backbone", epochs=2, batch_size=16,
                     lr=0.05, device="cpu", progress=False, log=lambda line: None)
    tuned = load_checkpoint(tmp_path / "tuned" / "last.pt")
    assert tuned["config"]["name"] == "lenet5"                     # the architecture comes from --init
    after = tuned["state_dict"]
    backbone = [k for k in before if k.startswith("backbone.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_init_with_another_class_count_gets_a_new_head(shapes, tmp_path):
    src = create_model("lenet5", 4, 5)
    path = save_checkpoint(tmp_path / "five.pt", src, config={**src.rawcv_config, "task": "classify",
                                                              "layout": "packed", "classes": list("abcde")})
    logs = []
    train_classifier(shapes, tmp_path / "run", init=path, freeze="backbone", epochs=1, batch_size=16,
                     device="cpu", progress=False, log=logs.append)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["state_dict"]["head.weight"].shape == (2, 84)
    backbone = [k for k in src.state_dict() if k.startswith("backbone.")]
    assert backbone and all(torch.equal(ckpt["state_dict"][k], src.state_dict()[k]) for k in backbone)
    assert any("new head" in line for line in logs)


def test_train_classifier_guards(shapes, tmp_path):
    with pytest.raises(TrainingError, match="--init"):
        train_classifier(shapes, tmp_path / "a", model="lenet5", freeze="backbone", epochs=1, device="cpu")
    with pytest.raises(TrainingError, match="classifiers are"):
        train_classifier(shapes, tmp_path / "b", model="unet_small", epochs=1, device="cpu")
    with pytest.raises(RawcvError, match="unknown model"):
        train_classifier(shapes, tmp_path / "c", model="resnet19", epochs=1, device="cpu")


# --- prediction reproduces the training inputs ------------------------------------------------

@pytest.mark.parametrize("layout,pipeline", [("packed", None), ("rgb", "default")])
def test_predict_builds_inputs_like_the_dataset(shapes, tmp_path, layout, pipeline):
    from rawcv.train import predict_files

    result = train_classifier(shapes, tmp_path / "run", model="lenet5", layout=layout, pipeline=pipeline, epochs=1,
                              batch_size=16, device="cpu", progress=False, log=lambda line: None)
    model, ckpt = build_model(result.best_path)
    assert ckpt["config"]["layout"] == layout and ckpt["config"]["pipeline"] == pipeline
    ds = RawFolder(shapes, layout=layout, pipeline=pipeline)
    files = [ds.samples[0][0], ds.samples[20][0]]
    preds = dict(predict_files(result.best_path, files, top_k=2, device="cpu"))
    with torch.no_grad():
        probs = torch.softmax(model(torch.stack([ds[0][0], ds[20][0]])), dim=1)
    for path, p in zip(files, probs):
        got = dict(preds[path]["top_k"])
        assert got["disc"] == pytest.approx(float(p[0]), abs=1e-5)
        assert got["square"] == pytest.approx(float(p[1]), abs=1e-5)
