"""Raw restoration (joint denoising + demosaicing) with a pix2pix-style conditional GAN, or L1 only.

noisy packed raw (4) + noise-variance map (4) --U-Net generator--> (+ bilinear demosaic of the input,
    ``residual``) camera RGB x as-shot WB gains = white-balanced linear camera RGB at full resolution
    (the target, see :mod:`rawcv.data.restore`)

* the generator is ``unet_generator`` (``in_chans = 8``); its variance input is
  ``lambda_shot * max(x, 0) + lambda_read`` per packed channel (Brooks et al. 2019), computed from
  the noisy values, multiplied by a fixed ``variance_scale`` (100: numbers of order 1);
* the discriminator is the 70x70 PatchGAN ``patchgan70`` on the pair ``concat(condition, image)``
  (``in_chans = 4 + 3``): the condition is the packed raw upsampled (nearest) to full resolution;
  both are shown to it sRGB-encoded so that shadow detail counts as it does to the eye (the curve
  continued below 0 and above 1, ``d_range="extended"``, so that values a generator puts outside
  [0, 1] stay visible to it), and by default (``d_view="display+detail"``, ``in_chans = 10``)
  also the image's fine-detail band as channels of their own, so that it sees early what a
  smoothing generator loses;
* losses: adversarial (BCE-with-logits, or least squares ``--gan-loss lsgan``) + ``lambda * L1``
  with ``lambda = 100``; Adam ``lr 2e-4, beta1 0.5`` for both networks; ``--l1-only`` drops the
  discriminator (the same ``100 * L1`` objective, for comparison). The logged training loss is
  the L1 term alone in both modes; the GAN also logs ``d_loss``, ``g_adv``, ``d_real``, ``d_fake``
  per epoch.

Prediction tiles large images with overlap (blended so that every output pixel comes from a
tile's interior) and finishes with the ISP's own display stages (:func:`camera_to_output`).
Evaluation compares with classical baselines computed in the same run on the same images.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OutputExistsError, RawcvError
from .checkpoint import CheckpointError, load_state_dict
from .engine import (Task, TrainConfig, Trainer, TrainingError, checkpoint_architecture, fit_and_report,
                    inference, load_trained, make_loaders, progress_bar, require_model_task,
                    require_task, resolve_device, seed_everything, starting_checkpoint)

TASK = "restore"
GAN_LOSSES = ("bce", "lsgan")
DEFAULT_GENERATOR = "unet_generator"
#: Input channels of a generator: 4 packed raw planes and their 4 noise-variance maps.
GENERATOR_CHANNELS = 8
DEFAULT_GENERATOR_KWARGS = {"base_width": 16}
DEFAULT_DISCRIMINATOR = "patchgan70"
DEFAULT_DISCRIMINATOR_KWARGS = {"base_width": 32}
L1_WEIGHT = 100.0
VARIANCE_SCALE = 100.0
D_VIEWS = ("display", "display+detail")
DEFAULT_D_VIEW = "display+detail"
# How the sRGB curve the discriminator sees treats values outside [0, 1]. "clipped" (runs before
# the option) hid them: every value below 0 looked like the truth's black and had no gradient, so
# the generator learnt to push shadows below 0 and then left the input's noise there
# (run_r32_lsgan_dd: 0.02 RMS noise and a 2-pixel grid in black sky, -13.7 dB on that test image,
# -1.80 dB on average). "extended" continues the curve (12.92 x below 0, the power law above 1):
# the same run then cost -0.68 dB with the same sharpening (docs/DENSE_RESULTS.md 2.1).
D_RANGES = ("extended", "clipped")
DEFAULT_D_RANGE = "extended"
# What runs made before an option existed used, read for checkpoints that do not record it (in the
# order _trained_view returns them).
_BEFORE_OPTION = {"d_view": "display", "d_range": "clipped", "d_detail_gain": 4.0}
# The discriminator's extra view of the image: its sRGB values minus a Gaussian blur of them,
# times a gain. Fine detail is a few percent of the signal; mixed into the image, a fresh
# PatchGAN needs thousands of steps to notice what a good generator loses. docs/discriminator_probe.py
# (frozen L1-trained generator, 300 steps of LSGAN at 2e-4): D(real) / D(fake) 0.498 / 0.497
# on the pair alone, 0.517 / 0.478 with the band at gain 1, 0.704 / 0.289 at gain 4. Over a
# whole 4,500-step GAN run at lambda 100 gain 1 is enough; the stronger gains that the runs before
# the option used (4) or tried (2) bought a little more detail for much more PSNR: against the L1
# twin -0.33 dB at gain 1, -0.54 at 2, -0.68 at 4, for +13, +18 and +18 % of the truth's fine
# detail (a second seed of gain 1: -0.31 dB, +11 %; docs/DENSE_RESULTS.md 2.1).
D_DETAIL_SIGMA = 1.5
D_DETAIL_GAIN = 1.0
SIDE_BY_SIDE_PNG = "restore_side_by_side.png"


# --------------------------------------------------------------------------------------------
# Network plumbing
# --------------------------------------------------------------------------------------------

def generator_input(packed: torch.Tensor, variance: torch.Tensor, variance_scale: float = VARIANCE_SCALE):
    """``concat(packed, variance_scale * variance)``: the generator's 8 input channels."""
    return torch.cat([packed, variance * variance_scale], dim=1)


def bilinear_base(packed: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaic (the ISP's torch twin) of packed RGGB raw: ``N x 4 x h x w`` -> camera RGB
    ``N x 3 x 2h x 2w``, the starting point a ``residual`` generator corrects."""
    from ..torch.isp import demosaic_bilinear
    from ..torch.tensors import unpack

    return demosaic_bilinear(unpack(packed.float(), "RGGB"), cfa="RGGB")


def apply_gains(rgb: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Camera RGB (``N x 3 x H x W``) times per-image white-balance gains (``N x 3``)."""
    return rgb * gains.to(rgb)[:, :, None, None]


def generate_batch(model, batch: dict, *, variance_scale: float = VARIANCE_SCALE, residual: bool = False):
    """The generator's white-balanced linear RGB for a batch of :class:`rawcv.data.restore.RestorePairs`
    (``input``, ``variance``, ``gains``); ``residual``: its output corrects the bilinear demosaic."""
    y = model(generator_input(batch["input"], batch["variance"], variance_scale))
    if residual:
        y = y + bilinear_base(batch["input"])
    return apply_gains(y, batch["gains"])


def display_view(x: torch.Tensor, *, value_range: str = DEFAULT_D_RANGE) -> torch.Tensor:
    """What the discriminator sees of a linear image: its sRGB encoding, continued outside [0, 1]
    (``value_range="extended"``: ``12.92 x`` below 0, the power law above 1) or of the image
    clipped to [0, 1] first (``"clipped"``).

    Examples
    --------
    >>> x = torch.tensor([-0.01, 0.0, 0.18, 1.0, 1.2])
    >>> [round(v, 4) for v in display_view(x).tolist()]
    [-0.1292, 0.0, 0.4614, 1.0, 1.0833]
    >>> [round(v, 4) for v in display_view(x, value_range="clipped").tolist()]
    [0.0, 0.0, 0.4614, 1.0, 1.0]
    """
    from ..torch.isp import srgb_encode

    x = x.float()
    return srgb_encode(x.clamp(0.0, 1.0) if _check_d_range(value_range) == "clipped" else x)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel of ``N x C x H x W`` (radius ``3 sigma``, reflected
    borders: the torch twin of ``scipy.ndimage.gaussian_filter(..., truncate=3, mode="mirror")``).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 9, 9); x[0, 0, 4, 4] = 1.0
    >>> y = gaussian_blur(x, 1.0)
    >>> round(float(y.sum()), 5), bool(y[0, 0, 4, 4] > y[0, 0, 4, 5] > y[0, 0, 4, 6])
    (1.0, True)
    """
    radius = max(1, int(3.0 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _check_d_view(view: str) -> str:
    if view not in D_VIEWS:
        raise TrainingError(f"unknown discriminator view {view!r}: expected one of {', '.join(D_VIEWS)}")
    return view


def _check_d_range(value_range: str) -> str:
    if value_range not in D_RANGES:
        raise TrainingError(f"unknown discriminator value range {value_range!r}: expected one of {', '.join(D_RANGES)}")
    return value_range


def _check_d_detail_gain(gain: float) -> float:
    if not float(gain) > 0:
        raise TrainingError(f"the discriminator's detail gain must be positive, got {gain}")
    return float(gain)


def _trained_view(cfg: dict) -> tuple:
    """``(d_view, d_range, d_detail_gain)``: how a checkpoint's discriminator saw its pairs."""
    return tuple(cfg.get(key) or before for key, before in _BEFORE_OPTION.items())


def discriminator_channels(view: str = DEFAULT_D_VIEW) -> int:
    """Input channels of the discriminator for ``view``: 4 + 3 (``display``), 4 + 3 + 3 (``display+detail``)."""
    return 7 if _check_d_view(view) == "display" else 10


def discriminator_pair(packed: torch.Tensor, image: torch.Tensor, *, view: str = DEFAULT_D_VIEW,
                       value_range: str = DEFAULT_D_RANGE, detail_gain: float = D_DETAIL_GAIN,
                       detail_sigma: float = D_DETAIL_SIGMA) -> torch.Tensor:
    """``concat(condition, image)`` for the PatchGAN: the packed raw (4) upsampled (nearest) to the
    image's resolution and the RGB image (3), both as :func:`display_view`; ``view="display+detail"``
    adds the image's fine-detail band (3): ``detail_gain * (v - gaussian_blur(v, detail_sigma))``
    of its display values ``v``, so that the discriminator sees from its first steps what a
    smoothing generator loses (training uses the defaults, ``D_DETAIL_GAIN`` and ``D_DETAIL_SIGMA``).
    ``value_range`` says how :func:`display_view` treats values outside [0, 1]."""
    _check_d_view(view)
    cond = F.interpolate(packed.float(), size=image.shape[-2:], mode="nearest")
    shown = display_view(image, value_range=value_range)
    parts = [display_view(cond, value_range=value_range), shown]
    if view == "display+detail":
        parts.append(detail_gain * (shown - gaussian_blur(shown, detail_sigma)))
    return torch.cat(parts, dim=1)


def gan_criterion(kind: str):
    """``(prediction logits, is_real) -> loss``: BCE-with-logits or least squares (LSGAN)."""
    if kind == "bce":
        return lambda pred, real: F.binary_cross_entropy_with_logits(pred.float(), torch.full_like(
            pred.float(), 1.0 if real else 0.0))
    if kind == "lsgan":
        return lambda pred, real: F.mse_loss(pred.float(), torch.full_like(pred.float(), 1.0 if real else 0.0))
    raise TrainingError(f"unknown GAN loss {kind!r}: expected one of {', '.join(GAN_LOSSES)}")


def psnr(a, b, data_range: float = 1.0) -> float:
    """PSNR of two arrays clipped to ``[0, data_range]`` (skimage.metrics)."""
    from skimage.metrics import peak_signal_noise_ratio

    a = np.clip(np.asarray(a, np.float64), 0, data_range)
    b = np.clip(np.asarray(b, np.float64), 0, data_range)
    return float(peak_signal_noise_ratio(a, b, data_range=data_range))


def ssim(a, b, data_range: float = 1.0) -> float:
    """SSIM of two ``H x W x 3`` arrays clipped to ``[0, data_range]`` (skimage.metrics, per channel)."""
    from skimage.metrics import structural_similarity

    a = np.clip(np.asarray(a, np.float64), 0, data_range)
    b = np.clip(np.asarray(b, np.float64), 0, data_range)
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=-1))


def detail_band(image, *, sigma: float = 1.0) -> np.ndarray:
    """The finest detail of an ``H x W x 3`` image in ``[0, 1]``: its channel mean minus a Gaussian blur of it.

    The band of :func:`high_frequency_detail`; ``0.5 + gain * band`` shows it as an image.
    """
    from scipy.ndimage import gaussian_filter

    luma = np.clip(np.asarray(image, np.float64), 0, 1).mean(axis=-1)
    return luma - gaussian_filter(luma, sigma, mode="reflect")


def high_frequency_detail(image, reference, *, sigma: float = 1.0) -> dict:
    """How much of ``reference``'s fine detail ``image`` has: a sharpness score beside PSNR / SSIM.

    Both ``H x W x 3`` arrays are clipped to ``[0, 1]`` and reduced to the mean of their channels;
    the detail band is what a Gaussian blur of ``sigma`` pixels removes, ``h = x - G * x``
    (:func:`detail_band`).

    Returns
    -------
    dict with ``detail_gain`` = <h(image), h(reference)> / <h(reference), h(reference)>,
    ``detail_energy`` = <h(image), h(image)> / <h(reference), h(reference)> and
    ``detail_invented`` = |h(image) - detail_gain * h(reference)|^2 / <h(reference), h(reference)>.
        A blurred image has a gain below 1 (the gain of ``a * reference + c`` is ``a``); noise
        independent of the reference leaves the gain unchanged but raises the energy, and so does
        invented texture (what a GAN adds): an energy near 1 with a gain below 1 is texture that
        looks sharp but is not the reference's. ``detail_invented`` is that part alone, the
        energy of the detail band orthogonal to the reference's (``energy = gain**2 + invented``):
        0 for any ``a * reference + c``, up for noise, artefacts and invented texture, so
        "sharper" (gain up) and "grainier" (invented up) can be told apart.

    Examples
    --------
    >>> ref = np.random.default_rng(0).random((32, 32, 3))
    >>> d = high_frequency_detail(0.5 * ref + 0.25, ref)
    >>> round(d["detail_gain"], 6), round(d["detail_energy"], 6), round(d["detail_invented"], 6)
    (0.5, 0.25, 0.0)
    """
    shapes = np.shape(image), np.shape(reference)
    if shapes[0] != shapes[1] or len(shapes[0]) != 3 or shapes[0][-1] != 3:
        raise ValueError(f"image and reference must be H x W x 3 of one shape, got {shapes[0]} and {shapes[1]}")
    h_img, h_ref = detail_band(image, sigma=sigma), detail_band(reference, sigma=sigma)
    ref_energy = max(float(np.vdot(h_ref, h_ref)), np.finfo(np.float64).tiny)
    gain = float(np.vdot(h_img, h_ref)) / ref_energy
    # the residual itself, not energy - gain**2: no cancellation when both are large
    invented = h_img - gain * h_ref
    return {"detail_gain": gain,
            "detail_energy": float(np.vdot(h_img, h_img)) / ref_energy,
            "detail_invented": float(np.vdot(invented, invented)) / ref_energy}


# --------------------------------------------------------------------------------------------
# Task and trainer
# --------------------------------------------------------------------------------------------

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
    ``target``, ``gains``). ``last.pt`` also holds ``discriminator`` (its weights),
    ``discriminator_config`` and ``d_optimizer``; ``best.pt`` holds the generator (what
    prediction needs) selected on the validation L1.
    """

    def __init__(self, model, task, train_loader, val_loader=None, *, discriminator: Optional[nn.Module] = None,
                 gan_loss: str = "bce", l1_weight: float = L1_WEIGHT, variance_scale: float = VARIANCE_SCALE,
                 beta1: float = 0.5, d_lr_ratio: float = 1.0, residual: bool = False,
                 d_view: str = DEFAULT_D_VIEW, d_range: str = DEFAULT_D_RANGE,
                 d_detail_gain: float = D_DETAIL_GAIN, **kwargs):
        self.beta1 = float(beta1)
        self.d_view = _check_d_view(d_view)
        self.d_range = _check_d_range(d_range)
        self.d_detail_gain = _check_d_detail_gain(d_detail_gain)
        self.residual = bool(residual)
        self.l1_weight = float(l1_weight)
        self.variance_scale = float(variance_scale)
        self.gan_loss = gan_loss
        self.criterion = gan_criterion(gan_loss) if discriminator is not None else None
        self.d_lr_ratio = float(d_lr_ratio)
        super().__init__(model, task, train_loader, val_loader, **kwargs)
        self.discriminator = discriminator.to(self.device) if discriminator is not None else None
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

    def _pair(self, batch, image):
        return discriminator_pair(batch["input"], image, view=self.d_view, value_range=self.d_range,
                                  detail_gain=self.d_detail_gain)

    def train_step(self, batch):
        batch = self._to_device(batch)
        target = batch["target"]
        with self._autocast():
            fake = self._generate(batch, self.forward_model)
            l1 = F.l1_loss(fake.float(), target.float())
        g_loss = self.l1_weight * l1
        if self.discriminator is not None:
            D, crit = self.discriminator, self.criterion
            for p in D.parameters():
                p.requires_grad_(True)
            # Real and fake pairs go through D in ONE batch: with two separate batches its
            # BatchNorm normalises each by its own statistics and erases what tells them apart
            # when that is a statistic (a noise level, a loss of fine texture); D then sits at
            # chance (measured: noisy vs clean pairs stayed at D = 0.50 for 100 steps, and were
            # told apart within 40 steps as one batch).
            real_pair = self._pair(batch, target)
            with self._autocast():
                pred_fake, pred_real = D(torch.cat([self._pair(batch, fake.detach()), real_pair])).chunk(2)
                d_loss = 0.5 * (crit(pred_fake, False) + crit(pred_real, True))
            self.d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_optimizer.step()
            for p in D.parameters():
                p.requires_grad_(False)
            with self._autocast():
                # the same joint batch (same BatchNorm statistics); only the fake half is scored
                pred = D(torch.cat([self._pair(batch, fake), real_pair])).chunk(2)[0]
                g_adv = crit(pred, True)
            g_loss = g_loss + g_adv
            with torch.no_grad():
                s = self._gan_sums
                n = int(target.shape[0])
                real_score = torch.sigmoid(pred_real.float()) if self.gan_loss == "bce" else pred_real.float()
                fake_score = torch.sigmoid(pred_fake.float()) if self.gan_loss == "bce" else pred_fake.float()
                for key, value in (("d_loss", d_loss), ("g_adv", g_adv), ("d_real", real_score.mean()),
                                   ("d_fake", fake_score.mean())):
                    s[key] = s.get(key, 0.0) + float(value) * n
                s["n"] = s.get("n", 0) + n
            for p in D.parameters():
                p.requires_grad_(True)
        self.optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return l1.detach(), fake.detach(), target

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
                         discriminator_config=dict(getattr(self.discriminator, "rawcv_config", {}) or {}),
                         d_optimizer=self.d_optimizer.state_dict())
        return super().save_last(path, **extra)

    def resume(self, path=None) -> dict:
        ckpt = super().resume(path)
        if self.discriminator is not None:
            if "discriminator" not in ckpt:
                raise CheckpointError(f"{ckpt['path']}: holds no discriminator (an --l1-only run?); resume it "
                                      "with --l1-only")
            load_discriminator_state(self.discriminator, ckpt)
            if ckpt.get("d_optimizer") is not None:
                self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
        return ckpt


def load_discriminator_state(discriminator: nn.Module, ckpt: dict) -> None:
    """Load ``ckpt["discriminator"]`` into ``discriminator`` (a clear error if it does not fit)."""
    try:
        discriminator.load_state_dict(ckpt["discriminator"])
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: its discriminator does not fit "
                              f"({str(exc).splitlines()[0]})") from None


def build_discriminator(ckpt: dict, device="cpu") -> nn.Module:
    """The discriminator of a GAN ``last.pt`` (rebuilt from ``discriminator_config``, weights loaded)."""
    from ..models import create_model

    cfg = ckpt.get("discriminator_config")
    if "discriminator" not in ckpt or not cfg:
        raise CheckpointError(f"{ckpt.get('path', '<checkpoint>')}: holds no discriminator")
    d = create_model(cfg["name"], in_chans=cfg.get("in_chans"), num_classes=cfg.get("num_classes"),
                     kwargs=cfg.get("kwargs") or {})
    load_discriminator_state(d, ckpt)
    return d.to(device)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def _check_task(ckpt: dict) -> None:
    require_task(ckpt, TASK, "a restoration model")


def train_restorer(out, *, data=None, model: Optional[str] = None, model_kwargs: Optional[dict] = None,
                   discriminator: str = DEFAULT_DISCRIMINATOR, disc_kwargs: Optional[dict] = None,
                   l1_only: bool = False, gan_loss: str = "bce", l1_weight: float = L1_WEIGHT,
                   d_view: str = DEFAULT_D_VIEW, d_range: str = DEFAULT_D_RANGE, d_detail_gain: float = D_DETAIL_GAIN,
                   noise="1e-3:1.2e-2", crop: int = 128, train_size: int = 1024, val_size: int = 64,
                   sources: str = "mixed", photo_fraction: float = 0.5, variance_scale: float = VARIANCE_SCALE,
                   residual: bool = True, epochs: int = 10, batch_size: int = 8, lr: Optional[float] = 2e-4,
                   beta1: float = 0.5,
                   d_lr_ratio: float = 1.0, optimizer: str = "adam", schedule: str = "cosine",
                   weight_decay: float = 0.0, momentum: float = 0.9, device="auto", seed: int = 0, workers: int = 0,
                   patience: Optional[int] = None, ema: Optional[float] = None, compile: bool = False, init=None,
                   resume: bool = False,
                   overwrite: bool = False, max_batches: Optional[int] = None, progress: Optional[bool] = None,
                   log=None):
    """Train a restoration generator (pix2pix GAN, or ``l1_only``); the run folder is ``out``.

    Parameters
    ----------
    data : path, optional
        A ``rawcv synth --task restore`` dataset: train on random ``crop`` crops of its ``train``
        split, validate on centre crops of its ``val`` split. Default: pairs made on the fly
        (:class:`rawcv.data.restore.RestorePairs`), ``train_size`` new ones every epoch and a
        fixed validation set of ``val_size``.
    model, model_kwargs : generator name and keywords (default ``unet_generator``, ``base_width=16``).
    discriminator, disc_kwargs : default ``patchgan70`` with ``base_width=32`` (receptive field 70).
    l1_only : bool
        No discriminator: the generator is trained on ``l1_weight * L1`` alone.
    gan_loss : {"bce", "lsgan"}
    d_view : {"display+detail", "display"}
        What the discriminator sees of each (condition, image) pair (:func:`discriminator_pair`):
        both sRGB-encoded, plus (default) the image's fine-detail band; ``"display"``
        is the pair alone (runs made before the detail band existed).
    d_range : {"extended", "clipped"}
        How the sRGB curve the discriminator sees treats values outside [0, 1]
        (:func:`display_view`): continued (default), or clipped first, which hides a generator's
        values below 0 from it (runs made before the option; they left noise in black areas).
    d_detail_gain : float
        Gain of the fine-detail band in the ``display+detail`` view (default
        ``D_DETAIL_GAIN`` = 1; runs before the option used 4, which cost more PSNR for a little
        more detail, docs/DENSE_RESULTS.md 2.1).
    noise : str
        Noise of the on-the-fly pairs: ``"high"`` (lambda_shot 0.012), a range such as
        ``"1e-3:1.2e-2"`` (default), ... (:func:`rawcv.synth.parse_noise`).
    crop : int
        Training (and validation) image side in pixels.
    residual : bool
        The generator predicts a correction added to the bilinear demosaic of the noisy input
        (default; much faster to train than predicting the image from scratch).
    ema : float, optional
        Decay of a moving average of the weights that validation and the checkpoints use
        (:class:`~rawcv.train.engine.TrainConfig`), e.g. 0.999.
    init : path, optional
        Start the generator from a restoration checkpoint (e.g. an L1-only run before the GAN);
        a GAN run started from a GAN's ``last.pt`` with the same discriminator also starts that
        discriminator from it (its optimiser and schedule start afresh, unlike ``resume``).

    Returns
    -------
    FitResult
    """
    from ..data.restore import RestorePairs, SynthRestoreSet, TARGET_DESCRIPTION, TARGET_SPACE, fresh_loader
    from ..models import create_model
    from .classify import _write_run_info
    from .engine import make_loader

    out = Path(out)
    say = log or (lambda line: print(line, flush=True))
    _check_d_view(d_view)
    _check_d_range(d_range)
    _check_d_detail_gain(d_detail_gain)
    if gan_loss not in GAN_LOSSES:
        raise TrainingError(f"unknown --gan-loss {gan_loss!r}: expected one of {', '.join(GAN_LOSSES)}")
    if int(crop) < 32 or int(crop) % 2:
        raise TrainingError(f"--crop must be an even number >= 32, got {crop}")
    base_ckpt = starting_checkpoint(out, resume=resume, init=init, overwrite=overwrite, check=_check_task)
    model, model_kwargs = checkpoint_architecture(base_ckpt, model, model_kwargs, resume=resume)
    if base_ckpt is not None:
        cfg = base_ckpt["config"]
        residual = bool(cfg.get("residual", False)) if (resume or init) else residual
        if resume:
            variance_scale = float(cfg.get("variance_scale", variance_scale))
            l1_only = cfg.get("mode") == "l1"
            gan_loss = cfg.get("gan_loss") or gan_loss
            d_view, d_range, d_detail_gain = _trained_view(cfg)
            dcfg = cfg.get("discriminator") or {}
            if dcfg:
                discriminator, disc_kwargs = dcfg["name"], dict(dcfg.get("kwargs") or {})
        elif float(cfg.get("variance_scale", variance_scale)) != float(variance_scale):
            variance_scale = float(cfg["variance_scale"])
    model = model or DEFAULT_GENERATOR
    if base_ckpt is None and model == DEFAULT_GENERATOR:
        model_kwargs = {**DEFAULT_GENERATOR_KWARGS, **(model_kwargs or {})}
    if not resume and discriminator == DEFAULT_DISCRIMINATOR:
        disc_kwargs = {**DEFAULT_DISCRIMINATOR_KWARGS, **(disc_kwargs or {})}
    require_model_task(model, "restore_generator", "restoration generators", in_chans=GENERATOR_CHANNELS,
                       kwargs=model_kwargs)
    if not l1_only:
        require_model_task(discriminator, "restore_discriminator", "discriminators",
                           in_chans=discriminator_channels(d_view), kwargs=disc_kwargs)

    config = TrainConfig(epochs=epochs, lr=lr, optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                         momentum=momentum, patience=patience, ema=ema, device=device, seed=seed, compile=compile,
                         progress=progress, max_batches=max_batches)
    dev = resolve_device(device)
    if data is not None:
        train_ds = SynthRestoreSet(data, "train", crop=crop, random_crop=True)
        val_ds = SynthRestoreSet(data, "val", crop=crop)
        if len(train_ds) == 0:
            raise TrainingError(f"{data}: the dataset has no 'train' items")
        train_loader, val_loader = make_loaders(train_ds, val_ds, batch_size=batch_size, workers=workers,
                                                device=dev, seed=seed)
        source = "synth"
    else:
        train_ds = RestorePairs(train_size, split="train", seed=seed, size=crop, noise=noise, sources=sources,
                                photo_fraction=photo_fraction)
        val_ds = RestorePairs(val_size, split="val", seed=seed, size=crop, noise=noise, sources=sources,
                              photo_fraction=photo_fraction) if val_size else None
        train_loader = fresh_loader(train_ds, batch_size=batch_size, workers=workers, device=dev, seed=seed)
        val_loader = make_loader(val_ds, batch_size=batch_size, workers=workers, device=dev, seed=seed) \
            if val_ds is not None else None
        source = "on-the-fly"

    seed_everything(seed)
    net = create_model(model, in_chans=GENERATOR_CHANNELS, num_classes=3, **(model_kwargs or {}))
    if init and not resume:
        load_state_dict(net, base_ckpt)
        say(f"initialised the generator from {base_ckpt['path']}")
    disc = None
    if not l1_only:
        disc = create_model(discriminator, in_chans=discriminator_channels(d_view), num_classes=1,
                            **(disc_kwargs or {}))
        if init and not resume and "discriminator" in base_ckpt \
                and base_ckpt.get("discriminator_config") == disc.rawcv_config \
                and _trained_view(base_ckpt["config"]) == (d_view, d_range, float(d_detail_gain)):
            # A GAN started from a GAN's last.pt keeps its discriminator: a fresh PatchGAN needs
            # thousands of steps before it tells a good generator's output from ground truth.
            load_discriminator_state(disc, base_ckpt)
            say(f"initialised the discriminator from {base_ckpt['path']}")
    ckpt_config = {"task": TASK, "mode": "l1" if l1_only else "gan", "layout": "packed",
                   "target": TARGET_SPACE, "target_description": TARGET_DESCRIPTION,
                   "variance_scale": float(variance_scale), "residual": bool(residual),
                   "noise": str(noise), "crop": int(crop),
                   "gan_loss": None if l1_only else gan_loss, "l1_weight": float(l1_weight),
                   "discriminator": None if disc is None else disc.rawcv_config,
                   "d_view": None if disc is None else d_view,
                   "d_range": None if disc is None else d_range,
                   "d_detail_gain": None if disc is None else float(d_detail_gain),
                   "input": "packed RGGB raw (R, G1, G2, B), (x - black) / (white - black), + "
                            f"{variance_scale:g} * (lambda_shot * max(x, 0) + lambda_read)",
                   "sources": sources if data is None else str(data)}
    trainer = RestoreTrainer(net, RestorationTask(), train_loader, val_loader, discriminator=disc,
                             gan_loss=gan_loss, l1_weight=l1_weight, variance_scale=variance_scale, beta1=beta1,
                             d_lr_ratio=d_lr_ratio, residual=residual, d_view=d_view, d_range=d_range,
                             d_detail_gain=d_detail_gain,
                             config=config, out_dir=out, checkpoint_config=ckpt_config, log=say)
    n_g = sum(p.numel() for p in net.parameters())
    n_d = sum(p.numel() for p in disc.parameters()) if disc is not None else 0
    say(f"{model} ({n_g:,} parameters)" + (f" + {discriminator} ({n_d:,})" if disc is not None else ", L1 only")
        + f" on {dev.type}: {len(train_ds)} training pairs per epoch ({source}, {crop}x{crop}, noise {noise}), "
          f"{len(val_ds) if val_ds is not None else 0} validation pairs")
    out.mkdir(parents=True, exist_ok=True)
    _write_run_info(out, data=data if data is not None else f"on-the-fly ({sources})", source=source, model=model,
                    model_kwargs=model_kwargs, config=config, ckpt_config=ckpt_config, init=init, freeze=None,
                    batch_size=batch_size, workers=workers, val_fraction=None, augment=None, resume=resume,
                    discriminator=discriminator if disc is not None else None, disc_kwargs=disc_kwargs,
                    train_size=train_size, val_size=val_size)
    return fit_and_report(trainer, resume=resume, metric="psnr", label="PSNR", loss_name="L1", loss_format=".5f",
                          value_format=".2f", unit=" dB (linear)")


# --------------------------------------------------------------------------------------------
# Tiled inference
# --------------------------------------------------------------------------------------------

def _axis_starts(n: int, tile: int, overlap: int) -> tuple:
    if n <= tile:
        return [0], n
    stride = tile - overlap
    starts = list(range(0, n - tile, stride)) + [n - tile]
    return starts, tile


def _ramp(length: int, before: bool, after: bool, overlap: int, dtype, device) -> torch.Tensor:
    """1-D blending weights of a tile: 0 in the outer quarter of the overlap next to a neighbouring
    tile, a linear ramp over the middle half, 1 inside."""
    w = torch.ones(length, dtype=dtype, device=device)
    if overlap <= 0:
        return w
    t = torch.arange(length, dtype=dtype, device=device) + 0.5
    margin, ramp = overlap / 4.0, overlap / 2.0
    if before:
        w = torch.minimum(w, ((t - margin) / ramp).clamp(0, 1))
    if after:
        w = torch.minimum(w, ((length - t - margin) / ramp).clamp(0, 1))
    return w


def tiled_apply(fn, x: torch.Tensor, *, tile: int = 128, overlap: int = 16, align: int = 1, scale: int = 1):
    """Apply a fully-convolutional ``fn`` to ``x`` (``N x C x h x w``) tile by tile.

    Tiles of ``tile`` input pixels overlap by ``overlap``; each output pixel is a weighted mean of
    the tiles covering it, with weights that are zero within ``overlap / 4`` of a tile edge shared
    with another tile and ramp to one over the next ``overlap / 2``. So when ``fn``'s receptive
    field reaches less than ``overlap / 4`` pixels, the result equals ``fn(x)`` (to rounding).
    ``align``: tile origins are multiples of it (a U-Net's ``2**depth``, so its pooling grid is the
    same in every tile); ``x`` is replicate-padded at the bottom/right to a multiple of it, as the
    U-Net itself does. ``scale``: output size / input size (2 for packed raw -> RGB).
    """
    n, c, h, w = x.shape
    align = max(int(align), 1)
    tile = max(int(tile) // align * align, align)
    overlap = min(int(math.ceil(int(overlap) / align)) * align, tile - align)
    ph, pw = (-h) % align, (-w) % align
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    H, W = x.shape[-2:]
    ys, th = _axis_starts(H, tile, overlap)
    xs, tw = _axis_starts(W, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return fn(x)[..., :h * scale, :w * scale]
    out = wsum = None
    dtype = torch.promote_types(x.dtype, torch.float32)     # float32, or float64 for a float64 input
    for y0 in ys:
        wy = _ramp(th * scale, y0 > 0, y0 + th < H, overlap * scale, dtype, x.device)
        for x0 in xs:
            wx = _ramp(tw * scale, x0 > 0, x0 + tw < W, overlap * scale, dtype, x.device)
            o = fn(x[..., y0:y0 + th, x0:x0 + tw]).to(dtype)
            if out is None:
                out = torch.zeros((n, o.shape[1], H * scale, W * scale), dtype=dtype, device=x.device)
                wsum = torch.zeros((H * scale, W * scale), dtype=dtype, device=x.device)
            weight = wy[:, None] * wx[None, :]
            ys_, xs_ = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            out[..., ys_, xs_] += o * weight
            wsum[ys_, xs_] += weight
    return (out / wsum)[..., :h * scale, :w * scale]


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------

def load_restorer(weights, device="auto"):
    """``(generator, ckpt, device)`` of a restoration checkpoint (file or run folder), in eval mode."""
    return load_trained(weights, device, check=_check_task)


def generator_options(ckpt: dict) -> dict:
    """The :func:`restore_packed` keywords a trained generator was trained with (its checkpoint's
    ``variance_scale`` and ``residual``)."""
    cfg = ckpt["config"]
    return {"variance_scale": float(cfg.get("variance_scale", VARIANCE_SCALE)),
            "residual": bool(cfg.get("residual", False))}


def restore_packed(model, packed, variance, gains, *, variance_scale: float = VARIANCE_SCALE, tile: int = 128,
                   overlap: int = 16, residual: bool = False, self_ensemble: bool = False,
                   device="cpu") -> np.ndarray:
    """Run the generator on one packed image (``4 x h x w`` arrays); returns the white-balanced
    linear camera RGB ``2h x 2w x 3`` (float32). ``tile`` / ``overlap`` are in packed pixels;
    ``residual``: the generator's output is added to the bilinear demosaic (of the whole image);
    ``self_ensemble``: the mean over the 8 Bayer-preserving flips and transposes
    (:func:`rawcv.torch.augment.bayer_self_ensemble`), 8x the time."""
    from ..torch.augment import bayer_self_ensemble

    dev = torch.device(device)
    p = torch.as_tensor(np.asarray(packed, np.float32))[None].to(dev)
    v = torch.as_tensor(np.asarray(variance, np.float32))[None].to(dev)
    g = torch.as_tensor(np.asarray(gains, np.float32).reshape(1, 3)).to(dev)
    align = 2 ** int(getattr(model, "depth", 0))

    def camera_rgb(p, v):
        y = tiled_apply(model, generator_input(p, v, variance_scale), tile=tile, overlap=overlap, align=align,
                        scale=2).float()
        return y + bilinear_base(p) if residual else y

    with inference(dev):
        y = bayer_self_ensemble(camera_rgb, p, v) if self_ensemble else camera_rgb(p, v)
    y = apply_gains(y, g)
    return np.ascontiguousarray(y[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32)


def noise_for(raw, noise=None):
    """``(lambda_shot, lambda_read, how)``: from ``noise`` (a fixed spec), the file's NoiseProfile,
    or estimated from the frame (:func:`rawcv.synth.estimate`)."""
    from ..data.restore import noise_from_meta
    from ..synth import NoiseParams, estimate, parse_noise

    if noise is not None and str(noise).lower() != "auto":
        try:
            p = parse_noise(noise)
        except ValueError as exc:
            raise RawcvError(f"bad --noise {noise!r}: {exc}") from None
        if not isinstance(p, NoiseParams):
            raise RawcvError(f"--noise {noise!r} is a range; prediction needs one level (e.g. high or 0.012)")
        return p.lambda_shot, p.lambda_read, "given"
    found = noise_from_meta(raw.meta)
    if found is not None:
        return found[0], found[1], "NoiseProfile"
    try:
        est = estimate(raw)
    except ValueError as exc:
        raise RawcvError(f"{raw.path or '<memory>'}: no NoiseProfile and the noise cannot be estimated ({exc}); "
                         "give --noise") from None
    if not (np.isfinite(est.lambda_shot) and np.isfinite(est.lambda_read)):
        raise RawcvError(f"{raw.path or '<memory>'}: no NoiseProfile and the noise estimate failed; give --noise")
    return float(est.lambda_shot), float(est.lambda_read), "estimated"


def restore_raw(model, ckpt, raw, *, noise=None, tile: int = 256, overlap: int = 32, self_ensemble: bool = False,
                device="cpu") -> tuple:
    """Restore a RAW capture: ``(white-balanced linear camera RGB H x W x 3, info)``.

    ``tile`` / ``overlap`` are in sensor pixels; ``self_ensemble``: see :func:`restore_packed`.
    Non-RGGB files are cropped to an RGGB phase for the network and the missing border row/column
    filled by repeating the edge.
    """
    from ..data.restore import packed_variance, restore_input
    from ..isp import normalize_gains

    packed, (dy, dx), (h, w) = restore_input(raw)
    ls, lr, how = noise_for(raw, noise)
    gains = np.asarray(normalize_gains(raw.meta.as_shot_wb), dtype=np.float32)
    rgb = restore_packed(model, packed, packed_variance(packed, ls, lr), gains, **generator_options(ckpt),
                         self_ensemble=self_ensemble, tile=max(int(tile) // 2, 8),
                         overlap=max(int(overlap) // 2, 0), device=device)
    if rgb.shape[:2] != (h, w):
        ph, pw = rgb.shape[0], rgb.shape[1]
        rgb = np.pad(rgb, ((dy, h - dy - ph), (dx, w - dx - pw), (0, 0)), mode="edge")
    return rgb, {"lambda_shot": ls, "lambda_read": lr, "noise_source": how, "gains": gains.tolist()}


def output_stages(pipeline="default"):
    """The stages of ``pipeline`` after its demosaic stage, without denoising: the display path
    (``default``: vignetting, colour matrix, sRGB curve, 8-bit) or the linear one (``linear``:
    the colour matrix to linear sRGB) that the restored image goes through."""
    from ..data import resolve_pipeline

    pipe = resolve_pipeline(pipeline)
    names = [s.name for s in pipe.stages]
    if "demosaic" not in names:
        raise RawcvError(f"pipeline {pipe.name!r} has no demosaic stage: cannot tell where the restored "
                         "image joins it")
    return [s for s in pipe.stages[names.index("demosaic") + 1:] if s.name != "denoise"]


def camera_to_output(rgb, meta, pipeline="default", *, quantize: bool = True) -> np.ndarray:
    """Run white-balanced linear camera RGB through :func:`output_stages` (the ISP's own stages).

    ``quantize=False`` stops before a ``quantize`` stage (float display values for metrics).
    """
    from ..pipeline.frame import RGB, Frame

    frame = Frame(data=np.ascontiguousarray(rgb, dtype=np.float32), kind=RGB, meta=meta)
    for stage in output_stages(pipeline):
        if stage.name == "quantize" and not quantize:
            break
        frame = stage.apply(frame)
    return frame.data


def _output_path(path: Path, output, linear: bool, multiple: bool) -> Path:
    if output is None:
        raise RawcvError("give -o/--out (a file, or a folder for several inputs)")
    o = Path(output)
    if multiple or o.is_dir() or str(output).endswith(("/", "\\")):
        return o / (path.stem + (".tiff" if linear else ".png"))
    return o


def predict_restore_files(weights, files, output, *, linear: bool = False, pipeline: Optional[str] = None,
                          noise=None, tile: int = 256, overlap: int = 32, self_ensemble: bool = False,
                          overwrite: bool = False, device="auto"):
    """Restore RAW files and write them (display PNG/TIFF/JPEG through ``pipeline``, default
    ``default``; or with ``linear`` float32 TIFF/NPY through the ``linear`` pipeline's stages:
    linear sRGB). Yields ``(input path, output path or RawcvError, info)`` per file."""
    from ..io import read
    from ..io.writers import write_image
    from .classify import collect_files

    model, ckpt, dev = load_restorer(weights, device)
    paths = collect_files(files)
    pipeline = pipeline or ("linear" if linear else "default")
    for path in paths:
        try:
            target = _output_path(Path(path), output, linear, len(paths) > 1)
            if linear and target.suffix.lower() not in (".tif", ".tiff", ".npy"):
                raise RawcvError(f"{target}: --linear writes float32 .tiff or .npy")
            if target.exists() and not overwrite:
                raise OutputExistsError(f"{target}: exists (use --overwrite to replace it)")
            raw = read(path)
            t0 = time.perf_counter()
            rgb, info = restore_raw(model, ckpt, raw, noise=noise, tile=tile, overlap=overlap,
                                    self_ensemble=self_ensemble, device=dev)
            image = camera_to_output(rgb, raw.meta, pipeline)
            if linear:
                image = np.asarray(image, dtype=np.float32)
            elif image.dtype not in (np.uint8, np.uint16) and target.suffix.lower() in (".png", ".jpg", ".jpeg"):
                raise RawcvError(f"pipeline {pipeline!r} does not quantise; write .tiff/.npy or use --linear")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_image(target, image, overwrite=overwrite)
            info["seconds"] = round(time.perf_counter() - t0, 3)
            yield str(path), str(target), info
        except RawcvError as exc:
            yield str(path), exc, {}
        except (RuntimeError, ValueError) as exc:
            yield str(path), RawcvError(f"{path}: cannot restore ({str(exc).splitlines()[0]})"), {}


# --------------------------------------------------------------------------------------------
# Classical baselines
# --------------------------------------------------------------------------------------------

def gat(x, lambda_shot: float, lambda_read: float) -> np.ndarray:
    """Generalised Anscombe transform for ``var(x) = lambda_shot * x + lambda_read``.

    With ``z = x / lambda_shot`` (Poisson-like counts) and ``sigma^2 = lambda_read / lambda_shot^2``,
    ``f(z) = 2 sqrt(max(z + 3/8 + sigma^2, 0))``: noise of (approximately) unit variance.
    """
    ls = float(lambda_shot)
    if ls <= 0:
        raise ValueError("the generalised Anscombe transform needs lambda_shot > 0")
    z = np.asarray(x, dtype=np.float64) / ls
    s2 = float(lambda_read) / ls ** 2
    return 2.0 * np.sqrt(np.maximum(z + 0.375 + s2, 0.0))


def gat_inverse(d, lambda_shot: float, lambda_read: float, *, method: str = "unbiased") -> np.ndarray:
    """Inverse of :func:`gat`.

    ``algebraic``: the exact inverse of the forward map, ``(d / 2)^2 - 3/8 - sigma^2``;
    ``unbiased``: the closed-form approximation of the exact unbiased inverse (Makitalo & Foi
    2013), ``d^2/4 + sqrt(3/2)/(4 d) - 11/(8 d^2) + 5 sqrt(3/2)/(8 d^3) - 1/8 - sigma^2``, which
    maps the *mean* of the transformed noisy data back to the clean value (what a denoiser's
    output estimates); clipped at 0.
    """
    ls = float(lambda_shot)
    s2 = float(lambda_read) / ls ** 2
    d = np.asarray(d, dtype=np.float64)
    if method == "algebraic":
        z = (d / 2.0) ** 2 - 0.375 - s2
    elif method == "unbiased":
        d = np.maximum(d, 0.8)
        c = math.sqrt(1.5)
        z = 0.25 * d ** 2 + 0.25 * c / d - 1.375 / d ** 2 + 0.625 * c / d ** 3 - 0.125 - s2
        z = np.maximum(z, 0.0)
    else:
        raise ValueError(f"unknown inverse {method!r}: expected 'algebraic' or 'unbiased'")
    return z * ls


NLM_DEFAULTS = {"patch_size": 5, "patch_distance": 6, "h": 0.6}   # h tuned on validation pairs at high noise


def baseline_nlm_vst(mosaic, gains, lambda_shot, lambda_read, *, cfa: str = "RGGB", **nlm) -> np.ndarray:
    """scikit-image non-local means after a variance-stabilising transform, then bilinear demosaic.

    The packed planes are transformed with :func:`gat` (unit noise), denoised together with
    ``denoise_nl_means(..., sigma=1, fast_mode=True)`` (``patch_size 5``, ``patch_distance 6``,
    ``h 0.6`` by default, chosen on validation pairs at high noise, not on the test pairs),
    transformed back with the unbiased inverse, unpacked, white balanced and demosaiced (the ISP's
    stages). Returns white-balanced camera RGB.
    """
    from skimage.restoration import denoise_nl_means

    from ..data.restore import pack_mosaic
    from ..torch.tensors import packed_positions

    params = {**NLM_DEFAULTS, **nlm}
    m = np.asarray(mosaic, dtype=np.float32)
    packed = pack_mosaic(m, cfa).transpose(1, 2, 0)
    if lambda_shot > 0:
        t = gat(packed, lambda_shot, lambda_read)
        den = denoise_nl_means(t, patch_size=params["patch_size"], patch_distance=params["patch_distance"],
                               h=params["h"], sigma=1.0, fast_mode=True, channel_axis=-1, preserve_range=True)
        packed = gat_inverse(den, lambda_shot, lambda_read).astype(np.float32)
    out = np.empty_like(m)
    for c, (dy, dx) in enumerate(packed_positions(cfa)):
        out[dy::2, dx::2] = packed[..., c]
    return _demosaic_wb(out, gains, cfa)


def _demosaic_wb(mosaic, gains, cfa="RGGB") -> np.ndarray:
    from .. import isp

    wb = isp.white_balance(np.ascontiguousarray(mosaic, dtype=np.float32), np.asarray(gains, np.float32), cfa=cfa)
    return np.asarray(isp.demosaic_bilinear(wb, cfa=cfa), dtype=np.float32)


def classical_baselines(mosaic, gains, lambda_shot, lambda_read, *, cfa: str = "RGGB", nlm: bool = True,
                        nlm_params: Optional[dict] = None) -> dict:
    """The classical outputs (white-balanced camera RGB) of one noisy normalised mosaic.

    ``bilinear``: no denoising; ``median3_mosaic`` / ``mean3_mosaic``: the ISP's 3x3 median / mean
    on the mosaic (same-colour neighbours, ``cfa=``) then bilinear demosaic; ``median3_rgb`` /
    ``mean3_rgb``: after demosaic; ``nlm_vst``: :func:`baseline_nlm_vst`.
    """
    from .. import isp

    m = np.ascontiguousarray(mosaic, dtype=np.float32)
    out = {"bilinear": _demosaic_wb(m, gains, cfa)}
    for method in ("median", "mean"):
        out[f"{method}3_mosaic"] = _demosaic_wb(isp.denoise(m, method=method, size=3, cfa=cfa), gains, cfa)
        out[f"{method}3_rgb"] = np.asarray(isp.denoise(out["bilinear"], method=method, size=3), dtype=np.float32)
    if nlm:
        out["nlm_vst"] = baseline_nlm_vst(m, gains, lambda_shot, lambda_read, cfa=cfa, **(nlm_params or {}))
    return out


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def _model_label(ckpt: dict, used: set) -> str:
    p = Path(ckpt["path"])
    base = p.parent.name if p.name in ("best.pt", "last.pt") else p.stem
    label = f"{ckpt['config'].get('mode', 'model')}:{base}"
    k = 2
    while label in used:
        label = f"{ckpt['config'].get('mode', 'model')}:{base}#{k}"
        k += 1
    used.add(label)
    return label


def _label_image(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    header = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(header, text[:max(4, img.shape[1] // 8)], (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([header, img], axis=0)


def side_by_side(rows, path, *, overwrite: bool = True) -> Path:
    """Write a grid PNG: ``rows`` is a list of lists of ``(label, uint8 H x W x 3)``."""
    from ..io.writers import write_image

    lines = []
    for row in rows:
        cells = []
        for label, img in row:
            cells.append(_label_image(np.asarray(img, np.uint8), label))
            cells.append(np.full((cells[-1].shape[0], 4, 3), 255, np.uint8))
        lines.append(np.concatenate(cells[:-1], axis=1))
        lines.append(np.full((4, lines[-1].shape[1], 3), 255, np.uint8))
    width = max(l.shape[1] for l in lines)
    lines = [np.pad(l, ((0, 0), (0, width - l.shape[1]), (0, 0)), constant_values=255) for l in lines[:-1]]
    return write_image(path, np.concatenate(lines, axis=0), overwrite=overwrite)


def evaluate_restore(weights: Sequence = (), *, data=None, split: str = "test", synthetic: Optional[int] = None,
                     noise="high", size: int = 256, seed: int = 0, sources: str = "mixed", baselines: bool = True,
                     nlm: bool = True, nlm_params: Optional[dict] = None, tile: int = 256, overlap: int = 32,
                     self_ensemble: bool = False, device="auto", out=None, n_show: int = 4,
                     progress: Optional[bool] = None) -> dict:
    """PSNR / SSIM (linear and sRGB) of restoration models and classical baselines on the same images.

    Parameters
    ----------
    weights : sequence of paths
        Restoration checkpoints (e.g. an L1-only and a GAN run); may be empty (baselines only).
    data : path, optional
        A ``rawcv synth`` dataset (its ``split``); else ``synthetic`` pairs made on the fly
        (:class:`~rawcv.data.restore.RestorePairs`, split ``test``, ``seed``, ``noise``, ``size``).
    self_ensemble : bool, default False
        Also report each model with the 8-fold Bayer-preserving self-ensemble (``LABEL x8``,
        :func:`rawcv.torch.augment.bayer_self_ensemble`) beside its plain output.
    out : path, optional
        Folder of ``eval_restore.json`` and ``restore_side_by_side.png`` (default: the first
        checkpoint's folder).

    Metrics: "linear" compares white-balanced linear camera RGB (the target), "srgb" the display
    values after the ``default`` pipeline's colour matrix and sRGB curve (before 8-bit
    quantisation); both clipped to [0, 1], ``data_range=1`` (skimage.metrics). SSIM is the mean
    over the three channels. ``detail_gain`` / ``detail_energy`` / ``detail_invented``
    (:func:`high_frequency_detail`, on the sRGB values) say how sharp the output is against the
    ground truth, which PSNR and SSIM barely tell apart, and how much of its fine texture is not
    the truth's: 1 / 1 / 0 for the ground truth itself.

    Returns
    -------
    dict with ``methods`` (name -> mean ``psnr_linear``, ``ssim_linear``, ``psnr_srgb``,
    ``ssim_srgb``, ``detail_gain``, ``detail_energy``, ``detail_invented``), ``seconds`` (mean per
    image: ``classical`` for all baselines together, and each model), ``per_image``, ``best_classical``, ``n``, ``png``, ``json``.
    """
    from ..data.restore import RestorePairs, SynthRestoreSet

    weights = list(weights or [])
    models, used = [], set()
    dev = resolve_device(device)
    for w in weights:
        m, ckpt, _ = load_restorer(w, dev)
        label = _model_label(ckpt, used)
        models.append((label, m, ckpt, False))
        if self_ensemble:
            models.append((f"{label} x8", m, ckpt, True))
    if data is not None:
        ds = SynthRestoreSet(data, split)
        where = f"split {split!r} of {data}"
        if len(ds) == 0:
            raise RawcvError(f"{data}: no items in split {split!r}")
    else:
        n = int(synthetic or 32)
        ds = RestorePairs(n, split="test", seed=seed, size=size, noise=noise, sources=sources)
        where = f"{n} synthetic {size}x{size} test pairs (seed {seed}, noise {noise}, sources {sources})"
    if out is None:
        if not models:
            raise RawcvError("give --out (no checkpoint folder to write the results into)")
        out = Path(models[0][2]["path"]).parent
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    iterator, _ = progress_bar(range(len(ds)), "eval restore", progress=progress)
    per_image, sums, times, grid = [], {}, {}, []
    for i in iterator:
        pair = ds.pair(i)
        outputs = {}
        if baselines:
            t0 = time.perf_counter()
            outputs.update(classical_baselines(pair.mosaic, pair.gains, pair.lambda_shot, pair.lambda_read,
                                               nlm=nlm, nlm_params=nlm_params))
            times["classical"] = times.get("classical", 0.0) + time.perf_counter() - t0
        for label, m, ckpt, ensemble in models:
            t0 = time.perf_counter()
            outputs[label] = restore_packed(m, pair.packed, pair.variance, pair.gains, **generator_options(ckpt),
                                            self_ensemble=ensemble, tile=max(tile // 2, 8),
                                            overlap=max(overlap // 2, 0), device=dev)
            times[label] = times.get(label, 0.0) + time.perf_counter() - t0
        gt_lin = pair.target
        gt_srgb = camera_to_output(gt_lin, pair.meta, "default", quantize=False)
        row = {"index": i, "source": pair.source, "lambda_shot": pair.lambda_shot, "lambda_read": pair.lambda_read}
        for name, img in outputs.items():
            srgb = camera_to_output(img, pair.meta, "default", quantize=False)
            vals = {"psnr_linear": psnr(img, gt_lin), "ssim_linear": ssim(img, gt_lin),
                    "psnr_srgb": psnr(srgb, gt_srgb), "ssim_srgb": ssim(srgb, gt_srgb),
                    **high_frequency_detail(srgb, gt_srgb)}
            row[name] = vals
            acc = sums.setdefault(name, {k: 0.0 for k in vals})
            for k, v in vals.items():
                acc[k] += v
        per_image.append(row)
        if len(grid) < n_show:
            grid.append((pair, outputs))
    n = len(ds)
    methods = {name: {k: v / n for k, v in acc.items()} for name, acc in sums.items()}
    classical = [k for k in methods if k not in {label for label, *_ in models} and k != "bilinear"]
    best = max(classical, key=lambda k: methods[k]["psnr_linear"]) if classical else None
    png = None
    if grid:
        rows = []
        for pair, outputs in grid:
            cells = [("noisy (bilinear)", camera_to_output(outputs.get("bilinear", _demosaic_wb(
                pair.mosaic, pair.gains)), pair.meta, "default"))]
            for base in ("median3", "mean3"):
                keys = [k for k in (f"{base}_mosaic", f"{base}_rgb") if k in methods]
                if keys:
                    k = max(keys, key=lambda q: methods[q]["psnr_linear"])
                    cells.append((k, camera_to_output(outputs[k], pair.meta, "default")))
            if "nlm_vst" in outputs:
                cells.append(("nlm_vst", camera_to_output(outputs["nlm_vst"], pair.meta, "default")))
            for label, *_ in models:
                cells.append((label, camera_to_output(outputs[label], pair.meta, "default")))
            cells.append(("ground truth", camera_to_output(pair.target, pair.meta, "default")))
            rows.append(cells)
        png = str(side_by_side(rows, out / SIDE_BY_SIDE_PNG))
    result = {"where": where, "n": n, "weights": [str(ckpt["path"]) for _, _, ckpt, ens in models if not ens],
              "models": [label for label, *_ in models], "methods": methods, "best_classical": best,
              "seconds": {k: v / max(n, 1) for k, v in times.items()}, "per_image": per_image, "png": png,
              "metric_space": {"linear": "white-balanced linear camera RGB, clipped to [0, 1]",
                               "srgb": "default pipeline colour matrix + sRGB curve (float), clipped to [0, 1]"},
              "nlm_params": {**NLM_DEFAULTS, **(nlm_params or {})}, "device": dev.type}
    if best is not None:
        for label, *_ in models:
            result.setdefault("margin_vs_best_classical_db", {})[label] = \
                methods[label]["psnr_linear"] - methods[best]["psnr_linear"]
    from ..io.atomic import write_bytes_atomic

    path = out / "eval_restore.json"
    result["json"] = str(path)
    write_bytes_atomic(path, (json.dumps(result, indent=1) + "\n").encode(), overwrite=True)
    return result


def format_restore_table(result: dict) -> str:
    """The methods of :func:`evaluate_restore` as a text table (best classical marked)."""
    lines = [f"{'method':<28} {'PSNR lin':>9} {'SSIM lin':>9} {'PSNR sRGB':>10} {'SSIM sRGB':>10} "
             f"{'detail':>7} {'HF energy':>10} {'invented':>9}"]
    for name, m in result["methods"].items():
        mark = "  <- best classical" if name == result.get("best_classical") else ""
        lines.append(f"{name:<28} {m['psnr_linear']:>9.2f} {m['ssim_linear']:>9.4f} {m['psnr_srgb']:>10.2f} "
                     f"{m['ssim_srgb']:>10.4f} {m['detail_gain']:>7.3f} {m['detail_energy']:>10.3f} "
                     f"{m['detail_invented']:>9.3f}{mark}")
    return "\n".join(lines)


__all__ = ["RestorationTask", "RestoreTrainer", "train_restorer", "tiled_apply", "load_restorer", "generator_options",
           "restore_packed", "restore_raw", "camera_to_output", "output_stages", "predict_restore_files", "gat", "gat_inverse",
           "baseline_nlm_vst", "classical_baselines", "evaluate_restore", "format_restore_table",
           "generator_input", "generate_batch", "discriminator_pair", "discriminator_channels", "gaussian_blur",
           "gan_criterion", "build_discriminator", "psnr", "ssim", "detail_band", "high_frequency_detail",
           "noise_for", "side_by_side", "display_view", "TASK", "GAN_LOSSES", "D_VIEWS", "D_RANGES", "L1_WEIGHT",
           "VARIANCE_SCALE"]
