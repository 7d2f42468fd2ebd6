"""The ``rawcv`` command. Parsing and printing only: the work happens in the library's rooms.

Subcommands import what they need when they run, so ``rawcv --help`` and ``rawcv process`` never
import torch.
"""

from __future__ import annotations

import argparse
import sys

from .._optional import EXTRAS, missing
from ..errors import MissingDependencyError, RawcvError
from . import commands

SUBCOMMANDS = commands.SUBCOMMANDS


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default. ``None`` (resolved at run time: the help text says
    to what), ``False`` (a flag) and empty lists say nothing, and neither does a help text that
    already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or default == [] or "%(default)" in text
                or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """An argument parser whose sub-parsers (``rawcv train classify`` ...) inherit the formatter,
    and whose errors are one line (the usage is one ``--help`` away)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(
        prog="rawcv",
        description="Camera RAW files to linear-radiance images, and CNNs that learn on raw data.")
    parser.add_argument("--version", action="version", version=f"rawcv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except (MissingDependencyError, ModuleNotFoundError) as exc:
        # whichever rawcv room noticed first, the user needs to know what this command lacks
        if exc.name not in EXTRAS:
            raise
        print(f"rawcv {args.command}: error: {missing(exc.name, 'this command')}", file=sys.stderr)
        code = 1
    except RawcvError as exc:
        print(f"rawcv {args.command}: error: {exc}", file=sys.stderr)
        code = 1
    except BrokenPipeError:  # e.g. `rawcv stages | head`
        sys.stderr.close()
        code = 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    return int(code or 0)


def entry_point() -> None:
    sys.exit(main())
