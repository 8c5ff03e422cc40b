"""Dataset preparation scripts: ``python -m data_prep.NAME --root RAW_OR_MAT_DIR --out DIR``.

One module per benchmark (mirflickr25k, nuswide_tc10, nuswide_tc21, coco, iaprtc12), each the
same as ``crossmodal datasets prepare NAME``; the work is in :mod:`crossmodal.data.prepare`
and the per-source parsers in ``crossmodal/data/``.
"""

from __future__ import annotations

import argparse
import sys


def main(name: str, argv: list[str] | None = None) -> int:
    from crossmodal.cli import add_prepare_arguments, run_prepare
    from crossmodal.errors import CrossmodalError

    parser = argparse.ArgumentParser(prog=f"python -m data_prep.{name.replace('-', '_')}",
                                     description=f"Prepare {name} as a canonical dataset folder (resumable).")
    add_prepare_arguments(parser, name=name)
    args = parser.parse_args(argv)
    try:
        return run_prepare(args, name=name)
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
