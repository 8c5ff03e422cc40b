"""A 12-run toy sweep (3 methods x 2 code lengths x 2 seeds) run twice in one process: one run
after another (``--executor sequential``), then each run one task on a local Dask cluster of 2
worker processes (``--executor dask --workers 2``, the cluster's start and stop included), with
the ratio of the wall times and whether the two report tables are identical.

    python benchmarks/bench_sweep.py [--workers 2] [--methods djsrh-fast,jdsh-fast,dgcpn-fast]
                                     [--results benchmarks/results/bench_sweep.txt]

The last line is exactly
``sweep: N runs, sequential X s, dask 2 workers Y s: R x, tables identical: True|False``.
Goal: >= 1.6x on 2 cores with identical tables. The deep baselines' ``fast`` presets on toy are
chosen because each run takes seconds (so the cluster's start, about one run's time, is small
beside the sweep) and is made of many small steps, as a real sweep's runs are. Each Dask task runs
at cores / workers threads; the sequential sweep at the default (auto) setting, as
``crossmodal sweep`` runs it. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sweep_file(folder: Path, methods: list[str]) -> Path:
    entries = [{"method": m[:-len("-fast")], "preset": "fast"} if m.endswith("-fast") else {"method": m}
               for m in methods]
    sw = {"name": "bench", "datasets": ["toy"], "methods": entries, "bits": [16, 32], "seeds": [0, 1],
          "tracker": "none"}
    f = folder / "bench.yaml"
    f.write_text(yaml.safe_dump(sw))
    return f


def commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", default="djsrh-fast,jdsh-fast,dgcpn-fast")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "bench_sweep.txt"),
                    help="file the docs page reads (written atomically; '' to skip)")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    from crossmodal.experiments.executors import DaskExecutor
    from crossmodal.experiments.sweep import run_sweep
    from crossmodal.report import write_report
    from crossmodal.threads import apply_threads, available_cores

    apply_threads(None)
    lines = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        f = sweep_file(tmp, methods)
        say(f"# bench_sweep.py, commit {commit()}, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
            f"{available_cores()} cores, load average before {os.getloadavg()[0]:.1f}")
        say(f"# methods {', '.join(methods)} on toy x bits 16, 32 x seeds 0, 1")
        t0 = time.perf_counter()
        seq = run_sweep(f, out=tmp / "seq", log=lambda line: None)
        t_seq = time.perf_counter() - t0
        say(f"sequential: {seq['done']} runs trained, {seq['failed']} failed in {t_seq:.1f} s")
        apply_threads(None)
        t0 = time.perf_counter()
        with DaskExecutor(workers=args.workers, log=say) as ex:
            dsk = run_sweep(f, out=tmp / "dask", executor=ex, log=lambda line: None)
        t_dask = time.perf_counter() - t0
        say(f"dask, {args.workers} workers: {dsk['done']} runs trained, {dsk['failed']} failed in {t_dask:.1f} s "
            "(cluster start and stop included)")
        tables = []
        for name in ("seq", "dask"):
            write_report([tmp / name], tmp / f"report-{name}", plots=False)
            tables.append((tmp / f"report-{name}" / "table.csv").read_text())
        n = seq["done"] + seq["failed"]
        same = tables[0] == tables[1] and seq == dsk
        say(f"sweep: {n} runs, sequential {t_seq:.1f} s, dask {args.workers} workers {t_dask:.1f} s: "
            f"{t_seq / t_dask:.2f} x, tables identical: {same}")
    if args.results:
        from crossmodal.engine import atomic_write_text

        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
