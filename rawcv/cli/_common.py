"""Printing helpers shared by the subcommands."""

from __future__ import annotations

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
