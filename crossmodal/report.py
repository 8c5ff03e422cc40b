"""Result tables and plots from run folders: ``crossmodal report RUNS... --out DIR``.

Runs are grouped by dataset (and split protocol), configuration label (method or
method-preset), code length and direction; each cell is the mean ± sample standard deviation
over seeds. Output:

* ``table.md`` -- per dataset and metric, the layout of the papers: rows = methods, columns =
  bits, one block per direction (I→T, T→I, or I→I);
* ``table.csv`` -- the same numbers in long form (dataset, direction, method, bits, metric, mean,
  std, n, seeds);
* ``pr-<dataset>-<direction>.png`` -- precision-recall curves (one panel per code length, one
  line per method, averaged over seeds), ``map-<dataset>.png`` -- mAP vs bits, and
  ``pk-<dataset>-<direction>.png`` -- precision@k curves.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossmodal.errors import CrossmodalError
from crossmodal.retrieval.evaluate import CONVENTIONS, LABELS


@dataclass
class RunResult:
    path: Path
    label: str
    method: str
    dataset: str
    bits: int
    seed: int
    split_hash: str
    results: dict


def find_runs(paths: list[str | os.PathLike]) -> list[RunResult]:
    """Every finished run (a folder with ``report.json`` and ``run.json``) under ``paths``."""
    found: list[RunResult] = []
    for root in map(Path, paths):
        if not root.exists():
            raise CrossmodalError(f"{root}: no such run folder")
        reports = [root / "report.json"] if (root / "report.json").is_file() else sorted(root.rglob("report.json"))
        for rep in reports:
            run_file = rep.parent / "run.json"
            if not run_file.is_file():
                continue
            try:
                spec = json.loads(run_file.read_text(encoding="utf-8"))
                report = json.loads(rep.read_text(encoding="utf-8"))
                meta = report["meta"]
                found.append(RunResult(rep.parent, spec.get("label") or spec["method"], spec["method"], meta["dataset"],
                                       int(meta["bits"]), int(meta["seed"]), meta["split_hash"], dict(report["results"])))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                print(f"crossmodal: warning: {rep.parent}: skipped, damaged run.json or report.json "
                      f"({type(exc).__name__}: {str(exc)[:80]})", file=sys.stderr)
    if not found:
        raise CrossmodalError(f"no finished runs (report.json + run.json) under {', '.join(map(str, paths))}")
    return found


def _order(values, preferred=()):
    pref = [v for v in preferred if v in values]
    return pref + sorted(v for v in values if v not in pref)


class ResultTable:
    """Aggregated metrics: ``cells[(dataset, direction, label, bits, metric)] = values over seeds``."""

    def __init__(self, runs: list[RunResult], methods_order=()):
        self.runs = runs
        self.cells: dict = defaultdict(list)
        self.seeds: dict = defaultdict(set)
        self.splits: dict = defaultdict(set)
        for r in runs:
            self.splits[r.dataset].add(r.split_hash)
            for d, res in r.results.items():
                for m, v in res.items():
                    if isinstance(v, float):
                        self.cells[(r.dataset, d, r.label, r.bits, m)].append(v)
                        self.seeds[(r.dataset, d, r.label, r.bits, m)].add(r.seed)
        self.datasets = _order({r.dataset for r in runs})
        self.labels = _order({r.label for r in runs}, methods_order)
        self.bits = sorted({r.bits for r in runs})

    def directions(self, dataset):
        return _order({k[1] for k in self.cells if k[0] == dataset}, ("i2t", "t2i", "i2i", "t2t"))

    def metrics(self, dataset):
        return _order({k[4] for k in self.cells if k[0] == dataset}, ("mAP@all", "mAP@100"))

    def stat(self, key):
        v = np.asarray(self.cells.get(key, []), dtype=float)
        if v.size == 0:
            return None
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)

    def to_markdown(self, metrics=("mAP@all", "mAP@100"), digits: int = 3) -> str:
        out = []
        for ds in self.datasets:
            seeds = sorted({s for k, ss in self.seeds.items() if k[0] == ds for s in ss})
            for metric in [m for m in metrics if m in self.metrics(ds)]:
                out.append(f"### {ds}: {metric}, mean ± std over seeds {', '.join(map(str, seeds))} "
                           f"(split {', '.join(sorted(self.splits[ds]))})\n")
                bits = [b for b in self.bits if any(k[0] == ds and k[3] == b for k in self.cells)]
                out.append("| method | " + " | ".join(f"{b} bits" for b in bits) + " |")
                out.append("|---|" + "---:|" * len(bits))
                for d in self.directions(ds):
                    out.append(f"| **{LABELS.get(d, d)}** |" + " |" * len(bits))
                    col_best = {}
                    for b in bits:
                        means = [s[0] for lab in self.labels if (s := self.stat((ds, d, lab, b, metric)))]
                        col_best[b] = max(means) if means else None
                    for lab in self.labels:
                        if not any((ds, d, lab, b, metric) in self.cells for b in bits):
                            continue
                        row = []
                        for b in bits:
                            s = self.stat((ds, d, lab, b, metric))
                            if s is None:
                                row.append("–")
                                continue
                            txt = f"{s[0]:.{digits}f} ± {s[1]:.{digits}f}" + (f" (n={s[2]})" if s[2] < len(seeds) else "")
                            row.append(f"**{txt}**" if len(self.labels) > 1 and s[0] == col_best[b] else txt)
                        out.append(f"| {lab} | " + " | ".join(row) + " |")
                out.append("")
        out.append("Best mean per column in bold. Conventions: " + "; ".join(f"{k}: {v}" for k, v in CONVENTIONS.items()) + ".")
        return "\n".join(out) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["dataset", "direction", "method", "bits", "metric", "mean", "std", "n", "seeds"])
        for key in sorted(self.cells, key=lambda k: (k[0], k[1], self.labels.index(k[2]), k[3], k[4])):
            mean, std, n = self.stat(key)
            w.writerow([*key[:4], key[4], f"{mean:.6f}", f"{std:.6f}", n, " ".join(map(str, sorted(self.seeds[key])))])
        return buf.getvalue()

    # ------------------------------------------------------------------ plots

    def _curves(self, ds, d, label, bits, name, xkey, ykey):
        xs, ys = [], []
        for r in self.runs:
            if (r.dataset, r.label, r.bits) == (ds, label, bits) and d in r.results and name in r.results[d]:
                c = r.results[d][name]
                xs.append(np.asarray(c[xkey], float))
                ys.append(np.asarray(c[ykey], float))
        if not xs or len({len(x) for x in xs}) != 1:
            return None
        return np.mean(xs, axis=0), np.mean(ys, axis=0)

    def plot(self, out: Path) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from crossmodal.engine import atomic_savefig

        written = []
        for ds in self.datasets:
            dirs = self.directions(ds)
            for kind, name, xkey, ykey, xlabel in (("pr", "pr_curve", "recall", "precision", "recall"),
                                                   ("pk", "pk_curve", "k", "precision", "number of retrieved items k")):
                for d in dirs:
                    fig, axes = plt.subplots(1, len(self.bits), figsize=(3.6 * len(self.bits) + 1.8, 3.4), dpi=110, squeeze=False)
                    for ax, b in zip(axes[0], self.bits):
                        for lab in self.labels:
                            c = self._curves(ds, d, lab, b, name, xkey, ykey)
                            if c is not None:
                                ax.plot(c[0], c[1], marker="." if kind == "pr" else None, label=lab)
                        ax.set(title=f"{b} bits", xlabel=xlabel, ylim=(0, 1.02))
                        if kind == "pr":
                            ax.set_xlim(0, 1.02)
                        ax.grid(alpha=0.3)
                    axes[0][0].set_ylabel("precision")
                    fig.suptitle(f"{ds} {LABELS.get(d, d)}: {'precision-recall' if kind == 'pr' else 'precision@k'} (mean over seeds)")
                    _legend_right(fig, axes)
                    p = out / f"{kind}-{ds}-{d}.png"
                    atomic_savefig(fig, p)
                    plt.close(fig)
                    written.append(p)
            metric = "mAP@all"
            fig, axes = plt.subplots(1, len(dirs), figsize=(4.2 * len(dirs) + 1.8, 3.4), dpi=110, squeeze=False)
            for ax, d in zip(axes[0], dirs):
                for lab in self.labels:
                    pts = [(b, *s[:2]) for b in self.bits if (s := self.stat((ds, d, lab, b, metric)))]
                    if pts:
                        b, m, e = map(np.array, zip(*pts))
                        ax.errorbar(b, m, yerr=e, marker="o", capsize=3, label=lab)
                ax.set_xscale("log", base=2)
                ax.minorticks_off()
                ax.set_xticks(self.bits, [str(b) for b in self.bits])
                ax.set(title=f"{ds} {LABELS.get(d, d)}", xlabel="bits", ylabel=metric)
                ax.grid(alpha=0.3)
            _legend_right(fig, axes)
            p = out / f"map-{ds}.png"
            atomic_savefig(fig, p)
            plt.close(fig)
            written.append(p)
        return written


def _legend_right(fig, axes) -> None:
    """One legend for the figure, outside the panels (it never hides a curve)."""
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    width = fig.get_size_inches()[0]
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.7 / width, 1))


def write_report(paths: list[str | os.PathLike], out: str | os.PathLike, metrics=("mAP@all", "mAP@100"),
                 methods_order=(), plots: bool = True) -> tuple[ResultTable, list[Path]]:
    """Aggregate the runs under ``paths`` into ``out`` (table.md, table.csv, PNG plots)."""
    from crossmodal.engine import atomic_write_text, check_out_folder

    out = check_out_folder(out)
    table = ResultTable(find_runs(paths), methods_order=methods_order)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "table.md", out / "table.csv"]
    atomic_write_text(files[0], table.to_markdown(metrics))
    atomic_write_text(files[1], table.to_csv())
    if plots:
        files += table.plot(out)
    return table, files
