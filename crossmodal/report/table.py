"""The result table: finished runs aggregated into ``cells[(dataset, direction, label, bits,
metric)]`` (values over seeds), with the checks a table needs (one configuration per label, one
database-coding convention per column) and the numbers, blocks and footnotes its writers
(:mod:`~crossmodal.report.text`) and figures (:mod:`~crossmodal.report.figures`) print."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from crossmodal.errors import CrossmodalError, did_you_mean
from crossmodal.report.figures import TableFigures
from crossmodal.report.find import DB_CODES_DEFAULT, IGNORED_CONFIG, RunResult
from crossmodal.report.text import DEFAULT_METRICS, TableText
from crossmodal.retrieval.evaluate import CONVENTIONS
from crossmodal.runs.spec import method_defaults

DB_CODES_TEXT = {"per-modality": "each database item coded from its own modality's features",
                 "unified": "one code per database pair from both modalities"}


def ordered(values, preferred=()) -> list:
    """``preferred`` items present in ``values`` first (in that order), then the rest sorted."""
    pref = [v for v in preferred if v in values]
    return pref + sorted(v for v in values if v not in pref)


class ResultTable(TableText, TableFigures):
    """Aggregated metrics: ``cells[(dataset, direction, label, bits, metric)] = values over seeds``;
    ``to_markdown`` / ``to_latex`` / ``to_csv`` write it, ``plot`` draws its figures."""

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
        self.datasets = ordered({r.dataset for r in runs})
        self.labels = ordered({r.label for r in runs}, methods_order)
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
            # a key the method gained after one of the runs was made counts with its declared
            # default (as a resume and a sweep's stale check count it)
            ca = {**method_defaults(a.method, set(r.config) - set(a.config)), **a.config}
            cb = {**method_defaults(r.method, set(a.config) - set(r.config)), **r.config}
            if a.signature(ca) != r.signature(cb):
                diff = sorted(k for k in set(ca) | set(cb) if k not in IGNORED_CONFIG and ca.get(k) != cb.get(k))
                what = ", ".join(f"{k}: {ca.get(k)!r} vs {cb.get(k)!r}" for k in diff[:3]) or (
                    "method" if a.method != r.method else "dataset parameters" if a.dataset_params != r.dataset_params
                    else "database codes")
                raise CrossmodalError(f"runs {a.path} and {r.path} both carry the label {r.label!r} but differ "
                                      f"({what}); a row never averages two configurations: retrain one with "
                                      "--label NAME (or a sweep entry's label:), or report them separately")

    def _check_codes(self, allow_mixed: bool) -> dict:
        """``{dataset: {label: convention}}``; refuses mixed conventions unless allowed."""
        out: dict = defaultdict(dict)
        for r in self.runs:
            out[r.dataset][r.label] = r.database_codes
        for ds, per in out.items():
            kinds = set(per.values())
            if len(kinds) > 1 and not allow_mixed:
                uni = sorted(lab for lab, c in per.items() if c == "unified")
                raise CrossmodalError(f"{ds}: runs mix database-coding conventions (unified: {', '.join(uni)}; "
                                      "the rest per-modality); a column would compare different protocols. Report them "
                                      "separately (--label), or pass --allow-mixed-codes to mark them with a dagger")
        return out

    def _majority_codes(self, ds) -> str:
        vals = list(self.codes[ds].values())
        return max(set(vals), key=lambda v: (vals.count(v), v == DB_CODES_DEFAULT))

    def marked(self, ds, label) -> bool:
        """Whether ``label``'s database codes differ from the majority of ``ds`` (a † row)."""
        return self.codes[ds].get(label, DB_CODES_DEFAULT) != self._majority_codes(ds)

    def check_metrics(self, metrics) -> None:
        """Refuse (one line, with a hint) a metric no run has."""
        known = sorted({k[4] for k in self.cells})
        for m in metrics:
            if m not in known:
                raise CrossmodalError(f"unknown metric {m!r}{did_you_mean(m, known)} the runs have: "
                                      f"{', '.join(known)}")

    # ------------------------------------------------------------------ numbers

    def directions(self, dataset):
        """Directions of ``dataset``'s cells: I->T, T->I, I->I, T->T first, in that order."""
        return ordered({k[1] for k in self.cells if k[0] == dataset}, ("i2t", "t2i", "i2i", "t2t"))

    def metrics(self, dataset):
        """Metrics of ``dataset``'s cells, the default ones first."""
        return ordered({k[4] for k in self.cells if k[0] == dataset}, DEFAULT_METRICS)

    def stat(self, key):
        """``(mean, sample std or 0.0, n)`` of one cell over its seeds; None for an empty cell."""
        v = np.asarray(self.cells.get(key, []), dtype=float)
        if v.size == 0:
            return None
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)

    def seeds_of(self, ds) -> list:
        """Every seed of ``ds``'s runs, sorted."""
        return sorted({s for k, ss in self.seeds.items() if k[0] == ds for s in ss})

    def blocks(self, ds, metric):
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
                rows.append((lab, cells, self.marked(ds, lab)))
            if rows:
                blocks.append((d, rows))
        return bits, blocks

    def caption(self, ds, metric) -> str:
        """The caption of one table: dataset, metric, seeds and split hashes."""
        seeds = self.seeds_of(ds)
        over = (f"mean ± sample std over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1
                else f"seed {seeds[0]}" if seeds else "")
        return f"{ds}: {metric}, {over} (split {', '.join(sorted(self.splits[ds]))})"

    def footnotes(self, ds) -> list[str]:
        """The notes under ``ds``'s tables: ± and (n=K), bold, database codes, model selection, conventions."""
        notes = []
        seeds = self.seeds_of(ds)
        if len(seeds) > 1:
            notes.append("± is the sample standard deviation over seeds, shown only where a cell has at least two; "
                         "(n=K) marks a cell with fewer seeds than the others.")
        notes.append("Best mean per column in bold.")
        major = self._majority_codes(ds)
        notes.append(f"Database codes: {major} ({DB_CODES_TEXT.get(major, major)}).")
        marked = [lab for lab in self.labels if lab in self.codes[ds] and self.marked(ds, lab)]
        if marked:
            codes = self.codes[ds][marked[0]]
            notes.append(f"† {', '.join(marked)}: database codes {codes} "
                         f"({DB_CODES_TEXT.get(codes, '')}), a different protocol from the other rows.")
        sel = defaultdict(set)
        for r in self.runs:
            if r.dataset == ds and r.model_selection:
                rule = re.sub(r"epoch \(\d+\)|epochs? \d+", "epoch chosen per run", r.model_selection)
                sel[rule].add(r.label)
        if len(sel) == 1:
            notes.append(f"Model selection: {next(iter(sel))}.")
        for text, labs in sorted(sel.items()) if len(sel) > 1 else ():
            notes.append(f"Model selection of {', '.join(ordered(labs, self.labels))}: {text}.")
        notes.append("Conventions: " + "; ".join(f"{k}: {v}" for k, v in CONVENTIONS.items()) + ".")
        return notes

