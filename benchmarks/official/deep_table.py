"""``deep.md`` from ``deep.json``: the released deep code beside the port, figure by figure.

One table per dataset and bit length, in the layout of ``classic.md``: a row per method x
direction, mAP@all as mean ± sample std over the seeds (per-modality database codes) of the
released code (``official``), the port (``crossmodal train METHOD --preset paper``), their gap
(bold above 0.01), the released run's last epoch where the released code selects another epoch
(``official-last``, UCCH), the seed count and the mean training seconds of each side (one
thread each). Then, per code base, the commit that ran and every change it needed, with its
reason. Every figure comes from the results file.

Usage: ``python benchmarks/official/deep_table.py [RESULTS.json]`` (default
``experiments/results/official/deep.json``; writes ``deep.md`` beside it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Results, atomic_write  # noqa: E402

DATASET_ORDER = ("toy", "wiki", "uci")
DIRS = (("i2t", "I→T"), ("t2i", "T→I"))
HEADER = ("| method | direction | official | port | port − official | official, last epoch | seeds | epochs | "
          "constant bits (official / port) | seconds (official / port) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def mean_std(values: list[float]) -> str:
    """``"0.1234 ± 0.0040"`` (sample std; one value: ``± 0``, as ``classic.md``); none: ``—``."""
    if not values:
        return "—"
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.4f} ± {std:.4f}"


def group(entries: list[dict]) -> dict:
    """``{(dataset, bits, method, variant): [entry, ...]}`` sorted by seed."""
    out: dict = {}
    for e in sorted(entries, key=lambda e: e["seed"]):
        out.setdefault((e["dataset"], e["bits"], e["method"], e["variant"]), []).append(e)
    return out


def maps(entries: list[dict], direction: str) -> list[float]:
    return [e["figures"]["per-modality"][direction]["mAP@all"] for e in entries]


def gap(port: list[dict], official: list[dict], direction: str) -> str:
    if not port or not official:
        return "—"
    d = float(np.mean(maps(port, direction)) - np.mean(maps(official, direction)))
    return f"**{d:+.4f}**" if abs(d) > 0.01 else f"{d:+.4f}"


def epoch_count(entry: dict):
    """The epochs an entry ran: the released side's setting (``NUM_EPOCH``, ``num_epochs``,
    ``epochs`` or ``--max_epochs`` of its command line), the port's ``epochs`` override; None for
    a port run with its preset's count."""
    conf = entry.get("settings") or entry.get("overrides") or {}
    for key in ("NUM_EPOCH", "num_epochs", "epochs"):
        if key in conf:
            return conf[key]
    argv = conf.get("argv", [])
    return argv[argv.index("--max_epochs") + 1] if "--max_epochs" in argv else None


def epochs(official: list[dict], port: list[dict]) -> str:
    """``"80"`` when the port ran its preset's count, ``"5 / 5"`` (official / port) when it was cut."""
    o = ", ".join(sorted({str(epoch_count(e)) for e in official if epoch_count(e) is not None})) or "—"
    cut = sorted({str(epoch_count(e)) for e in port if epoch_count(e) is not None})
    return f"{o} / {', '.join(cut)}" if cut else o


def constant(entries: list[dict]) -> str:
    """The most constant bits of any code set (query / database x image / text) over the
    entries' runs, from the collapse each run's report stated; ``—`` where no entry recorded it."""
    known = [e["collapse"] for e in entries if e.get("collapse") is not None]
    if not known:
        return "—"
    return str(max(max((c.get("constant_bits") or {0: 0}).values()) for c in known))


def seconds(entries: list[dict]) -> str:
    return f"{np.mean([e['seconds'] for e in entries]):.0f}" if entries else "—"


def dataset_line(name: str, about: dict, seeds: list[int]) -> str:
    info = list((about.get("datasets") or {}).get(name, {}).values())
    sizes = ""
    if info:
        i = info[0]
        sizes = f": {i['n_train']} training pairs, {i['n_query']} queries, {i['n_database']} database items"
    splits = ", ".join(sorted({i["split_hash"] for i in info}))
    return f"{sizes} (split {splits}); mAP@all, mean ± std over seeds {', '.join(map(str, seeds))}"


def tables(data: dict) -> list[str]:
    g = group(data.get("entries", []))
    about = data.get("about", {})
    out = []
    keys = sorted({(d, b) for (d, b, _, _) in g}, key=lambda k: (DATASET_ORDER.index(k[0])
                                                                  if k[0] in DATASET_ORDER else 9, k[1]))
    for dataset, bits in keys:
        seeds = sorted({e["seed"] for (d, b, _, _), es in g.items() if (d, b) == (dataset, bits) for e in es})
        out += ["", f"### {dataset}, {bits} bits{dataset_line(dataset, about, seeds)}", "", HEADER]
        for method in sorted({m for (d, b, m, _) in g if (d, b) == (dataset, bits)}):
            official, port, last = (g.get((dataset, bits, method, v), [])
                                    for v in ("official", "port", "official-last"))
            for key, label in DIRS:
                n = f"{len(official)} / {len(port)}"
                out.append(f"| {method} | {label} | {mean_std(maps(official, key))} | {mean_std(maps(port, key))} | "
                           f"{gap(port, official, key)} | {mean_std(maps(last, key))} | {n} | {epochs(official, port)} | "
                           f"{constant(official)} / {constant(port)} | {seconds(official)} / {seconds(port)} |")
    return out


def changes(about: dict) -> list[str]:
    out = []
    for m, info in sorted((about.get("code") or {}).items()):
        tf = f" under TensorFlow {info['tensorflow']} (tf.compat.v1)" if info.get("tensorflow") else ""
        out += ["", f"**{m}**: `{info['repo']}` at commit `{info['commit']}`{tf}. Changes, applied by the script to a "
                    "copy of the checkout:", ""]
        out += [f"- `{c['file']}` ({c['occurrences']}×): {c['why']}" for c in info.get("changes", [])]
        out += [f"- {n}" for n in info.get("notes", [])]
    return out


def markdown(data: dict, source: str = "deep.json") -> str:
    lines = ["# Deep baselines and UGACH: released code vs port", "",
             f"Generated by `benchmarks/official/deep_table.py` from `{source}`; do not edit by hand. Codes of both "
             "sides are scored by crossmodal (`import-codes` + `evaluate`, per-modality database codes); every "
             "training pair trains (`--validation-fraction 0`); the port runs `--preset paper`. Gaps above 0.01 in "
             "bold; epochs: the released setting, then the port's where a run cut both sides alike; constant bits: the most bits "
             "that are the same for every item in one of a run's four code sets (its report's collapse check); seconds: mean training time per run, one thread, on a shared 2-core machine."]
    lines += tables(data)
    lines += ["", "### Code that ran"] + changes(data.get("about", {}))
    return "\n".join(lines) + "\n"


def write_table(results_path: Path) -> Path:
    """Write ``deep.md`` beside ``results_path`` and return its path."""
    data = Results(Path(results_path)).data
    out = Path(results_path).with_suffix(".md")
    text = markdown(data, Path(results_path).name)
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default=str(ROOT / "experiments" / "results" / "official" / "deep.json"),
                    help="results file (.json); deep.md is written beside it")
    ap.add_argument("--merge", nargs="+", default=[], metavar="FILE",
                    help="first merge these results files (of runs made in parallel, each into its own file)")
    args = ap.parse_args(argv)
    path = Path(args.results)
    for p in [path, *map(Path, args.merge)]:
        if p.suffix != ".json" or not p.is_file():
            ap.error(f"{p}: not an existing .json results file")
    if args.merge:
        results = Results(path)
        for p in args.merge:
            print(f"{p}: {results.merge(Results(p))} entries merged into {path}")
    print(write_table(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
