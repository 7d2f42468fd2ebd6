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
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from ..errors import RawcvError

#: The task tags a registration may carry. The tag tells callers what the output means
#: (logits, per-pixel logits, an image, patch logits) and so how to build inputs and losses.
TASKS = ("classify", "segment", "restore_generator", "restore_discriminator")

ModelFactory = Callable[..., nn.Module]

#: The largest model :func:`create_model` builds. Its size is counted before anything is
#: allocated, so a typo such as ``width=200000`` (or a doctored checkpoint config) is refused in
#: one line instead of asking the allocator for hundreds of gigabytes.
MAX_PARAMETERS = 10**9


class UnknownModelError(RawcvError, KeyError, ValueError):
    """No model is registered under the requested name.

    It is both a :class:`KeyError` (a failed registry lookup) and a :class:`ValueError`
    (a bad argument value), so callers can catch whichever fits their code.
    """

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the whole message in quotes.
        return str(self.args[0]) if self.args else ""


class ModelArgumentError(RawcvError, TypeError, ValueError):
    """A model is asked for with arguments its factory does not take, of the wrong type, or
    that would make it implausibly large.

    It is a :class:`TypeError` (a wrong keyword or type) and a :class:`ValueError` (a bad value),
    so callers can catch whichever fits their code.
    """


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
        defaults (they are needed to resolve the defaults recorded in ``rawcv_config``), or
        takes ``**kwargs`` (its signature must name every argument, so that a wrong one can be
        reported with the list of right ones).
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
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            raise TypeError(f"factory of model {name!r} must name its keywords (no **kwargs)")
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


def unknown_model_error(name: Any, candidates: Sequence[str], what: str = "available") -> UnknownModelError:
    """The error for a model name that is not among ``candidates``, with close matches.

    Parameters
    ----------
    name : object
        The name asked for.
    candidates : sequence of str
        The names that would have been accepted (all models, or those of one task).
    what : str
        How the message introduces ``candidates`` (``"classifiers are"``).

    Returns
    -------
    UnknownModelError
        Its message is one line: ``unknown model 'x' (did you mean ...?); WHAT: a, b, c``.
    """
    close = difflib.get_close_matches(str(name), list(candidates), n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return UnknownModelError(f"unknown model {name!r}{hint}; {what}: {', '.join(candidates)}")


def _lookup(name: str) -> _Registration:
    registration = _REGISTRY.get(name) if isinstance(name, str) else None
    if registration is None:
        raise unknown_model_error(name, sorted(_REGISTRY))
    return registration


def model_arguments(name: str) -> Dict[str, Any]:
    """The architecture keywords of a registered model and their defaults.

    ``in_chans`` and ``num_classes`` are left out: every model takes them.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.

    Returns
    -------
    dict
        Keyword -> default, in the order of the factory's signature.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered.

    Examples
    --------
    >>> model_arguments("vgg11")
    {'width': 32, 'drop_rate': 0.0}
    """
    parameters = inspect.signature(_lookup(name).factory).parameters
    return {key: p.default for key, p in parameters.items() if key not in ("in_chans", "num_classes")}


def _describe_arguments(arguments: Mapping[str, Any]) -> str:
    if not arguments:
        return "it takes none but in_chans and num_classes"
    return "its arguments are " + ", ".join(f"{key} (default {value!r})" for key, value in arguments.items())


def _type_mismatch(value: Any, default: Any) -> Optional[str]:
    """What ``value`` should have been, judged by the type of the factory's ``default``; None if it fits."""
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, numbers.Integral):
        return None if isinstance(value, numbers.Integral) and not isinstance(value, bool) else "an integer"
    if isinstance(default, numbers.Real):
        return None if isinstance(value, numbers.Real) and not isinstance(value, bool) else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple)) else "a list"
    return None


def _check_config(registration: _Registration, config: Mapping[str, Any]) -> None:
    name = registration.name
    for key in ("in_chans", "num_classes"):
        value = config[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ModelArgumentError(f"model {name!r}: {key} must be a positive integer, got {value!r}")
    arguments = model_arguments(name)
    for key, value in config["kwargs"].items():
        if key not in arguments:
            raise ModelArgumentError(f"model {name!r} takes no argument {key!r}: {_describe_arguments(arguments)}")
        expected = _type_mismatch(value, arguments[key])
        if expected is not None:
            raise ModelArgumentError(f"model {name!r}: {key} must be {expected} (default {arguments[key]!r}), "
                                     f"got {value!r}")


def _build(registration: _Registration, config: Mapping[str, Any]) -> nn.Module:
    try:
        return registration.factory(in_chans=config["in_chans"], num_classes=config["num_classes"],
                                    **config["kwargs"])
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. width=0, stem_stride=3
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelArgumentError(f"model {registration.name!r} does not build with in_chans "
                                 f"{config['in_chans']}, num_classes {config['num_classes']} and "
                                 f"{config['kwargs'] or 'no arguments'}: {reason}") from None


def _resolve(name: str, in_chans: Optional[int], num_classes: Optional[int], kwargs: Optional[Mapping[str, Any]],
             model_kwargs: Mapping[str, Any]) -> tuple:
    """``(registration, config, skeleton)``: the JSON-able config of a model, checked against its
    factory, and the model built on the ``meta`` device, refused when it would hold more than
    :data:`MAX_PARAMETERS` parameters."""
    registration = _lookup(name)
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ModelArgumentError(f"model {name!r}: its arguments must be a mapping of names to values, "
                                 f"got {type(kwargs).__name__}")
    merged_kwargs = dict(kwargs or {})
    duplicated = sorted(set(merged_kwargs) & set(model_kwargs))
    if duplicated:
        raise ModelArgumentError(f"model keyword(s) given twice, in kwargs= and directly: {', '.join(duplicated)}")
    merged_kwargs.update(model_kwargs)

    parameters = inspect.signature(registration.factory).parameters
    config = {
        "name": name,
        "in_chans": parameters["in_chans"].default if in_chans is None else in_chans,
        "num_classes": parameters["num_classes"].default if num_classes is None else num_classes,
        "kwargs": merged_kwargs,
    }
    _check_config(registration, config)
    config["in_chans"], config["num_classes"] = int(config["in_chans"]), int(config["num_classes"])
    try:
        # Round-trip so the stored config is exactly what a checkpoint will read back
        # (tuples become lists) and shares no mutable objects with the caller.
        config = json.loads(json.dumps(config))
    except (TypeError, ValueError) as exc:
        raise ModelArgumentError(f"keyword arguments of model {name!r} must be JSON-serialisable: {exc}") from None
    # The meta device records shapes and allocates nothing, so the size is known before it is paid for.
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the initialisers' notes on empty layers: refused below
        skeleton = _build(registration, config)
    described = (f"model {name!r} with in_chans {config['in_chans']}, num_classes {config['num_classes']} "
                 f"and {config['kwargs'] or 'no arguments'}")
    empty = next((key for key, p in skeleton.named_parameters() if p.numel() == 0), None)
    if empty is not None:
        raise ModelArgumentError(f"{described} has an empty layer ({empty}): a width or count of 0?")
    count = sum(p.numel() for p in skeleton.parameters())
    if count > MAX_PARAMETERS:
        raise ModelArgumentError(f"{described} would hold {count:,} parameters, more than the "
                                 f"{MAX_PARAMETERS:,} rawcv builds")
    return registration, config, skeleton


def model_skeleton(
    name: str,
    in_chans: Optional[int] = None,
    num_classes: Optional[int] = None,
    *,
    kwargs: Optional[Mapping[str, Any]] = None,
    **model_kwargs: Any,
) -> nn.Module:
    """A registered model on the ``meta`` device: every shape, no memory, no initialisation.

    What :func:`count_parameters` counts, and what a checkpoint's weights can be checked against
    before the real model is built. Arguments and errors as for :func:`create_model`.

    Returns
    -------
    torch.nn.Module
        The model, with meta tensors, stamped with ``rawcv_name`` and ``rawcv_config`` like
        :func:`create_model`'s.
    """
    _, config, skeleton = _resolve(name, in_chans, num_classes, kwargs, model_kwargs)
    skeleton.rawcv_name = name
    skeleton.rawcv_config = config
    return skeleton


def count_parameters(
    name: str,
    in_chans: Optional[int] = None,
    num_classes: Optional[int] = None,
    *,
    kwargs: Optional[Mapping[str, Any]] = None,
    **model_kwargs: Any,
) -> int:
    """The number of parameters of a registered model, counted without building it in memory.

    Arguments and errors as for :func:`create_model`.

    Examples
    --------
    >>> count_parameters("lenet5", in_chans=1, num_classes=10)  # LeCun et al.'s 61,706
    61706
    """
    skeleton = model_skeleton(name, in_chans, num_classes, kwargs=kwargs, **model_kwargs)
    return sum(p.numel() for p in skeleton.parameters())


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
    ModelArgumentError
        (a :class:`TypeError` and :class:`ValueError`) If a keyword is not one the factory
        takes (the message lists those it takes), has the wrong type, is given both in
        ``kwargs`` and directly, or is not JSON-serialisable; if ``in_chans`` or
        ``num_classes`` is not a positive integer; if the factory refuses the values; or if the
        model would hold more than :data:`MAX_PARAMETERS` parameters (counted on the ``meta``
        device before anything is allocated).

    Examples
    --------
    >>> net = create_model("resnet18", in_chans=4, num_classes=5, width=16)
    >>> net.rawcv_config
    {'name': 'resnet18', 'in_chans': 4, 'num_classes': 5, 'kwargs': {'width': 16}}
    >>> twin = create_model(**net.rawcv_config)
    """
    registration, config, _ = _resolve(name, in_chans, num_classes, kwargs, model_kwargs)
    model = _build(registration, config)
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
