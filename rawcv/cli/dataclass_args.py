"""Command-line options made from the fields of an options dataclass (:mod:`rawcv.options`), and
the dataclass made back from the parsed arguments: one list of options for the library and the
command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing


def _value_type(hint):
    """``int`` for ``Optional[int]``, ``float`` for ``float`` ... (None for other annotations)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint
    return base if base in (int, float, str, bool, dict) else None


def _is_negated(f) -> bool:
    return bool(f.metadata.get("negated")) or f.default is True


def _dest(f) -> str:
    # a negated flag stores True under its own name; dataclass_from_args turns it into False
    return f"no_{f.name}" if _is_negated(f) else f.name


def add_dataclass_arguments(parser, cls, *, checks: dict, key_value) -> None:
    """Add one option per field of the dataclass ``cls`` (in field order) to ``parser``.

    ``--field-name`` for ``field_name`` (or the field's ``flag``); a ``bool`` is a flag
    (``--no-field-name`` where it defaults to True or is ``negated``); a ``dict`` is a repeatable
    ``KEY=VALUE`` option parsed by ``key_value``; other types convert with the field's ``check``
    (a name in ``checks``) or its annotation. Fields with ``cli=False`` get no option.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("cli", True) is False:
            continue
        kind = _value_type(hints[f.name])
        help_text = argparse.SUPPRESS if meta.get("hidden") else meta["help"]
        if kind is bool:
            flag = meta.get("flag") or "--" + ("no-" if _is_negated(f) else "") + f.name.replace("_", "-")
            parser.add_argument(flag, dest=_dest(f), action="store_true", help=help_text)
            continue
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        extra = {k: meta[k] for k in ("choices", "metavar") if k in meta}
        if kind is dict:
            parser.add_argument(flag, dest=f.name, action="append", type=key_value, default=[], help=help_text,
                                **extra)
            continue
        convert = checks[meta["check"]] if "check" in meta else kind
        parser.add_argument(flag, dest=f.name, type=convert, default=f.default, help=help_text, **extra)


def dataclass_from_args(cls, args: argparse.Namespace, **overrides):
    """The ``cls`` instance of parsed ``args`` (see :func:`add_dataclass_arguments`): a negated flag
    that was given is False, ``KEY=VALUE`` pairs become a dict; ``overrides`` win."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli", True) is False:
            continue
        kind = _value_type(hints[f.name])
        if kind is bool and _is_negated(f):
            if getattr(args, _dest(f)):
                values[f.name] = False
        elif kind is dict:
            values[f.name] = dict(getattr(args, f.name))
        else:
            values[f.name] = getattr(args, f.name)
    return cls(**{**values, **overrides})


__all__ = ["add_dataclass_arguments", "dataclass_from_args"]
