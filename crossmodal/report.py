"""Result tables and figures from run folders: ``crossmodal report RUNS... --out DIR``.

Runs are grouped by dataset, configuration label (``train --label``, a sweep entry's
``label:``, by default method + preset + overrides), code length and direction; each cell is
the mean over seeds, with "± sample std" only where there are at least two seeds. Two runs
that carry one label but differ in their resolved config or dataset parameters are refused:
a row never averages two configurations. Output:

* ``table.md``, ``table.tex`` (booktabs; one ``table`` per dataset and metric) and ``table.csv``
  (long form: dataset, direction, method, bits, metric, mean, std, n, seeds) -- rows in the
  order given (command line or sweep), columns = bits, one block per direction (I→T, T→I, I→I);
  the conventions, the database-coding convention and the model selection as footnotes;
* figures, each as PNG, PDF and SVG, sized for a two-column paper: ``pr-<ds>-<dir>`` (precision-
  recall, one panel per code length), ``pk-`` (precision@k, log k), ``ndcg-`` and ``recall-``
  (NDCG@k, recall@k, log k), ``map-<ds>`` (mAP vs bits). Y axes fitted to the data, std bands
  where there are at least two seeds, colour + line style + marker per configuration.

Database codes: ``report.json`` meta ``database_codes`` is ``per-modality`` (the default when
absent) or ``unified`` (one code per database pair from both modalities). Tables never mix the
two in a column silently: mixed runs are refused unless ``allow_mixed_codes``, which marks the
minority rows with † and says so in a footnote.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossmodal.errors import CrossmodalError
from crossmodal.retrieval.evaluate import CONVENTIONS, LABELS

DEFAULT_METRICS = ("mAP@all", "mAP@100")
IGNORED_CONFIG = {"device", "progress", "num_workers", "threads", "log_every"}
DB_CODES_DEFAULT = "per-modality"
DB_CODES_TEXT = {"per-modality": "each database item coded from its own modality's features",
                 "unified": "one code per database pair from both modalities"}
CURVES = {  # kind: (result key, x key, y key, x label, y label, log x)
    "pr": ("pr_curve", "recall", "precision", "recall", "precision", False),
    "pk": ("pk_curve", "k", "precision", "number of retrieved items $k$", "precision@$k$", True),
    "ndcg": ("ndcg_curve", "k", "ndcg", "number of retrieved items $k$", "NDCG@$k$", True),
    "recall": ("recall_curve", "k", "recall", "number of retrieved items $k$", "recall@$k$", True),
}
TEXT_WIDTH_IN = 7.0  # two-column papers: full text width about 7 in, one column about 3.4 in
COLUMN_WIDTH_IN = 3.4


def config_label(method: str, preset: str | None = None, config: str | None = None, overrides: dict | None = None) -> str:
    """Default table label of a configuration: method, preset, config file and overrides,
    e.g. ``ugach-fast+epochs=5`` (so two configurations never share a row)."""
    label = method if preset in (None, "paper") else f"{method}-{preset}"
    if config:
        label += f"+{Path(config).stem}"
    for k, v in sorted((overrides or {}).items()):
        label += f"+{k}={v if isinstance(v, str) else json.dumps(v)}".replace(" ", "")
    return label


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
    config: dict = field(default_factory=dict)
    dataset_params: dict = field(default_factory=dict)
    database_codes: str = DB_CODES_DEFAULT
    model_selection: str | None = None

    def signature(self) -> str:
        cfg = {k: v for k, v in self.config.items() if k not in IGNORED_CONFIG}
        return json.dumps({"method": self.method, "config": cfg, "dataset": self.dataset_params,
                           "codes": self.database_codes}, sort_keys=True, default=str)


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
                d = spec.get("dataset") or {}
                found.append(RunResult(
                    rep.parent, spec.get("label") or spec["method"], spec["method"], meta["dataset"],
                    int(meta["bits"]), int(meta["seed"]), meta["split_hash"], report["results"],
                    config=spec.get("config") or {}, dataset_params=d.get("params") or {} if isinstance(d, dict) else {},
                    database_codes=meta.get("database_codes") or DB_CODES_DEFAULT,
                    model_selection=meta.get("model_selection")))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                print(f"crossmodal: warning: {rep.parent}: skipped, damaged run.json or report.json "
                      f"({type(exc).__name__}: {str(exc)[:80]})", file=sys.stderr)
    if not found:
        raise CrossmodalError(f"no finished runs (report.json + run.json) under {', '.join(map(str, paths))}")
    return found


def _order(values, preferred=()):
    pref = [v for v in preferred if v in values]
    return pref + sorted(v for v in values if v not in pref)


def _latex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(rep.get(c, c) for c in str(s))


PM, DAGGER = r"$\pm$", r"$^\dagger$"
LATEX_DIRECTIONS = {"i2t": r"I$\to$T", "t2i": r"T$\to$I", "i2i": r"I$\to$I", "t2t": r"T$\to$T"}


class ResultTable:
    """Aggregated metrics: ``cells[(dataset, direction, label, bits, metric)] = values over seeds``."""

    def __init__(self, runs: list[RunResult], methods_order=(), only=None, allow_mixed_codes: bool = False):
        if only:
            known = {r.label for r in runs}
            missing = [lab for lab in only if lab not in known]
            if missing:
                raise CrossmodalError(f"no runs labelled {missing[0]!r}; labels found: {', '.join(sorted(known))}")
            runs = [r for r in runs if r.label in set(only)]
        self.runs = runs
        self._check_one_config_per_label()
        self.codes = self._check_codes(allow_mixed_codes)
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

    # ------------------------------------------------------------------ checks

    def _check_one_config_per_label(self) -> None:
        first: dict = {}
        for r in self.runs:
            key = (r.dataset, r.label)
            if key not in first:
                first[key] = r
                continue
            a = first[key]
            if a.signature() != r.signature():
                ca, cb = a.config, r.config
                diff = sorted(k for k in set(ca) | set(cb) if k not in IGNORED_CONFIG and ca.get(k) != cb.get(k))
                what = ", ".join(f"{k}: {ca.get(k)!r} vs {cb.get(k)!r}" for k in diff[:3]) or (
                    "method" if a.method != r.method else "dataset parameters" if a.dataset_params != r.dataset_params
                    else "database codes")
                raise CrossmodalError(f"runs {a.path} and {r.path} both carry the label {r.label!r} but differ ({what}); "
                                      "a row never averages two configurations: retrain one with --label NAME "
                                      "(or a sweep entry's label:), or report them separately")

    def _check_codes(self, allow_mixed: bool) -> dict:
        """``{dataset: {label: convention}}``; refuses mixed conventions unless allowed."""
        out: dict = defaultdict(dict)
        for r in self.runs:
            out[r.dataset][r.label] = r.database_codes
        for ds, per in out.items():
            kinds = set(per.values())
            if len(kinds) > 1 and not allow_mixed:
                uni = sorted(lab for lab, c in per.items() if c == "unified")
                raise CrossmodalError(f"{ds}: runs mix database-coding conventions (unified: {', '.join(uni)}; the rest "
                                      "per-modality); a column would compare different protocols. Report them "
                                      "separately (--label), or pass --allow-mixed-codes to mark them with a dagger")
        return out

    def _majority_codes(self, ds) -> str:
        vals = list(self.codes[ds].values())
        return max(set(vals), key=lambda v: (vals.count(v), v == DB_CODES_DEFAULT))

    def _marked(self, ds, label) -> bool:
        return self.codes[ds].get(label, DB_CODES_DEFAULT) != self._majority_codes(ds)

    def check_metrics(self, metrics) -> None:
        known = sorted({k[4] for k in self.cells})
        for m in metrics:
            if m not in known:
                import difflib

                close = difflib.get_close_matches(m, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise CrossmodalError(f"unknown metric {m!r}{hint} the runs have: {', '.join(known)}")

    # ------------------------------------------------------------------ numbers

    def directions(self, dataset):
        return _order({k[1] for k in self.cells if k[0] == dataset}, ("i2t", "t2i", "i2i", "t2t"))

    def metrics(self, dataset):
        return _order({k[4] for k in self.cells if k[0] == dataset}, DEFAULT_METRICS)

    def stat(self, key):
        v = np.asarray(self.cells.get(key, []), dtype=float)
        if v.size == 0:
            return None
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)

    def _seeds(self, ds) -> list:
        return sorted({s for k, ss in self.seeds.items() if k[0] == ds for s in ss})

    def _blocks(self, ds, metric):
        """``(bits, [(direction, [(label, [cell or None per bits], marked)])])`` of one table;
        a cell is ``(mean, std, n, best)``."""
        bits = [b for b in self.bits if any(k[0] == ds and k[3] == b for k in self.cells)]
        blocks = []
        for d in self.directions(ds):
            col_best = {}
            for b in bits:
                means = [s[0] for lab in self.labels if (s := self.stat((ds, d, lab, b, metric)))]
                col_best[b] = max(means) if means else None
            rows = []
            for lab in self.labels:
                if not any((ds, d, lab, b, metric) in self.cells for b in bits):
                    continue
                cells = []
                for b in bits:
                    s = self.stat((ds, d, lab, b, metric))
                    cells.append(None if s is None else (*s, len(self.labels) > 1 and s[0] == col_best[b]))
                rows.append((lab, cells, self._marked(ds, lab)))
            if rows:
                blocks.append((d, rows))
        return bits, blocks

    def _caption(self, ds, metric) -> str:
        seeds = self._seeds(ds)
        over = (f"mean ± sample std over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1
                else f"seed {seeds[0]}" if seeds else "")
        return f"{ds}: {metric}, {over} (split {', '.join(sorted(self.splits[ds]))})"

    def footnotes(self, ds) -> list[str]:
        notes = []
        seeds = self._seeds(ds)
        if len(seeds) > 1:
            notes.append("± is the sample standard deviation over seeds, shown only where a cell has at least two; "
                         "(n=K) marks a cell with fewer seeds than the others.")
        notes.append("Best mean per column in bold.")
        major = self._majority_codes(ds)
        notes.append(f"Database codes: {major} ({DB_CODES_TEXT.get(major, major)}).")
        marked = [lab for lab in self.labels if lab in self.codes[ds] and self._marked(ds, lab)]
        if marked:
            notes.append(f"† {', '.join(marked)}: database codes {self.codes[ds][marked[0]]} "
                         f"({DB_CODES_TEXT.get(self.codes[ds][marked[0]], '')}), a different protocol from the other rows.")
        sel = defaultdict(set)
        for r in self.runs:
            if r.dataset == ds and r.model_selection:
                rule = re.sub(r"epoch \(\d+\)|epochs? \d+", "epoch chosen per run", r.model_selection)
                sel[rule].add(r.label)
        if len(sel) == 1:
            notes.append(f"Model selection: {next(iter(sel))}.")
        for text, labs in sorted(sel.items()) if len(sel) > 1 else ():
            notes.append(f"Model selection of {', '.join(_order(labs, self.labels))}: {text}.")
        notes.append("Conventions: " + "; ".join(f"{k}: {v}" for k, v in CONVENTIONS.items()) + ".")
        return notes

    # ------------------------------------------------------------------ text outputs

    def to_markdown(self, metrics=DEFAULT_METRICS, digits: int = 3) -> str:
        self.check_metrics(metrics)
        out = []
        for ds in self.datasets:
            seeds = self._seeds(ds)
            for metric in [m for m in metrics if m in self.metrics(ds)]:
                bits, blocks = self._blocks(ds, metric)
                out.append(f"### {self._caption(ds, metric)}\n")
                out.append("| method | " + " | ".join(f"{b} bits" for b in bits) + " |")
                out.append("|---|" + "---:|" * len(bits))
                for d, rows in blocks:
                    out.append(f"| **{LABELS.get(d, d)}** |" + " |" * len(bits))
                    for lab, cells, marked in rows:
                        row = []
                        for c in cells:
                            if c is None:
                                row.append("–")
                                continue
                            txt = f"{c[0]:.{digits}f}" + (f" ± {c[1]:.{digits}f}" if c[2] >= 2 else "")
                            txt += f" (n={c[2]})" if c[2] < len(seeds) else ""
                            row.append(f"**{txt}**" if c[3] else txt)
                        out.append(f"| {lab}{' †' if marked else ''} | " + " | ".join(row) + " |")
                out.append("")
            out += self.footnotes(ds) + [""]
        return "\n".join(out)

    def to_latex(self, metrics=DEFAULT_METRICS, digits: int = 3) -> str:
        """booktabs tables (``\\usepackage{booktabs}``), one per dataset and metric."""
        self.check_metrics(metrics)
        out = ["% crossmodal report: needs \\usepackage{booktabs}"]
        for ds in self.datasets:
            seeds = self._seeds(ds)
            for metric in [m for m in metrics if m in self.metrics(ds)]:
                bits, blocks = self._blocks(ds, metric)
                tag = "".join(c if c.isalnum() else "-" for c in f"{ds}-{metric}").strip("-")
                caption = _latex_escape(self._caption(ds, metric)).replace("±", PM)
                out += ["\\begin{table}[t]", "\\centering", "\\small",
                        f"\\caption{{{caption}}}",
                        f"\\label{{tab:{tag}}}",
                        "\\begin{tabular}{l" + "c" * len(bits) + "}", "\\toprule",
                        "Method & " + " & ".join(f"{b} bits" for b in bits) + " \\\\", "\\midrule"]
                for i, (d, rows) in enumerate(blocks):
                    if i:
                        out.append("\\midrule")
                    out.append(f"\\multicolumn{{{len(bits) + 1}}}{{l}}{{\\textit{{{LATEX_DIRECTIONS.get(d, d)}}}}} \\\\")
                    for lab, cells, marked in rows:
                        row = []
                        for c in cells:
                            if c is None:
                                row.append("--")
                                continue
                            txt = f"{c[0]:.{digits}f}" + (f" {PM} {c[1]:.{digits}f}" if c[2] >= 2 else "")
                            txt += f" ($n$={c[2]})" if c[2] < len(seeds) else ""
                            row.append(f"\\textbf{{{txt}}}" if c[3] else txt)
                        out.append(_latex_escape(lab) + (DAGGER if marked else "") + " & " + " & ".join(row) + " \\\\")
                out += ["\\bottomrule", "\\end{tabular}", "",
                        "\\par\\smallskip\\parbox{\\linewidth}{\\footnotesize "
                        + " ".join(_latex_escape(n).replace("±", "$\\pm$").replace("†", "$^\\dagger$").replace("→", "$\\to$")
                                   for n in self.footnotes(ds)) + "}",
                        "\\end{table}", ""]
        return "\n".join(out)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["dataset", "direction", "method", "bits", "metric", "mean", "std", "n", "seeds", "database_codes"])
        for key in sorted(self.cells, key=lambda k: (k[0], k[1], self.labels.index(k[2]), k[3], k[4])):
            mean, std, n = self.stat(key)
            w.writerow([*key[:4], key[4], f"{mean:.6f}", f"{std:.6f}" if n > 1 else "", n,
                        " ".join(map(str, sorted(self.seeds[key]))), self.codes[key[0]].get(key[2], DB_CODES_DEFAULT)])
        return buf.getvalue()

    # ------------------------------------------------------------------ figures

    def _curves(self, ds, d, label, bits, name, xkey, ykey):
        """``(x mean, y mean, y std or None, n seeds)`` of one configuration's curve."""
        xs, ys = [], []
        for r in self.runs:
            if (r.dataset, r.label, r.bits) == (ds, label, bits) and d in r.results and name in r.results[d]:
                c = r.results[d][name]
                xs.append(np.asarray(c[xkey], float))
                ys.append(np.asarray(c[ykey], float))
        if not xs or len({len(x) for x in xs}) != 1:
            return None
        y = np.array(ys)
        return np.mean(xs, axis=0), y.mean(axis=0), (y.std(axis=0, ddof=1) if len(ys) > 1 else None), len(ys)

    def _style(self, label):
        i = self.labels.index(label)
        colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
        styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1))]
        markers = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]  # 10 markers x 8 colours: 40 distinct rows
        return dict(color=colours[i % len(colours)], linestyle=styles[i % len(styles)],
                    marker=markers[i % len(markers)])

    def plot(self, out: Path, formats=("png", "pdf", "svg"), kinds=None) -> list[Path]:
        """Write the figures into ``out``; ``kinds`` limits them to some of ``pr, pk, ndcg, recall, map``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rc = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
              "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 3.5, "pdf.fonttype": 42,
              "ps.fonttype": 42, "svg.fonttype": "none", "savefig.dpi": 200, "axes.spines.top": False,
              "axes.spines.right": False}
        from crossmodal.engine import atomic_savefig

        written: list[Path] = []

        def save(fig, stem):
            for fmt in formats:
                p = out / f"{stem}.{fmt}"
                atomic_savefig(fig, p, bbox_inches="tight", pad_inches=0.02)
                written.append(p)
            plt.close(fig)

        with plt.rc_context(rc):
            for ds in self.datasets:
                dirs = self.directions(ds)
                bits = [b for b in self.bits if any(k[0] == ds and k[3] == b for k in self.cells)]
                for kind, (name, xkey, ykey, xlabel, ylabel, logx) in CURVES.items():
                    if kinds is not None and kind not in kinds:
                        continue
                    for d in dirs:
                        if not any(name in r.results.get(d, {}) for r in self.runs if r.dataset == ds):
                            continue
                        fig, axes = _panels(plt, len(bits))
                        lo, hi = np.inf, -np.inf
                        for ax, b in zip(axes, bits):
                            for lab in self.labels:
                                c = self._curves(ds, d, lab, b, name, xkey, ykey)
                                if c is None:
                                    continue
                                x, y, sd, _ = c
                                st = self._style(lab)
                                every = max(1, len(x) // 8)
                                ax.plot(x, y, label=lab + (" †" if self._marked(ds, lab) else ""), markevery=every, **st)
                                if sd is not None:
                                    ax.fill_between(x, y - sd, y + sd, color=st["color"], alpha=0.15, linewidth=0)
                                    lo, hi = min(lo, np.min(y - sd)), max(hi, np.max(y + sd))
                                else:
                                    lo, hi = min(lo, np.min(y)), max(hi, np.max(y))
                            ax.set_title(f"{b} bits")
                            if len(bits) == 1:
                                ax.set_xlabel(xlabel)
                            if logx:
                                ax.set_xscale("log")
                            ax.grid(alpha=0.3, linewidth=0.5)
                        _fit_y(axes, lo, hi)
                        axes[0].set_ylabel(f"{ylabel} ({LABELS.get(d, d)})")
                        _legend_below(fig, axes, None if len(bits) == 1 else xlabel)
                        save(fig, f"{kind}-{ds}-{d}")
                for metric in ("mAP@all",) if kinds is None or "map" in kinds else ():
                    fig, axes = _panels(plt, len(dirs), per=2.3)
                    lo, hi = np.inf, -np.inf
                    for ax, d in zip(axes, dirs):
                        for lab in self.labels:
                            pts = [(b, *s[:3]) for b in bits if (s := self.stat((ds, d, lab, b, metric)))]
                            if not pts:
                                continue
                            b_, m, e, n = map(np.array, zip(*pts))
                            st = self._style(lab)
                            ax.plot(b_, m, label=lab + (" †" if self._marked(ds, lab) else ""), **st)
                            if (n >= 2).all():
                                ax.fill_between(b_, m - e, m + e, color=st["color"], alpha=0.15, linewidth=0)
                                lo, hi = min(lo, np.min(m - e)), max(hi, np.max(m + e))
                            else:
                                lo, hi = min(lo, np.min(m)), max(hi, np.max(m))
                        ax.set_xscale("log", base=2)
                        ax.minorticks_off()
                        ax.set_xticks(bits, [str(b) for b in bits])
                        ax.set_title(LABELS.get(d, d))
                        ax.set_xlabel("code length (bits)")
                        ax.grid(alpha=0.3, linewidth=0.5)
                    _fit_y(axes, lo, hi)
                    axes[0].set_ylabel(metric)
                    _legend_below(fig, axes)
                    save(fig, f"map-{ds}")
        return written


def _panels(plt, n: int, per: float = 2.3):
    """``n`` side-by-side panels: one column wide for one or two panels, the text width above."""
    width = COLUMN_WIDTH_IN if n <= 1 else min(TEXT_WIDTH_IN, max(COLUMN_WIDTH_IN, per * n))
    fig, axes = plt.subplots(1, n, figsize=(width, 2.1 if n > 1 else 2.4), squeeze=False, sharey=True)
    return fig, list(axes[0])


def _fit_y(axes, lo: float, hi: float) -> None:
    """One y range for all panels, fitted to the data with a 5% margin (clipped to [0, 1.02])."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return
    pad = max(0.05 * (hi - lo), 0.01)
    axes[0].set_ylim(max(0.0, lo - pad), min(1.02, hi + pad))


def _legend_below(fig, axes, xlabel: str | None = None) -> None:
    """One legend for the figure, below the panels (it never hides a curve); ``xlabel`` once for
    all panels when given."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.tight_layout(pad=0.3)
    if xlabel:
        fig.supxlabel(xlabel, y=0.0, va="top", fontsize=8)
    if handles:
        ncol = min(len(labels), max(1, int(fig.get_size_inches()[0] // 1.15)))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.07 if xlabel else 0.0), ncol=ncol,
                   frameon=False, handlelength=2.6, columnspacing=1.2)


def write_report(paths: list[str | os.PathLike], out: str | os.PathLike, metrics=DEFAULT_METRICS,
                 methods_order=(), plots: bool = True, only=None, allow_mixed_codes: bool = False,
                 formats=("png", "pdf", "svg"), kinds=None) -> tuple[ResultTable, list[Path]]:
    """Aggregate the runs under ``paths`` into ``out``: table.md, table.tex, table.csv and the
    figures (PNG, PDF, SVG). Everything is checked (metrics, labels, conventions) before
    anything is written."""
    from crossmodal.engine import atomic_write_text, check_out_folder

    out = check_out_folder(out)
    table = ResultTable(find_runs(paths), methods_order=methods_order, only=only, allow_mixed_codes=allow_mixed_codes)
    md, tex, csv_text = table.to_markdown(metrics), table.to_latex(metrics), table.to_csv()
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "table.md", out / "table.tex", out / "table.csv"]
    for f, text in zip(files, (md, tex, csv_text)):
        atomic_write_text(f, text)
    if plots:
        files += table.plot(out, formats=formats, kinds=kinds)
    return table, files
