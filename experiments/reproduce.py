"""Thin wrapper: ``python -m experiments.reproduce NAME ...`` is ``crossmodal reproduce NAME ...``
(the code lives in :mod:`crossmodal.experiments.reproduce`)."""

import sys

from crossmodal.experiments.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
