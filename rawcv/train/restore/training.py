"""A restoration training run: data, networks and trainer assembled from a
:class:`~rawcv.options.RestoreOptions` (what ``rawcv train restore`` runs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from ...data.loaders import make_loader, make_loaders
from ...data.restore import TARGET_DESCRIPTION, TARGET_SPACE, RestorePairs, SynthRestoreSet, fresh_loader
from ...options import DEFAULT_DISCRIMINATOR, RestoreOptions
from ..checkpoint import load_state_dict
from ..runs import write_run_info
from ..engine import (FitResult, TrainConfig, TrainingError, checkpoint_architecture, fit_and_report,
                      require_model_task, resolve_device, seed_everything, starting_checkpoint)
from .gan import (DEFAULT_DISCRIMINATOR_KWARGS, DISCRIMINATOR_CHANNELS, describe_view, discriminator_config,
                  load_discriminator_state, require_trained_view)
from .generator import DEFAULT_GENERATOR, DEFAULT_GENERATOR_KWARGS, GENERATOR_CHANNELS
from .task import TASK, RestorationTask, RestoreTrainer, check_restore_checkpoint


def _continued(options: RestoreOptions, ckpt: Optional[dict]) -> RestoreOptions:
    """The options of a run that starts from ``ckpt``: the generator's input and output are the
    checkpoint's (``variance_scale``, ``residual``); a resumed run also keeps its objective and
    discriminator."""
    if ckpt is None:
        return options
    cfg = ckpt["config"]
    kept = {"variance_scale": float(cfg.get("variance_scale", options.variance_scale)),
            "residual": bool(cfg.get("residual", False))}
    if options.resume:
        require_trained_view(ckpt)
        kept.update(l1_only=cfg.get("mode") == "l1", gan_loss=cfg.get("gan_loss") or options.gan_loss)
        if cfg.get("discriminator"):
            kept.update(discriminator=cfg["discriminator"]["name"],
                        disc_kwargs=dict(cfg["discriminator"].get("kwargs") or {}))
    return dataclasses.replace(options, **kept)


def _datasets(o: RestoreOptions, device) -> tuple:
    """``(train_ds, val_ds, train_loader, val_loader, source)`` of a run."""
    if o.data is not None:
        train_ds = SynthRestoreSet(o.data, "train", crop=o.crop, random_crop=True)
        val_ds = SynthRestoreSet(o.data, "val", crop=o.crop)
        if len(train_ds) == 0:
            raise TrainingError(f"{o.data}: the dataset has no 'train' items")
        train_loader, val_loader = make_loaders(train_ds, val_ds, batch_size=o.batch_size, workers=o.workers,
                                                device=device, seed=o.seed)
        return train_ds, val_ds, train_loader, val_loader, "synth"
    pairs = dict(seed=o.seed, size=o.crop, noise=o.noise, sources=o.sources, photo_fraction=o.photo_fraction)
    train_ds = RestorePairs(o.train_size, split="train", **pairs)
    val_ds = RestorePairs(o.val_size, split="val", **pairs) if o.val_size else None
    train_loader = fresh_loader(train_ds, batch_size=o.batch_size, workers=o.workers, device=device, seed=o.seed)
    val_loader = None if val_ds is None else make_loader(val_ds, batch_size=o.batch_size, workers=o.workers,
                                                          device=device, seed=o.seed)
    return train_ds, val_ds, train_loader, val_loader, "on-the-fly"


def train_restorer(out, options: Optional[RestoreOptions] = None, *, log=None, **overrides) -> FitResult:
    """Train a restoration generator (pix2pix GAN, or ``l1_only``); the run folder is ``out``.

    Parameters
    ----------
    out : path
        The run folder (``best.pt``, ``last.pt``, ``run.json``, metrics and curves).
    options : RestoreOptions, optional
        Every setting of the run, each documented there (default: ``RestoreOptions()``).
    log : callable, optional
        Receives the run's log lines (default: print them).
    **overrides
        Fields of ``options`` to replace, e.g. ``train_restorer(out, epochs=2, l1_only=True)``.

    With ``resume`` the run keeps its own generator input (``variance_scale``, ``residual``),
    objective (``l1_only``, ``gan_loss``) and discriminator; a run whose discriminator saw its
    pairs in a view rawcv no longer trains is refused (:func:`~rawcv.train.restore.gan.require_trained_view`).
    With ``init`` the generator starts from the checkpoint, with its input and output; a GAN
    started from a GAN's ``last.pt`` whose discriminator (and view) is the same also starts that
    discriminator from it (its optimiser and schedule start afresh, unlike ``resume``).

    Returns
    -------
    FitResult
    """
    from ...models import create_model

    o = dataclasses.replace(options or RestoreOptions(), **overrides)
    out = Path(out)
    say = log or (lambda line: print(line, flush=True))
    if int(o.crop) < 32 or int(o.crop) % 2:
        raise TrainingError(f"--crop must be an even number >= 32, got {o.crop}")
    base_ckpt = starting_checkpoint(out, resume=o.resume, init=o.init, overwrite=o.overwrite,
                                    check=check_restore_checkpoint)
    o = _continued(o, base_ckpt)
    model, model_kwargs = checkpoint_architecture(base_ckpt, o.model, o.model_kwargs, resume=o.resume)
    model = model or DEFAULT_GENERATOR
    if base_ckpt is None and model == DEFAULT_GENERATOR:
        model_kwargs = {**DEFAULT_GENERATOR_KWARGS, **(model_kwargs or {})}
    disc_kwargs = o.disc_kwargs
    if not o.resume and o.discriminator == DEFAULT_DISCRIMINATOR:
        disc_kwargs = {**DEFAULT_DISCRIMINATOR_KWARGS, **disc_kwargs}
    o = dataclasses.replace(o, model=model, model_kwargs=dict(model_kwargs or {}), disc_kwargs=disc_kwargs)
    require_model_task(model, "restore_generator", "restoration generators", in_chans=GENERATOR_CHANNELS,
                       kwargs=o.model_kwargs)
    if not o.l1_only:
        require_model_task(o.discriminator, "restore_discriminator", "discriminators",
                           in_chans=DISCRIMINATOR_CHANNELS, kwargs=disc_kwargs)

    config = TrainConfig(epochs=o.epochs, lr=o.lr, optimizer=o.optimizer, schedule=o.schedule,
                         weight_decay=o.weight_decay, momentum=o.momentum, patience=o.patience, ema=o.ema,
                         device=o.device, seed=o.seed, compile=o.compile, progress=o.progress,
                         max_batches=o.max_batches)
    dev = resolve_device(o.device)
    train_ds, val_ds, train_loader, val_loader, source = _datasets(o, dev)
    seed_everything(o.seed)
    net = create_model(model, in_chans=GENERATOR_CHANNELS, num_classes=3, **o.model_kwargs)
    if o.init and not o.resume:
        load_state_dict(net, base_ckpt)
        say(f"initialised the generator from {base_ckpt['path']}")
    disc = None
    if not o.l1_only:
        disc = create_model(o.discriminator, in_chans=DISCRIMINATOR_CHANNELS, num_classes=1, **disc_kwargs)
        if o.init and not o.resume and "discriminator" in base_ckpt:
            _start_discriminator_from(disc, base_ckpt, say)
    ckpt_config = {"task": TASK, "mode": "l1" if o.l1_only else "gan", "layout": "packed",
                   "target": TARGET_SPACE, "target_description": TARGET_DESCRIPTION,
                   "variance_scale": float(o.variance_scale), "residual": bool(o.residual),
                   "noise": str(o.noise), "crop": int(o.crop),
                   "gan_loss": None if o.l1_only else o.gan_loss, "l1_weight": float(o.l1_weight),
                   "input": "packed RGGB raw (R, G1, G2, B), (x - black) / (white - black), + "
                            f"{o.variance_scale:g} * (lambda_shot * max(x, 0) + lambda_read)",
                   "sources": o.sources if o.data is None else str(o.data)}
    trainer = RestoreTrainer(net, RestorationTask(), train_loader, val_loader, discriminator=disc,
                             gan_loss=o.gan_loss, l1_weight=o.l1_weight, variance_scale=o.variance_scale,
                             beta1=o.beta1, d_lr_ratio=o.d_lr_ratio, residual=o.residual, config=config,
                             out_dir=out, checkpoint_config=ckpt_config, log=say)
    n_g = sum(p.numel() for p in net.parameters())
    n_d = sum(p.numel() for p in disc.parameters()) if disc is not None else 0
    say(f"{model} ({n_g:,} parameters)" + (f" + {o.discriminator} ({n_d:,})" if disc is not None else ", L1 only")
        + f" on {dev.type}: {len(train_ds)} training pairs per epoch ({source}, {o.crop}x{o.crop}, "
          f"noise {o.noise}), {len(val_ds) if val_ds is not None else 0} validation pairs")
    out.mkdir(parents=True, exist_ok=True)
    data = o.data if o.data is not None else f"on-the-fly ({o.sources})"
    write_run_info(out, **{**dataclasses.asdict(o), "data": data, "source": source, "config": config,
                           "ckpt_config": trainer.checkpoint_config})
    return fit_and_report(trainer, resume=o.resume, metric="psnr", label="PSNR", loss_name="L1", loss_format=".5f",
                          value_format=".2f", unit=" dB (linear)")


def _start_discriminator_from(disc, ckpt: dict, say) -> None:
    """Start a GAN's discriminator from a GAN checkpoint's where it is the same network seeing
    the same view: a fresh PatchGAN needs thousands of steps before it tells a good generator's
    output from ground truth. Otherwise it starts afresh, and ``say`` tells why."""
    theirs = ckpt["config"].get("discriminator") or {}
    ours = discriminator_config(disc)
    if theirs == ours:
        load_discriminator_state(disc, ckpt)
        say(f"initialised the discriminator from {ckpt['path']}")
    elif theirs.get("view") != ours["view"]:
        say(f"note: the discriminator of {ckpt['path']} saw the pairs as {describe_view(theirs.get('view') or {})}; "
            f"this run's starts afresh")


__all__ = ["train_restorer"]
