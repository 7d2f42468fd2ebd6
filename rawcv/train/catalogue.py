"""What ``rawcv models`` lists: the networks of each task, as ``rawcv train TASK`` builds them.

A model's size depends on its input channels and classes, and on the preset arguments a task
gives its default model; :func:`training_models` counts each network with exactly those (on
the ``meta`` device, so listing allocates nothing).

>>> from rawcv.train.catalogue import training_models
>>> [entry.name for entry in training_models("segment")]
['unet', 'unet_small']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from ..options import TASKS

#: The tasks of ``rawcv train`` (and of ``rawcv models --task``).
TRAIN_TASKS = TASKS


@dataclass(frozen=True)
class Slot:
    """One network ``rawcv train TASK`` builds: its registry task, input channels, outputs and default."""

    task: str
    role: str
    registry_task: str
    in_chans: int
    num_classes: int
    inputs: str
    outputs: str
    default_model: str
    default_kwargs: dict


@dataclass(frozen=True)
class ModelEntry:
    """A registered network as ``rawcv train`` builds it for one role of one task."""

    task: str
    role: str
    name: str
    kwargs: dict
    parameters: int
    default: bool


def training_slots(task: Optional[str] = None) -> List[Slot]:
    """The networks ``rawcv train`` builds, per task (all tasks when ``task`` is None).

    Classifiers and segmenters are counted for packed raw input (4 channels) and the classes of
    ``rawcv synth`` (6 shapes; 7 with the background for segmentation), since their heads grow
    with the classes of the data.
    """
    from ..synth.scenes import CLASS_NAMES
    from . import classify, restore, segment

    if task is not None and task not in TRAIN_TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TRAIN_TASKS)}")
    shapes = len(CLASS_NAMES) - 1
    slots = [
        Slot("classify", "model", "classify", 4, shapes, "packed raw", f"the {shapes} shape classes of rawcv synth",
             classify.DEFAULT_MODEL, dict(classify.DEFAULT_MODEL_KWARGS)),
        Slot("segment", "model", "segment", 4, shapes + 1, "packed raw",
             f"the {shapes + 1} mask classes of rawcv synth", segment.DEFAULT_MODEL, {}),
        Slot("restore", "generator", "restore_generator", restore.GENERATOR_CHANNELS, 3,
             "packed raw and its noise variance", "linear RGB",
             restore.DEFAULT_GENERATOR, dict(restore.DEFAULT_GENERATOR_KWARGS)),
        Slot("restore", "discriminator", "restore_discriminator",
             restore.discriminator_channels(restore.DEFAULT_D_VIEW), 1,
             f"the {restore.DEFAULT_D_VIEW} view of a (raw, image) pair", "a map of patch logits",
             restore.DEFAULT_DISCRIMINATOR, dict(restore.DEFAULT_DISCRIMINATOR_KWARGS)),
    ]
    return [s for s in slots if task is None or s.task == task]


def training_models(task: Optional[str] = None) -> List[ModelEntry]:
    """Every registered network of ``task`` (all when None) with the parameter count
    ``rawcv train`` gives it: the slot's channels and classes, and the preset arguments where it
    is the slot's default model (``--model-arg`` / ``--disc-arg`` change them).

    Returns
    -------
    list of ModelEntry
        Sorted by task, role and name, as :func:`rawcv.models.list_models` sorts names.
    """
    from ..models import count_parameters, list_models

    entries = []
    for slot in training_slots(task):
        for name in list_models(slot.registry_task):
            kwargs = slot.default_kwargs if name == slot.default_model else {}
            entries.append(ModelEntry(slot.task, slot.role, name, kwargs,
                                      count_parameters(name, slot.in_chans, slot.num_classes, **kwargs),
                                      name == slot.default_model))
    return entries


__all__ = ["TRAIN_TASKS", "Slot", "ModelEntry", "training_slots", "training_models"]
