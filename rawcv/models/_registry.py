"""Name -> factory registry of rawcv networks, in the style of timm.

Every network is built by a *factory* ``fn(in_chans=..., num_classes=..., **kwargs)``
registered under a unique name and a task tag. :func:`create_model` builds a network
by name and stamps it with ``rawcv_name`` and ``rawcv_config`` (a JSON-able dict), so a
checkpoint can store the config next to the weights and rebuild the same network later
with ``create_model(**config)``.
"""

from __future__ import annotations

import difflib
import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

from torch import nn

from ..errors import RawcvError

#: The task tags a registration may carry. The tag tells callers what the output means
#: (logits, per-pixel logits, an image, patch logits) and so how to build inputs and losses.
TASKS = ("classify", "segment", "restore_generator", "restore_discriminator")

ModelFactory = Callable[..., nn.Module]


class UnknownModelError(RawcvError, KeyError, ValueError):
    """No model is registered under the requested name.

    It is both a :class:`KeyError` (a failed registry lookup) and a :class:`ValueError`
    (a bad argument value), so callers can catch whichever fits their code.
    """

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the whole message in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class _Registration:
    name: str
    task: str
    factory: ModelFactory


_REGISTRY: Dict[str, _Registration] = {}


def register_model(name: str, task: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering a model factory under ``name`` for ``task``.

    Parameters
    ----------
    name : str
        Unique model name, as later given to :func:`create_model`.
    task : str
        One of :data:`TASKS`.

    Returns
    -------
    callable
        A decorator that records the factory and returns it unchanged.

    Raises
    ------
    ValueError
        If ``task`` is not a known task or ``name`` is already registered.
    TypeError
        If the factory does not accept ``in_chans`` and ``num_classes`` keywords with
        defaults (they are needed to resolve the defaults recorded in ``rawcv_config``).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} for model {name!r}: expected one of {', '.join(TASKS)}")
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")

    def decorator(factory: ModelFactory) -> ModelFactory:
        parameters = inspect.signature(factory).parameters
        for required in ("in_chans", "num_classes"):
            if required not in parameters or parameters[required].default is inspect.Parameter.empty:
                raise TypeError(
                    f"factory of model {name!r} must take a keyword {required!r} with a default"
                )
        _REGISTRY[name] = _Registration(name=name, task=task, factory=factory)
        return factory

    return decorator


def list_models(task: Optional[str] = None) -> List[str]:
    """Sorted names of the registered models, optionally only those of one task.

    Parameters
    ----------
    task : str, optional
        One of :data:`TASKS`; ``None`` lists every model.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        If ``task`` is not a known task (a typo would otherwise silently list nothing).
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    return sorted(name for name, reg in _REGISTRY.items() if task is None or reg.task == task)


def _lookup(name: str) -> _Registration:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        available = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), available, n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint}: available: {', '.join(available)}"
        ) from None


def model_task(name: str) -> str:
    """The task tag of a registered model.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the available names.
    """
    return _lookup(name).task


def create_model(
    name: str,
    in_chans: Optional[int] = None,
    num_classes: Optional[int] = None,
    *,
    kwargs: Optional[Mapping[str, Any]] = None,
    **model_kwargs: Any,
) -> nn.Module:
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    in_chans : int, optional
        Input channels. ``None`` takes the factory's default: 4 (packed Bayer raw) for
        classifiers and U-Nets, 8 (packed raw + 4 noise-variance maps) for
        ``unet_generator``, 7 (condition + RGB) for ``patchgan70``.
    num_classes : int, optional
        Output channels / classes. ``None`` takes the factory's default: 10 for
        classifiers and U-Nets, 3 (RGB) for ``unet_generator``, 1 for ``patchgan70``.
        Taking the factory's default rather than one global default keeps
        ``create_model("patchgan70")`` from silently building a 10-channel discriminator.
    kwargs : mapping, optional
        Architecture keyword arguments, as stored under ``"kwargs"`` in ``rawcv_config``;
        accepted so that ``create_model(**model.rawcv_config)`` rebuilds a model.
    **model_kwargs
        More architecture keyword arguments (``width=...``, ``depth=...``); merged with
        ``kwargs``. They must be JSON-serialisable so the config can go in a checkpoint.

    Returns
    -------
    torch.nn.Module
        The model, with attributes ``rawcv_name`` (str) and ``rawcv_config``
        (``{"name", "in_chans", "num_classes", "kwargs"}``, JSON-able).

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered; the message lists the available names.
    TypeError
        If a keyword is given both in ``kwargs`` and directly, or is not JSON-serialisable.

    Examples
    --------
    >>> net = create_model("resnet18", in_chans=4, num_classes=5, width=16)
    >>> net.rawcv_config
    {'name': 'resnet18', 'in_chans': 4, 'num_classes': 5, 'kwargs': {'width': 16}}
    >>> twin = create_model(**net.rawcv_config)
    """
    registration = _lookup(name)
    merged_kwargs = dict(kwargs or {})
    duplicated = sorted(set(merged_kwargs) & set(model_kwargs))
    if duplicated:
        raise TypeError(f"model keyword(s) given twice, in kwargs= and directly: {', '.join(duplicated)}")
    merged_kwargs.update(model_kwargs)

    parameters = inspect.signature(registration.factory).parameters
    if in_chans is None:
        in_chans = parameters["in_chans"].default
    if num_classes is None:
        num_classes = parameters["num_classes"].default
    config = {
        "name": name,
        "in_chans": int(in_chans),
        "num_classes": int(num_classes),
        "kwargs": merged_kwargs,
    }
    try:
        # Round-trip so the stored config is exactly what a checkpoint will read back
        # (tuples become lists) and shares no mutable objects with the caller.
        config = json.loads(json.dumps(config))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"keyword arguments of model {name!r} must be JSON-serialisable: {exc}") from None

    model = registration.factory(
        in_chans=config["in_chans"], num_classes=config["num_classes"], **config["kwargs"]
    )
    model.rawcv_name = name
    model.rawcv_config = config
    return model


def freeze_backbone(model: nn.Module) -> nn.Module:
    """Stop gradients to ``model.backbone`` so only ``model.head`` trains (transfer learning).

    Only ``requires_grad`` is changed: BatchNorm layers of the backbone still update their
    running statistics in train mode; call ``model.backbone.eval()`` after ``model.train()``
    if those should stay fixed too.

    Parameters
    ----------
    model : torch.nn.Module
        A model exposing ``backbone`` and ``head`` submodules (every ``classify`` model).

    Returns
    -------
    torch.nn.Module
        The same model, modified in place.

    Raises
    ------
    TypeError
        If the model has no ``backbone`` or ``head`` submodule.
    """
    for part in ("backbone", "head"):
        if not isinstance(getattr(model, part, None), nn.Module):
            raise TypeError(
                f"{type(model).__name__} has no {part!r} submodule; freeze_backbone needs a "
                "model split into backbone and head (a 'classify' model)"
            )
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(False)
    for parameter in model.head.parameters():
        parameter.requires_grad_(True)
    return model
