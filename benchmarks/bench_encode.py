"""Encoding a feature matrix larger than a process should hold: 2,000,000 x 512 float32 (4 GB),
memory-mapped from a file on disk, with ``crossmodal encode`` one chunk after another and on a
local Dask cluster of 1 and 2 workers, in one run: rows/s and the peak RSS of the whole process
tree (the command, the Dask scheduler, nannies and workers), and whether the codes equal
``hasher.encode_image`` on the same rows.

    python benchmarks/bench_encode.py [--rows 2000000] [--dim 512] [--chunk-rows N]
                                      [--workdir /tmp] [--results benchmarks/results/bench_encode.txt]

The model is a UGACH run (hidden 1024, 64 bits: the ``fast`` preset's width) trained for one
epoch on 2,000 synthetic pairs of 512-d image / 64-d text features, so its towers have the width a
real run's have. Goal: peak RSS <= 1.5 GB. Each configuration is one ``crossmodal encode`` process
(its wall time includes Python's start, the imports, the finiteness pass over the file and, for
Dask, the cluster's start); RSS is sampled every 50 ms over the process and all its descendants.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (("sequential", []), ("dask 1 worker", ["--executor", "dask", "--workers", "1"]),
           ("dask 2 workers", ["--executor", "dask", "--workers", "2"]))


def train_model(work: Path, dim: int) -> Path:
    """A finished UGACH run on synthetic 512-d image / 64-d text pairs (10 classes)."""
    from crossmodal.runs import train_run

    rng = np.random.default_rng(0)
    n, classes = 2000, 10
    y = rng.integers(0, classes, n)
    image = (rng.standard_normal((classes, dim))[y] + rng.standard_normal((n, dim))).astype(np.float32)
    text = (rng.standard_normal((classes, 64))[y] + rng.standard_normal((n, 64))).astype(np.float32)
    np.savez(work / "pairs.npz", image=image, text=text, labels=np.eye(classes, dtype=np.uint8)[y])
    config = dict(hidden=1024, pretrain_epochs=1, epochs=1, batch_size=128, optimizer="adam", progress=False)
    return train_run("ugach", str(work / "pairs.npz"), 64, seed=0, config=config, out=work / "runs", tracker="none",
                     log=lambda *a: None)


def write_features(path: Path, rows: int, dim: int) -> None:
    """A (rows, dim) float32 .npy written block by block through a memory map (never whole in memory)."""
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    rng = np.random.default_rng(1)
    for s in range(0, rows, 100_000):
        e = min(rows, s + 100_000)
        x[s:e] = rng.standard_normal((e - s, dim), dtype=np.float32)
    x.flush()
    del x


def tree_rss(proc) -> int:
    """Resident bytes of ``proc`` and all its descendants now."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def encode_once(run: Path, feats: Path, out: Path, chunk_rows: int, extra: list[str]) -> dict:
    """One ``crossmodal encode`` process: wall seconds, peak tree RSS, its last line."""
    import psutil

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "crossmodal.cli", "encode", str(run), "--features", str(feats), "--modality",
           "image", "--out", str(out), *(["--chunk-rows", str(chunk_rows)] if chunk_rows else []), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    text = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"encode failed ({proc.returncode}):\n{text[-3000:]}")
    rate = re.search(r"(\d+) rows/s", text)
    return {"wall": wall, "peak": peak, "encode_rate": int(rate.group(1)) if rate else None}


def codes_match(run: Path, feats: Path, out: Path, n_chunks: int = 4) -> bool:
    """The shards of ``n_chunks`` chunks (first, last, two between) equal ``hasher.encode_image``
    on the same rows."""
    from crossmodal.methods import load_hasher
    from crossmodal.runs import EncodedCodes

    hasher = load_hasher(run / "model")
    x = np.load(feats, mmap_mode="r")
    enc = EncodedCodes(out)
    chunks = enc.manifest["chunks"]
    pick = sorted({0, len(chunks) // 3, 2 * len(chunks) // 3, len(chunks) - 1})[:n_chunks]
    for i, (ids, codes) in enumerate(enc):
        if i in pick and not np.array_equal(codes, hasher.encode_image(np.array(x[ids[0]:ids[-1] + 1]))):
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--chunk-rows", type=int, default=None, help="default: crossmodal encode's")
    ap.add_argument("--workdir", default=tempfile.gettempdir(), help="where the feature file goes (removed after)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "bench_encode.txt"),
                    help="file the docs page reads (written atomically; '' to skip)")
    args = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    from crossmodal.runs.encode import DEFAULT_CHUNK_ROWS
    from crossmodal.threads import available_cores

    lines = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    work = Path(tempfile.mkdtemp(prefix="bench-encode-", dir=args.workdir))
    try:
        run = train_model(work, args.dim)
        feats = work / "features.npy"
        t0 = time.perf_counter()
        write_features(feats, args.rows, args.dim)
        gb = feats.stat().st_size / 1e9
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        say(f"# bench_encode.py, commit {commit or 'unknown'}, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
            f"{available_cores()} cores, load average before {os.getloadavg()[0]:.1f}")
        say(f"# {args.rows} x {args.dim} float32 ({gb:.1f} GB, written in {time.perf_counter() - t0:.0f} s), "
            f"UGACH hidden 1024, 64 bits, chunks of {args.chunk_rows or DEFAULT_CHUNK_ROWS} rows")
        say(f"{'configuration':16s} {'wall s':>8s} {'rows/s (command)':>17s} {'rows/s (encoding)':>18s} "
            f"{'peak RSS GB':>12s}")
        results, sums = {}, []
        for name, extra in CONFIGS:
            out = work / f"out-{len(results)}"
            r = encode_once(run, feats, out, args.chunk_rows, extra)
            results[name] = r
            sums.append([c["sha256"] for c in json.loads((out / "manifest.json").read_text())["chunks"]])
            say(f"{name:16s} {r['wall']:8.1f} {args.rows / r['wall']:17.0f} {r['encode_rate'] or 0:18d} "
                f"{r['peak'] / 1e9:12.2f}")
        same = all(s == sums[0] for s in sums)
        match = codes_match(run, feats, work / "out-0")
        worst = max(r["peak"] for r in results.values()) / 1e9
        say(f"shards identical in the 3 configurations: {same}; codes equal hasher.encode_image on the same rows "
            f"(4 chunks checked): {match}")
        say(f"encode: {args.rows} x {args.dim} float32 ({gb:.1f} GB): " + ", ".join(
            f"{name} {args.rows / r['wall']:.0f} rows/s (peak RSS {r['peak'] / 1e9:.2f} GB)"
            for name, r in results.items()) + f"; peak RSS <= 1.5 GB: {worst <= 1.5}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.results:
        from crossmodal.engine import atomic_write_text

        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
