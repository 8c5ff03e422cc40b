"""Thin wrapper: ``python -m experiments.reproduce NAME ...`` is ``crossmodal reproduce NAME ...``
(the code lives in :mod:`crossmodal.experiments.reproduce`, the options in :mod:`crossmodal.cli.reproduce`)."""

import sys

from crossmodal.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
