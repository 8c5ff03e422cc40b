"""Regenerate the committed result tables and plots in ``experiments/results/NAME/``.

    python -m experiments.reproduce toy
    python -m experiments.reproduce wiki --data-root ../shared/data/wiki

Runs the sweep ``experiments/sweeps/NAME.yaml`` (resumable: finished runs under
``runs/sweeps/NAME`` are reused) and aggregates it with ``crossmodal report`` into
``experiments/results/NAME/`` (table.md, table.csv, PR / mAP-vs-bits / P@k plots).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    from crossmodal.errors import CrossmodalError
    from crossmodal.report import write_report
    from experiments.run import load_sweep, run_sweep

    p = argparse.ArgumentParser(prog="python -m experiments.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", help="sweeps under experiments/sweeps/ (toy, wiki, digits, ...)")
    p.add_argument("--data-root", default=None, help="data folder for the sweep's datasets")
    p.add_argument("--runs", default="runs/sweeps", help="where the runs go (default runs/sweeps/NAME)")
    args = p.parse_args(argv)
    try:
        for name in args.names:
            sweep = HERE / "sweeps" / f"{name}.yaml"
            sw = load_sweep(sweep)
            runs = Path(args.runs) / sw["name"]
            counts = run_sweep(sweep, data_root=args.data_root, out=runs)
            order = [m.get("label") or (m["method"] if m.get("preset") in (None, "paper") else f"{m['method']}-{m['preset']}")
                     for m in sw["methods"]]
            table, files = write_report([runs], HERE / "results" / sw["name"], methods_order=order)
            print(table.to_markdown())
            print(f"{sw['name']}: {len(files)} files in {HERE / 'results' / sw['name']}" + (
                f"; {counts['failed']} runs FAILED" if counts["failed"] else ""))
    except CrossmodalError as exc:
        print(f"crossmodal: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
