"""A 12-run toy sweep (3 methods x 2 code lengths x 2 seeds) as a user runs it: the command
``crossmodal sweep FILE`` (one run after another, in its process) and
``crossmodal sweep FILE --executor dask --workers 2`` (each run one task on a local cluster of 2
worker processes, its start and stop included), each a fresh process timed from start to exit,
alternated ``--repeats`` times; the medians, their ratio, and whether every report table is
identical. Beside them, the bound of the machine itself: the same 12 runs as two plain sequential
sweeps side by side (one per seed, no executor, no cluster), which no executor of 2 workers can
beat on 2 cores.

    python benchmarks/bench_sweep.py [--workers 2] [--repeats 3]
                                     [--methods djsrh-fast,jdsh-fast,dgcpn-fast]
                                     [--results benchmarks/results/bench_sweep.txt]

The last line is exactly
``sweep: N runs, sequential X s, dask 2 workers Y s: R x, tables identical: True|False``.
Goal: >= 1.6x on 2 cores with identical tables. The deep baselines' ``fast`` presets on toy are
chosen because each run takes seconds and is made of many small steps, as a real sweep's runs
are; the fixed costs of a cluster (its start, each worker's imports, its stop) weigh more beside
seconds-long runs than beside a real table's minutes-long ones. The two commands alternate (on a
shared machine the speed of the cores drifts over minutes) and each starts a fresh Python, so both
pay their imports as a user's command does. Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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


def timed_sweep(f: Path, out: Path, extra: list[str]) -> tuple[float, str]:
    """Run ``crossmodal sweep f --out out EXTRA`` in a fresh process; (wall seconds, its last line)."""
    cmd = [sys.executable, "-m", "crossmodal.cli", "sweep", str(f), "--out", str(out), *extra]
    env = {**os.environ, "WANDB_MODE": "offline"}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"bench_sweep: {' '.join(cmd[2:])} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def timed_halves(f: Path, out: Path) -> float:
    """The machine's bound without any executor: two plain sequential sweeps side by side, one
    per seed (``--only=-s0`` and ``--only=-s1``, into ``out/s0`` and ``out/s1``), started together;
    wall seconds until both end."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "crossmodal.cli", "sweep", str(f), "--out", str(out / half),
                               f"--only=-{half}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
             for half in ("s0", "s1")]
    errors = [p.communicate(timeout=3600)[1] for p in procs]
    seconds = time.perf_counter() - t0
    for p, err in zip(procs, errors):
        if p.returncode != 0:
            sys.exit(f"bench_sweep: a half sweep exited with {p.returncode}:\n{err.decode()[-2000:]}")
    return seconds


def table(runs: list[Path], out: Path) -> str:
    from crossmodal.report import write_report

    write_report(runs, out, plots=False)
    return (out / "table.csv").read_text()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="each command this many times, alternated")
    ap.add_argument("--methods", default="djsrh-fast,jdsh-fast,dgcpn-fast")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "bench_sweep.txt"),
                    help="file the docs page reads (written atomically; '' to skip)")
    args = ap.parse_args()
    if args.repeats < 1 or args.workers < 1:
        sys.exit("bench_sweep: --repeats and --workers must be >= 1")
    from crossmodal.threads import available_cores

    lines = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    methods = args.methods.split(",")
    dask = ["--executor", "dask", "--workers", str(args.workers)]
    times: dict[str, list[float]] = {"sequential": [], "dask": [], "halves": []}
    tables = set()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        f = sweep_file(tmp, methods)
        say(f"# bench_sweep.py, commit {commit()}, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
            f"{available_cores()} cores, load average before {os.getloadavg()[0]:.1f}")
        say(f"# methods {', '.join(methods)} on toy x bits 16, 32 x seeds 0, 1; each command a fresh process, "
            f"{args.repeats} times, alternated")
        for r in range(args.repeats):
            for name, extra in (("sequential", []), ("dask", dask)):
                out = tmp / f"{name}-{r}"
                seconds, last = timed_sweep(f, out, extra)
                times[name].append(seconds)
                tables.add(table([out], tmp / f"report-{name}-{r}"))
                say(f"{name} #{r + 1}: {seconds:.1f} s ({last.split(' -> ')[0]})")
            out = tmp / f"halves-{r}"
            times["halves"].append(timed_halves(f, out))
            tables.add(table([out / "s0", out / "s1"], tmp / f"report-halves-{r}"))
            say(f"two plain sequential sweeps side by side (seed 0 | seed 1) #{r + 1}: {times['halves'][-1]:.1f} s")
        seq, dsk = statistics.median(times["sequential"]), statistics.median(times["dask"])
        n = len(list((tmp / "sequential-0").glob("*-toy-*")))
        halves = statistics.median(times["halves"])
        say(f"medians of {args.repeats}: sequential {seq:.1f} s, dask {dsk:.1f} s, two plain processes "
            f"{halves:.1f} s (ranges {min(times['sequential']):.1f}-{max(times['sequential']):.1f}, "
            f"{min(times['dask']):.1f}-{max(times['dask']):.1f}, "
            f"{min(times['halves']):.1f}-{max(times['halves']):.1f} s)")
        say(f"the machine's bound without an executor (two plain processes): {seq / halves:.2f} x")
        say(f"sweep: {n} runs, sequential {seq:.1f} s, dask {args.workers} workers {dsk:.1f} s: "
            f"{seq / dsk:.2f} x, tables identical: {len(tables) == 1}")
    if args.results:
        from crossmodal.engine import atomic_write_text

        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
