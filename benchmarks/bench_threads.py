"""Training beside a busy process: UGACH-fast on wiki, alone and beside one CPU-bound process,
for each thread setting, all in one run (alternating, repeated), with the slow-down ratios.

    python benchmarks/bench_threads.py [--data-root /work/shared/data/wiki] [--reps 2]
                                       [--settings auto,all] [--timeout 600]

Each measurement is a fresh ``crossmodal train ugach --dataset wiki --bits 16 --preset fast``
process (wall time of the whole command: data, graph, 10 epochs, evaluation). ``all`` is the
old default (every core in every pool, as torch and OpenBLAS start); ``auto`` the new one;
a number N is ``--threads N``. The busy process is one Python loop spinning on a core.
Goal: ``auto`` at most 1.3x slower beside the busy process, and no slower alone than ``all``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def train_once(setting: str, data_root: str, timeout: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one training command; (inf, inf) past ``timeout``."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", PYTHONPATH=str(ROOT))
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CROSSMODAL_THREADS"):
        env.pop(k, None)  # measure the settings, not the caller's environment
    threads = str(os.cpu_count() or 1) if setting == "all" else setting
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "crossmodal.cli", "train", "ugach", "--dataset", "wiki", "--data-root", data_root,
               "--bits", "16", "--preset", "fast", "--tracker", "none", "--out", out, "--threads", threads, "-q"]
        t, c = time.perf_counter(), _child_cpu()
        try:
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return float("inf"), float("inf")
        return time.perf_counter() - t, _child_cpu() - c  # before the busy process is reaped


def busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(ROOT.parent.parent / "shared" / "data" / "wiki"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--settings", default="auto,all", help="comma-separated: auto, all, or thread counts")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per training run (inf when exceeded)")
    args = ap.parse_args()
    if not (Path(args.data_root) / "raw_features.mat").is_file():
        sys.exit(f"wiki data not found under {args.data_root}; pass --data-root")
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}; settings {settings}; "
          f"{args.reps} repetitions, alone and beside one busy process, alternating", flush=True)
    times = {(s, b): [] for s in settings for b in (False, True)}
    cpus = {(s, b): [] for s in settings for b in (False, True)}
    for rep in range(args.reps):
        for s in settings:
            for beside in (False, True):
                hog = busy() if beside else None
                try:
                    t, c = train_once(s, args.data_root, args.timeout)
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
                times[s, beside].append(t)
                cpus[s, beside].append(c)
                print(f"  rep {rep + 1} threads={s:>4} {'beside busy' if beside else 'alone      '}: {t:7.1f} s wall, "
                      f"{c:7.1f} s CPU (load {os.getloadavg()[0]:.1f})", flush=True)
    print("\nmedians; CPU = user + system seconds of the training process (spinning threads burn it,")
    print("so it shows the pathology even when other users' load blurs the wall times)")
    print("threads  alone wall / CPU   beside busy wall / CPU   slow-down wall / CPU")
    med = {k: statistics.median(v) for k, v in times.items()}
    mcpu = {k: statistics.median(v) for k, v in cpus.items()}
    for s in settings:
        a, b = med[s, False], med[s, True]
        ca, cb = mcpu[s, False], mcpu[s, True]
        print(f"{s:>7}  {a:7.1f} / {ca:6.1f} s  {b:9.1f} / {cb:6.1f} s     {b / a:6.2f}x / {cb / ca:.2f}x")
    if "auto" in settings and "all" in settings:
        print(f"auto vs all: alone {med['auto', False] / med['all', False]:.2f}x the time, "
              f"beside busy {med['auto', True] / med['all', True]:.2f}x the time")


if __name__ == "__main__":
    main()
