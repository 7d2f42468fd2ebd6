"""Run the rawcv command line from a checkout: ``python cli.py ...`` is the same as ``rawcv ...``."""

import sys

from rawcv.cli import main

if __name__ == "__main__":
    sys.exit(main())
