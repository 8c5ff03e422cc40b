"""Thin wrapper: ``python -m experiments.run SWEEP.yaml ...`` is ``crossmodal sweep SWEEP.yaml ...``
(the code lives in :mod:`crossmodal.experiments.sweep`, the options in :mod:`crossmodal.cli.sweep`)."""

import sys

from crossmodal.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
