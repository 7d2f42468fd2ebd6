"""The ``rawcv`` command. Parsing and printing only: the work happens in the library's rooms.

Subcommands import what they need when they run, so ``rawcv --help`` and ``rawcv process`` never
import torch.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import RawcvError
from . import commands

SUBCOMMANDS = commands.SUBCOMMANDS


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
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
