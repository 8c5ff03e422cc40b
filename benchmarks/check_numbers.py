"""Numbers must not move: rerun one grid point of every committed table and compare.

For each committed table (``experiments/sweeps/{toy,wiki,wiki-unified,digits,wiki-image}.yaml``)
this runs every method of the sweep at one grid point (32 bits, seed 0 by default) through the
``crossmodal sweep`` command of a checkout, and records each run's scalar metrics (every direction,
full float precision) and a SHA-256 of its database codes. Two records compare figure by figure,
to the last digit.

Typical use around a refactor (the old code from a git revision, the new from this checkout)::

    python benchmarks/check_numbers.py record --rev HEAD~3 --out /tmp/old.json
    python benchmarks/check_numbers.py record --out /tmp/new.json
    python benchmarks/check_numbers.py compare /tmp/old.json /tmp/new.json

``record --rev REV`` checks ``REV`` out into a temporary git worktree and runs its code (its
``crossmodal`` package first on ``PYTHONPATH``); without ``--rev`` it runs this checkout.
``--tables toy,digits`` restricts the tables, ``--only TEXT`` the grid points (as ``sweep --only``).
Records kept in ``benchmarks/results/``: ``check_numbers-b309ae5.json`` (the code before the
issue-20 restructuring) and ``check_numbers-layers.json`` (after it): 46 runs, 638 figures, 0 differ.
The last line of ``compare`` is ``numbers: N figures, M differ`` (exit code 1 when M > 0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("toy", "wiki", "wiki-unified", "digits", "wiki-image")
WIKI = ROOT.parent / "shared" / "data" / "wiki"


def _codes_digest(run: Path) -> str:
    """SHA-256 over the packed database codes of every index file of a run folder (the
    ``codes`` arrays only: the header records the model's identity, a hash of its config, which
    legitimately changes when a method gains a key)."""
    h = hashlib.sha256()
    for f in sorted(run.glob("index-*.npz")):
        with np.load(f, allow_pickle=False) as z:
            h.update(f.name.encode())
            h.update(np.ascontiguousarray(z["codes"]).tobytes())
    return h.hexdigest()[:16]


def _figures(run: Path) -> dict:
    rep = json.loads((run / "report.json").read_text(encoding="utf-8"))
    out = {}
    for direction, res in rep["results"].items():
        for key, v in res.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{direction}/{key}"] = v
    out["codes"] = _codes_digest(run)
    return out


def _checkout(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev], check=True,
                   stdout=subprocess.DEVNULL)
    return where


def record(tables, bits: int, seed: int, only: str | None, code_root: Path, work: Path, data_root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{code_root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "WANDB_MODE": "offline", "CROSSMODAL_THREADS": os.environ.get("CROSSMODAL_THREADS", "1")}
    found: dict = {}
    for table in tables:
        sweep = yaml.safe_load((code_root / "experiments" / "sweeps" / f"{table}.yaml").read_text())
        sweep.update(bits=[bits], seeds=[seed], name=f"check-{table}")
        sweep.pop("out", None)
        tmp = work / f"{table}.yaml"
        tmp.write_text(yaml.safe_dump(sweep))
        out = work / "runs" / table
        cmd = [sys.executable, "-m", "crossmodal.cli", "sweep", str(tmp), "--out", str(out), "--tracker", "none",
               "-q", "--data-root", str(data_root)]
        if only:
            cmd += ["--only", only]
        print(f"check_numbers: {table}: {' '.join(cmd[3:])}", flush=True)
        subprocess.run(cmd, env=env, cwd=str(work), check=False)
        for run in sorted(p.parent for p in out.rglob("report.json")):
            spec = json.loads((run / "run.json").read_text(encoding="utf-8"))
            label = spec.get("label") or spec.get("method")
            found.setdefault(table, {})[label] = _figures(run)
    return found


def compare(a: dict, b: dict) -> int:
    n = bad = 0
    for table in sorted(set(a) | set(b)):
        for label in sorted(set(a.get(table, {})) | set(b.get(table, {}))):
            fa, fb = a.get(table, {}).get(label), b.get(table, {}).get(label)
            if fa is None or fb is None:
                print(f"{table} {label}: only in {'the first' if fb is None else 'the second'} record")
                bad += 1
                continue
            for key in sorted(set(fa) | set(fb)):
                n += 1
                if fa.get(key) != fb.get(key):
                    bad += 1
                    print(f"{table} {label} {key}: {fa.get(key)!r} -> {fb.get(key)!r}")
    print(f"numbers: {n} figures, {bad} differ")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="run one grid point of each table and write its figures")
    r.add_argument("--rev", help="git revision to run (a temporary worktree); default: this checkout")
    r.add_argument("--out", required=True, help="JSON file to write")
    r.add_argument("--tables", default=",".join(TABLES), help="comma-separated table names")
    r.add_argument("--bits", type=int, default=32)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--only", help="only grid points whose folder name contains this text")
    r.add_argument("--data-root", default=str(WIKI), help="folder of the wiki files")
    c = sub.add_parser("compare", help="compare two records figure by figure")
    c.add_argument("first")
    c.add_argument("second")
    args = ap.parse_args(argv)
    if args.cmd == "compare":
        return compare(json.loads(Path(args.first).read_text()), json.loads(Path(args.second).read_text()))
    with tempfile.TemporaryDirectory(prefix="check-numbers-") as tmp:
        work = Path(tmp)
        code_root = _checkout(args.rev, work / "code") if args.rev else ROOT
        try:
            found = record(args.tables.split(","), args.bits, args.seed, args.only, code_root, work,
                           Path(args.data_root))
        finally:
            if args.rev:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(code_root)],
                               check=False)
    Path(args.out).write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"check_numbers: {sum(len(v) for v in found.values())} runs recorded in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
