"""Neural networks for raw images: a timm-style registry of classifiers, U-Nets and pix2pix parts.

>>> from rawcv.models import create_model, list_models
>>> list_models("segment")
['unet', 'unet_small']
>>> net = create_model("unet_small", in_chans=4, num_classes=2)  # packed raw in, full-res logits out

Tasks and registered names:

* ``"classify"``: ``lenet5``, ``vgg11``, ``resnet18``, ``densenet_small``, ``googlenet_small``
* ``"segment"``: ``unet_small``, ``unet``
* ``"restore_generator"``: ``unet_generator``
* ``"restore_discriminator"``: ``patchgan70``
"""

from .._optional import require as _require

_require("torch", "rawcv.models")

from ._registry import (
    MAX_PARAMETERS,
    TASKS,
    ModelArgumentError,
    UnknownModelError,
    count_parameters,
    create_model,
    freeze_backbone,
    list_models,
    model_arguments,
    model_skeleton,
    model_task,
    register_model,
    unknown_model_error,
)

# Imported for their side effect: each module registers its factories on import.
from . import classifiers, gan, unet  # noqa: E402,F401  (isort: skip)

__all__ = [
    "MAX_PARAMETERS",
    "TASKS",
    "ModelArgumentError",
    "UnknownModelError",
    "count_parameters",
    "create_model",
    "freeze_backbone",
    "list_models",
    "model_arguments",
    "model_skeleton",
    "model_task",
    "register_model",
    "unknown_model_error",
]
