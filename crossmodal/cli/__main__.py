"""``python -m crossmodal.cli ARGS`` is ``crossmodal ARGS``."""

import sys

from crossmodal.cli import main

sys.exit(main())
