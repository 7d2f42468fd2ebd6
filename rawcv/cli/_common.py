"""Printing helpers and options shared by the subcommands."""

from __future__ import annotations

import re
import sys


def fail_line(command: str, exc) -> None:
    print(f"rawcv {command}: error: {exc}", file=sys.stderr)


class Progress:
    """A tqdm progress bar on stderr, or nothing when disabled or tqdm is missing."""

    def __init__(self, total: int, desc: str, *, enabled: bool = True):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=desc, unit="file", file=sys.stderr, leave=False)
            except ImportError:
                pass

    def update(self, n: int = 1):
        if self.bar is not None:
            self.bar.update(n)

    def write(self, line: str):
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()


BAYER_FORMAT = "WIDTHxHEIGHT:CFA:BITS"


def add_dump_options(p) -> None:
    """``--bayer``, ``--black``, ``--white``: how to read headerless sensor dumps."""
    p.add_argument("--bayer", metavar=BAYER_FORMAT,
                   help="read the inputs as headerless dumps of little-endian uint16 values with this "
                        "layout, e.g. 768x512:RGGB:14 (without it such files are refused, never guessed)")
    p.add_argument("--black", metavar="B|B1,B2,B3,B4",
                   help="black level of the --bayer dumps, one value or four in CFA raster order; "
                        "0 when not given")
    p.add_argument("--white", metavar="W", type=float,
                   help="white level of the --bayer dumps; 2**BITS - 1 when not given")


def dump_reader(args):
    """A ``path -> RawImage`` reader for ``--bayer`` dumps, or ``None`` without ``--bayer``.

    Raises
    ------
    RawcvError
        A malformed ``--bayer`` / ``--black`` value, or ``--black`` / ``--white`` without ``--bayer``.

    Examples
    --------
    >>> import argparse
    >>> dump_reader(argparse.Namespace(bayer="768x512:rggb:14", black="600", white=15520.0)).keywords
    {'width': 768, 'height': 512, 'cfa': 'RGGB', 'bits': 14, 'black': [600.0], 'white': 15520.0}
    """
    import functools

    from ..errors import RawcvError
    from ..io import read_bayer
    from ..meta import validate_cfa

    if args.bayer is None:
        if args.black is not None or args.white is not None:
            raise RawcvError("--black and --white describe headerless dumps and need --bayer "
                             "(a RAW file's header gives its own levels)")
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*:\s*(\w+)\s*:\s*(\d+)\s*", args.bayer)
    if not m:
        raise RawcvError(f"--bayer {args.bayer!r}: expected {BAYER_FORMAT}, e.g. 768x512:RGGB:14")
    width, height, cfa, bits = int(m[1]), int(m[2]), m[3], int(m[4])
    if width < 2 or height < 2:
        raise RawcvError(f"--bayer {args.bayer!r}: the size must be at least 2x2")
    if not 1 <= bits <= 16:
        raise RawcvError(f"--bayer {args.bayer!r}: BITS must be 1 to 16 (uint16 values), got {bits}")
    try:
        cfa = validate_cfa(cfa)
    except RawcvError as exc:
        raise RawcvError(f"--bayer {args.bayer!r}: {exc}") from None
    black = [0.0]
    if args.black is not None:
        try:
            black = [float(v) for v in args.black.split(",")]
        except ValueError:
            black = []
        if len(black) not in (1, 4):
            raise RawcvError(f"--black {args.black!r}: expected one number or four separated by commas")
    white = (1 << bits) - 1 if args.white is None else args.white
    if white <= max(black):
        raise RawcvError(f"--white {white:g} must exceed the black level {max(black):g}")
    return functools.partial(read_bayer, width=width, height=height, cfa=cfa, bits=bits, black=black,
                             white=white)
