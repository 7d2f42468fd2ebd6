"""The restoration task of the training engine, and its trainer: L1 only, or pix2pix (a
discriminator with its own optimiser, updated before each generator step)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...options import L1_WEIGHT, VARIANCE_SCALE
from ..checkpoint import CheckpointError
from ..engine import Task, Trainer, require_task
from .gan import (discriminator_config, discriminator_pair, gan_criterion, load_discriminator_state,
                  require_trained_view)
from .generator import generate_batch

TASK = "restore"


def check_restore_checkpoint(ckpt: dict) -> None:
    """Refuse a checkpoint that does not hold a restoration generator, in one line."""
    require_task(ckpt, TASK, "a restoration model")


class RestorationTask(Task):
    """L1 between the restored and the clean image; the metric is the mean per-image PSNR
    (linear, both clipped to [0, 1])."""

    name = TASK

    def loss(self, outputs, targets):
        return F.l1_loss(outputs.float(), targets.float())

    def init_metrics(self) -> dict:
        return {"psnr_sum": 0.0, "n": 0}

    def update_metrics(self, state, outputs, targets) -> None:
        o = outputs.float().clamp(0, 1)
        t = targets.float().clamp(0, 1)
        mse = (o - t).pow(2).flatten(1).mean(dim=1).clamp(min=1e-12)
        state["psnr_sum"] += float((-10.0 * torch.log10(mse)).sum())
        state["n"] += int(mse.numel())

    def compute_metrics(self, state) -> dict:
        return {"psnr": state["psnr_sum"] / max(state["n"], 1)}


class RestoreTrainer(Trainer):
    """The :class:`~rawcv.train.engine.Trainer` with a restoration step: L1 only, or pix2pix
    (a discriminator with its own Adam optimizer, updated before each generator step).

    Batches are the dicts of :class:`rawcv.data.restore.RestorePairs` (``input``, ``variance``,
    ``target``, ``gains``). The checkpoint config records the discriminator
    (``config["discriminator"]``: :func:`~rawcv.train.restore.gan.discriminator_config`, with the
    view it sees its pairs in; None for L1 only); ``last.pt`` also holds its weights
    (``discriminator``) and ``d_optimizer``; ``best.pt`` holds the generator (what prediction
    needs) selected on the validation L1.
    """

    def __init__(self, model, task, train_loader, val_loader=None, *, discriminator: Optional[nn.Module] = None,
                 gan_loss: str = "bce", l1_weight: float = L1_WEIGHT, variance_scale: float = VARIANCE_SCALE,
                 beta1: float = 0.5, d_lr_ratio: float = 1.0, residual: bool = False, **kwargs):
        self.beta1 = float(beta1)
        self.residual = bool(residual)
        self.l1_weight = float(l1_weight)
        self.variance_scale = float(variance_scale)
        self.gan_loss = gan_loss
        self.criterion = gan_criterion(gan_loss) if discriminator is not None else None
        self.d_lr_ratio = float(d_lr_ratio)
        super().__init__(model, task, train_loader, val_loader, **kwargs)
        self.discriminator = discriminator.to(self.device) if discriminator is not None else None
        self.checkpoint_config["discriminator"] = None if discriminator is None else discriminator_config(discriminator)
        self.d_optimizer = None
        if self.discriminator is not None:
            self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                lr=self.config.learning_rate * self.d_lr_ratio,
                                                betas=(self.beta1, 0.999))
        self._gan_sums: dict = {}

    def _make_optimizer(self):
        if self.config.optimizer != "adam":
            return super()._make_optimizer()
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.config.learning_rate, betas=(self.beta1, 0.999),
                                weight_decay=self.config.weight_decay)

    def _set_train_mode(self, training: bool) -> None:
        super()._set_train_mode(training)
        if getattr(self, "discriminator", None) is not None:
            self.discriminator.train(training)

    def _generate(self, batch, model):
        return generate_batch(model, batch, variance_scale=self.variance_scale, residual=self.residual)

    def train_step(self, batch):
        batch = self._to_device(batch)
        target = batch["target"]
        with self._autocast():
            fake = self._generate(batch, self.forward_model)
            l1 = F.l1_loss(fake.float(), target.float())
        g_loss = self.l1_weight * l1
        if self.discriminator is not None:
            g_loss = g_loss + self._adversarial_step(batch, fake)
        self.optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return l1.detach(), fake.detach(), target

    def _adversarial_step(self, batch, fake):
        """Update the discriminator on this batch, and return the generator's adversarial loss."""
        D, crit = self.discriminator, self.criterion
        for p in D.parameters():
            p.requires_grad_(True)
        # Real and fake pairs go through D in ONE batch: with two separate batches its BatchNorm
        # normalises each by its own statistics and erases what tells them apart when that is a
        # statistic (a noise level, a loss of fine texture); D then sits at chance (measured:
        # noisy vs clean pairs stayed at D = 0.50 for 100 steps, and were told apart within 40
        # steps as one batch).
        real_pair = discriminator_pair(batch["input"], batch["target"])
        with self._autocast():
            pred_fake, pred_real = D(torch.cat([discriminator_pair(batch["input"], fake.detach()),
                                                real_pair])).chunk(2)
            d_loss = 0.5 * (crit(pred_fake, False) + crit(pred_real, True))
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()
        for p in D.parameters():
            p.requires_grad_(False)
        with self._autocast():
            # the same joint batch (same BatchNorm statistics); only the fake half is scored
            pred = D(torch.cat([discriminator_pair(batch["input"], fake), real_pair])).chunk(2)[0]
            g_adv = crit(pred, True)
        with torch.no_grad():
            s = self._gan_sums
            n = int(fake.shape[0])
            score = torch.sigmoid if self.gan_loss == "bce" else (lambda x: x)
            for key, value in (("d_loss", d_loss), ("g_adv", g_adv), ("d_real", score(pred_real.float()).mean()),
                               ("d_fake", score(pred_fake.float()).mean())):
                s[key] = s.get(key, 0.0) + float(value) * n
            s["n"] = s.get("n", 0) + n
        for p in D.parameters():
            p.requires_grad_(True)
        return g_adv

    @torch.no_grad()
    def eval_step(self, batch):
        batch = self._to_device(batch)
        with self._autocast():
            out = self._generate(batch, self.eval_model)
            loss = self.task.loss(out, batch["target"])
        return loss, out, batch["target"]

    def run_epoch(self, loader, *, train: bool, desc: str = "") -> dict:
        self._gan_sums = {}
        if train and self.d_optimizer is not None:
            for group in self.d_optimizer.param_groups:
                group["lr"] = self.lr * self.d_lr_ratio       # the discriminator follows the schedule
        metrics = super().run_epoch(loader, train=train, desc=desc)
        if train and self._gan_sums.get("n"):
            n = self._gan_sums["n"]
            for key in ("d_loss", "g_adv", "d_real", "d_fake"):
                metrics[key] = self._gan_sums[key] / n
        return metrics

    # --- checkpoints with the discriminator -----------------------------------------------
    def save_last(self, path=None, **extra) -> Path:
        if self.discriminator is not None:
            extra.update(discriminator={k: v.detach().cpu() for k, v in self.discriminator.state_dict().items()},
                         d_optimizer=self.d_optimizer.state_dict())
        return super().save_last(path, **extra)

    def resume(self, path=None) -> dict:
        ckpt = super().resume(path)
        if self.discriminator is not None:
            if "discriminator" not in ckpt:
                raise CheckpointError(f"{ckpt['path']}: holds no discriminator (an --l1-only run?); resume it "
                                      "with --l1-only")
            require_trained_view(ckpt)
            load_discriminator_state(self.discriminator, ckpt)
            if ckpt.get("d_optimizer") is not None:
                self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
        return ckpt


__all__ = ["RestorationTask", "RestoreTrainer", "check_restore_checkpoint", "TASK"]
