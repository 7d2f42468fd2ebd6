"""Command-line options made from the fields of an options dataclass, and back."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Optional

import pytest

from rawcv.cli.dataclass_args import add_dataclass_arguments, dataclass_from_args
from rawcv.options import option


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _pair(text):
    key, _, value = text.partition("=")
    return key, value


@dataclass
class Example:
    size_limit: int = option(4, check="positive_int", help="a number")
    kind: str = option("a", choices=("a", "b"), help="a choice")
    rate: Optional[float] = option(None, metavar="RATE", help="an optional number")
    fast: bool = option(False, help="a flag")
    smooth: bool = option(True, help="not smooth")
    chatty: Optional[bool] = option(None, negated=True, help="quiet")
    extras: dict = option(default_factory=dict, flag="--extra", metavar="KEY=VALUE", help="repeatable")
    internal: float = option(0.5, cli=False, help="library only")
    debug_steps: Optional[int] = option(None, hidden=True, help="for tests")


def _parser():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Example, checks={"positive_int": _positive_int}, key_value=_pair)
    return parser


def test_fields_become_options_and_come_back():
    parser = _parser()
    assert dataclass_from_args(Example, parser.parse_args([])) == Example()
    args = parser.parse_args(["--size-limit", "7", "--kind", "b", "--rate", "0.25", "--fast", "--no-smooth",
                              "--no-chatty", "--extra", "x=1", "--extra", "y=2", "--debug-steps", "3"])
    assert dataclass_from_args(Example, args) == Example(size_limit=7, kind="b", rate=0.25, fast=True, smooth=False,
                                                         chatty=False, extras={"x": "1", "y": "2"}, debug_steps=3)
    assert dataclass_from_args(Example, args, kind="a").kind == "a"
    usage = parser.format_help()
    assert "--internal" not in usage and "--debug-steps" not in usage and "RATE" in usage
    for bad in (["--size-limit", "0"], ["--kind", "c"], ["--internal", "1"], ["--smooth"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
