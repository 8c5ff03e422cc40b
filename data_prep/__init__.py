"""Dataset preparation scripts: ``python -m data_prep.NAME --root RAW_OR_MAT_DIR --out DIR``.

One module per benchmark (mirflickr25k, nuswide_tc10, nuswide_tc21, coco, iaprtc12) and ``mat``
(any paired file), each the same as ``crossmodal datasets prepare NAME``: the arguments become one
:class:`crossmodal.data.prepare.PrepareOptions`; the work is in :mod:`crossmodal.data.prepare`, the
readers in :mod:`crossmodal.data.readers` and the per-source parsers in :mod:`crossmodal.data.sources`.
These thin scripts run from a checkout; they are not installed.
"""

from __future__ import annotations

import sys


def main(name: str, argv: list[str] | None = None) -> int:
    from crossmodal.cli import main as cli_main

    return cli_main(["datasets", "prepare", name] + list(sys.argv[1:] if argv is None else argv))
