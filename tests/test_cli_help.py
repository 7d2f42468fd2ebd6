"""``--help`` shows every default, and the README's command-line synopsis matches the parsers."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rawcv.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def _commands(parser, prefix=()):
    """(words, parser) for every command that takes options: ``("train", "classify")`` ..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, prefix + (name,))


COMMANDS = dict(_commands(build_parser()))


def _options(parser) -> dict:
    return {a.option_strings[-1]: a for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)}


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_every_option_has_help_and_its_default_is_shown(words):
    parser = COMMANDS[words]
    text = " ".join(parser.format_help().split())
    for option, action in _options(parser).items():
        assert action.help, f"rawcv {' '.join(words)} {option} has no help text"
        if action.default not in (None, False, []):
            default = str(action.default)
            assert f"(default: {default})" in text or (f"default {default}" in text
                                                       and "%(default)" not in action.help), (option, default)


def usage_line(words) -> str:
    """``rawcv WORDS ...`` as argparse prints its usage, on one line, without ``[-h]``."""
    usage = " ".join(COMMANDS[words].format_usage().split())
    return usage.removeprefix("usage: ").replace(" [-h]", "")


def _readme_synopsis() -> dict:
    block = README.read_text().split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = {}
    for line in block.strip().splitlines():
        words = line.split()
        assert words[0] == "rawcv", line
        key = tuple(words[1:3]) if tuple(words[1:3]) in COMMANDS else tuple(words[1:2])
        lines[key] = line
    return lines


def test_readme_synopsis_names_every_command():
    assert sorted(_readme_synopsis()) == sorted(COMMANDS)


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_readme_synopsis_is_the_usage_of_help(words):
    assert _readme_synopsis()[words] == usage_line(words)
