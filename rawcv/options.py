"""Options of training runs as dataclasses: listed once, read by the library and the command line.

:func:`rawcv.train.restore.train_restorer` takes a :class:`RestoreOptions`, and ``rawcv train
restore`` makes one command-line option of each of its fields
(:func:`rawcv.cli.dataclass_args.add_dataclass_arguments`), so a new option is one new field.
The module imports neither torch nor anything else of rawcv's torch stage, so that ``rawcv
--help`` and ``rawcv process`` run without torch.

What the command line reads from a field: its name (``--kebab-case``), its type (``bool``: a flag;
``dict``: a repeatable ``KEY=VALUE`` option), its default, and the ``metadata`` keys

``help`` (required)
    The help text.
``choices``, ``metavar``
    As in :meth:`argparse.ArgumentParser.add_argument`.
``check``
    A value check the command line applies: ``positive_int``, ``non_negative_int``,
    ``positive_float`` or ``decay`` (a number in (0, 1)).
``flag``
    The option's name where it is not the field's (``--model-arg`` for ``model_kwargs``).
``negated``
    A flag ``--no-NAME`` that sets the field to False (its ``help`` says what the flag does); a
    ``bool`` field that defaults to True always gets one.
``cli``
    False: a library option only (no command-line option).
``hidden``
    An option that ``--help`` does not list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from .errors import RawcvError

GAN_LOSSES = ("bce", "lsgan")
#: Scenes of the on-the-fly restoration pairs: procedural, scikit-image photographs, or both.
RESTORE_SOURCES = ("mixed", "synthetic", "skimage")
#: The noise of on-the-fly restoration pairs: lambda_shot log-uniform in this range (Brooks et al.).
RESTORE_NOISE = "1e-3:1.2e-2"
DEFAULT_DISCRIMINATOR = "patchgan70"
#: Weight of the L1 term against the adversarial one (the issue's and pix2pix's lambda).
L1_WEIGHT = 100.0
#: Factor of the noise-variance map in the generator's input: numbers of order 1.
VARIANCE_SCALE = 100.0
#: What rawcv learns: every synthetic dataset, training run and checkpoint is for one of these.
TASKS = ("classify", "segment", "restore")
#: How a capture is fed to a network: packed Bayer planes R, G1, G2, B, or linear RGB.
LAYOUTS = ("packed", "rgb")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "none")


class OptionError(RawcvError, ValueError):
    """An option value that is not one of its choices."""


def option(default=dataclasses.MISSING, *, help: str, default_factory=dataclasses.MISSING, **metadata):
    """A dataclass field with its command-line ``help`` and other metadata (see the module)."""
    return field(default=default, default_factory=default_factory, metadata={"help": help, **metadata})


def check_choices(options) -> None:
    """Raise :class:`OptionError` for a field whose value is not one of its ``choices``."""
    for f in dataclasses.fields(options):
        choices = f.metadata.get("choices")
        value = getattr(options, f.name)
        if choices is not None and value not in choices:
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            raise OptionError(f"unknown {flag} {value!r}: expected one of {', '.join(map(str, choices))}")


@dataclass
class RestoreOptions:
    """Everything a restoration run (:func:`rawcv.train.restore.train_restorer`) is told, but
    where it goes (its run folder) and where it logs.

    Examples
    --------
    >>> RestoreOptions(l1_only=True, epochs=2).gan_loss
    'bce'
    >>> RestoreOptions(gan_loss="wgan")
    Traceback (most recent call last):
    ...
    rawcv.options.OptionError: unknown --gan-loss 'wgan': expected one of bce, lsgan
    """

    # --- data -------------------------------------------------------------------------------
    data: Optional[str] = option(
        None, metavar="DIR",
        help="a 'rawcv synth --task restore' dataset to train on (random --crop crops of its train split, "
             "centre crops of its val split); None: pairs made on the fly")
    noise: str = option(
        RESTORE_NOISE,
        help="noise of the on-the-fly pairs: low, medium, high (lambda_shot 0.012), a lambda_shot value, or a "
             "range A:B (log-uniform per image)")
    crop: int = option(128, metavar="N", check="positive_int",
                       help="side in pixels of the training and validation images (even, at least 32)")
    train_size: int = option(1024, metavar="N", check="positive_int", help="new on-the-fly pairs per epoch")
    val_size: int = option(64, metavar="N", check="non_negative_int", help="fixed on-the-fly validation pairs")
    sources: str = option("mixed", choices=RESTORE_SOURCES,
                          help="scenes of the on-the-fly pairs: procedural, scikit-image photographs, or both "
                               "(mixed)")
    photo_fraction: float = option(0.5, cli=False, help="share of photographs among mixed on-the-fly pairs")

    # --- networks ---------------------------------------------------------------------------
    model: Optional[str] = option(
        None, metavar="NAME",
        help="generator architecture ('rawcv models --task restore' lists them); None: unet_generator with "
             "base_width 16, or with --init/--resume the checkpoint's")
    model_kwargs: dict = option(
        default_factory=dict, flag="--model-arg", metavar="KEY=VALUE",
        help="generator keyword, repeatable (e.g. base_width=32; a wrong one lists the model's)")
    residual: bool = option(
        True, help="the generator predicts the image itself, not a correction of the bilinear demosaic of its "
                   "input (the default, which learns much faster)")
    variance_scale: float = option(VARIANCE_SCALE, cli=False,
                                   help="factor of the noise-variance map in the generator's input")
    l1_only: bool = option(False, help="no discriminator: train the generator on L1 alone")
    discriminator: str = option(DEFAULT_DISCRIMINATOR, metavar="NAME",
                                help="discriminator architecture ('rawcv models --task restore' lists them)")
    disc_kwargs: dict = option(
        default_factory=dict, flag="--disc-arg", metavar="KEY=VALUE",
        help="discriminator keyword, repeatable, over the default discriminator's preset (see 'rawcv models "
             "--task restore'; a wrong one lists the discriminator's)")

    # --- objective and optimiser ------------------------------------------------------------
    gan_loss: str = option("bce", choices=GAN_LOSSES, help="adversarial loss")
    l1_weight: float = option(L1_WEIGHT, help="lambda of the L1 term")
    epochs: int = option(10, check="positive_int", help="epochs to train (in all, with --resume)")
    batch_size: int = option(8, check="positive_int", help="images per optimisation step")
    lr: Optional[float] = option(2e-4, check="positive_float",
                                 help="learning rate of both networks (Adam with --beta1)")
    beta1: float = option(0.5, help="Adam beta1 of both networks")
    d_lr_ratio: float = option(1.0, cli=False, help="the discriminator's learning rate over the generator's")
    optimizer: str = option("adam", choices=OPTIMIZERS, help="optimiser (sgd: with --momentum)")
    momentum: float = option(0.9, help="SGD momentum")
    weight_decay: float = option(0.0, help="L2 weight decay of the optimiser")
    schedule: str = option("cosine", choices=SCHEDULES, help="learning-rate schedule per epoch")
    patience: Optional[int] = option(
        None, metavar="EPOCHS", check="positive_int",
        help="stop when the validation loss has not improved for this many epochs; None: never stop early")
    ema: Optional[float] = option(
        None, metavar="DECAY", check="decay",
        help="keep an exponential moving average of the weights with this decay (e.g. 0.999): validation, "
             "best.pt and last.pt's weights are the average's; None: no average")

    # --- the run ----------------------------------------------------------------------------
    device: str = option("auto", help="auto (CUDA if available), cpu or cuda")
    seed: int = option(0, help="seed of initialisation and of the on-the-fly pairs")
    workers: int = option(0, check="non_negative_int", help="DataLoader worker processes")
    compile: bool = option(False, help="torch.compile the generator")
    init: Optional[str] = option(
        None, metavar="CKPT",
        help="start the generator from a restoration checkpoint; a GAN's last.pt also starts the "
             "discriminator, when it is the same one (optimisers and schedule start afresh); None: from scratch")
    resume: bool = option(False, help="continue RUN_DIR/last.pt up to --epochs")
    overwrite: bool = option(False, help="start afresh in a RUN_DIR holding a previous run")
    progress: Optional[bool] = option(None, negated=True,
                                      help="no progress bars (by default: only on a terminal)")
    max_batches: Optional[int] = option(None, check="positive_int", hidden=True,
                                        help="stop each epoch after this many batches (tests)")

    def __post_init__(self):
        check_choices(self)


__all__ = ["RestoreOptions", "OptionError", "option", "check_choices", "GAN_LOSSES", "RESTORE_SOURCES",
           "RESTORE_NOISE", "DEFAULT_DISCRIMINATOR", "L1_WEIGHT", "VARIANCE_SCALE", "OPTIMIZERS", "SCHEDULES", "TASKS", "LAYOUTS"]
