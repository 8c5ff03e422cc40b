"""How many distinct database codes each run of the released-code grid produced (a collapse check).

    PYTHONPATH=. python benchmarks/official/new_methods_codes.py WORK [WORK ...] \
        [--out experiments/results/official/new_methods_codes.md]

``WORK`` is a ``--work`` folder of ``new_methods.py``: its ``METHOD-DATASET-BITS-SEED/`` folders hold
the released code's codes (``released_database_*.npy``, signs taken; UCMFH also
``permodality_*``), its ``runs/`` the port's run folders (``index-{image,text}.npz``, packed codes).
A run whose database holds a handful of distinct codes among thousands of items has collapsed: its
mAP is decided by which few groups form, and a difference between two such runs says little.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from common import ROOT, atomic_write

OUT = ROOT / "experiments" / "results" / "official" / "new_methods_codes.md"
FOLDER = re.compile(r"^(ucmfh|cirh|daeh)-(\w+)-(\d+)-(\d+)$")
PREFIXES = {"released": "official", "permodality": "official-permodality"}


def distinct(codes: np.ndarray) -> int:
    """Distinct rows of ``codes (N, B)`` (any dtype; rows compared as they are)."""
    return len(np.unique(np.ascontiguousarray(codes), axis=0))


def rows_of(work: Path) -> list[dict]:
    """One row per (method, dataset, seed, variant) found under ``work``: distinct image / text
    database codes and the database size."""
    rows = []
    for folder in sorted(p for p in work.iterdir() if p.is_dir() and FOLDER.match(p.name)):
        method, ds, bits, seed = FOLDER.match(folder.name).groups()
        for prefix, variant in PREFIXES.items():
            files = {m: folder / f"{prefix}_database_{m}.npy" for m in ("image", "text")}
            if all(f.is_file() for f in files.values()):
                codes = {m: np.sign(np.load(f, allow_pickle=False)) for m, f in files.items()}
                rows.append({"method": method, "dataset": ds, "bits": int(bits), "seed": int(seed),
                             "variant": variant, "n": len(codes["image"]),
                             **{m: distinct(c) for m, c in codes.items()}})
    for run in sorted((work / "runs").glob("*")) if (work / "runs").is_dir() else []:
        if not (run / "index-image.npz").is_file() or not (run / "run.json").is_file():
            continue
        spec = json.loads((run / "run.json").read_text(encoding="utf-8"))
        codes = {m: np.load(run / f"index-{m}.npz", allow_pickle=False)["codes"] for m in ("image", "text")}
        rows.append({"method": spec["method"], "dataset": spec["dataset"]["display_name"].split("_")[0],
                     "bits": spec["bits"], "seed": spec["seed"], "variant": spec["label"].split("-", 1)[1],
                     "n": len(codes["image"]), **{m: distinct(c) for m, c in codes.items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", nargs="+", help="--work folders of new_methods.py")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    rows = {}
    for work in map(Path, args.work):
        for r in rows_of(work):
            rows[(r["dataset"], r["method"], r["bits"], r["variant"], r["seed"])] = r
    lines = [("| dataset | method | bits | variant | seed | database items | distinct image codes "
             "| distinct text codes |"), "|---|---|---:|---|---:|---:|---:|---:|"]
    for key in sorted(rows):
        r = rows[key]
        lines.append(f"| {r['dataset']} | {r['method']} | {r['bits']} | {r['variant']} | {r['seed']} | {r['n']} "
                     f"| {r['image']} | {r['text']} |")
    text = "\n".join(lines) + "\n"
    atomic_write(Path(args.out), lambda tmp: tmp.write_text(text, encoding="utf-8"))


if __name__ == "__main__":
    main()
