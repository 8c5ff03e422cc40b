"""Thin wrapper: ``python -m experiments.run SWEEP.yaml ...`` is ``crossmodal sweep SWEEP.yaml ...``
(the code lives in :mod:`crossmodal.experiments.sweep`)."""

import sys

from crossmodal.experiments.sweep import main

if __name__ == "__main__":
    sys.exit(main())
