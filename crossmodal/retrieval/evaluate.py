"""``evaluate(hasher, dataset)``: one code path for every number in every table.

Encodes the query split and the database once per modality, runs the requested directions
(I->T and T->I by default; I->I and T->T on request) through
:func:`~crossmodal.retrieval.metrics.evaluate_codes`, and returns a :class:`Report` that
writes JSON, a Markdown table and a precision-recall plot, and states its conventions,
split hash, bits, method, seed and package version.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crossmodal import __version__
from crossmodal.errors import DataError
from crossmodal.retrieval.metrics import CONVENTIONS, evaluate_codes

DIRECTIONS = {"i2t": ("image", "text"), "t2i": ("text", "image"), "i2i": ("image", "image"), "t2t": ("text", "text")}
LABELS = {"i2t": "I→T", "t2i": "T→I", "i2i": "I→I", "t2t": "T→T"}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Report:
    """Metrics per direction plus everything needed to trust and reproduce them."""

    results: dict
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"meta": self.meta, "conventions": CONVENTIONS, "results": self.results}

    def save_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "Report":
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(results=d["results"], meta=d["meta"])

    def metric_names(self) -> list[str]:
        first = next(iter(self.results.values()))
        return [k for k, v in first.items() if isinstance(v, float)]

    def to_markdown(self) -> str:
        m = self.meta
        names = self.metric_names()
        lines = [
            f"**{m.get('method')}** on **{m.get('dataset')}**, {m.get('bits')} bits, seed {m.get('seed')} "
            f"(split {m.get('split_hash')}, {m.get('n_query')} queries, {m.get('n_database')} database items, "
            f"crossmodal {m.get('version')}{', commit ' + m['commit'] if m.get('commit') else ''})",
            "",
            "| direction | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for d, r in self.results.items():
            lines.append(f"| {LABELS.get(d, d)} | " + " | ".join(f"{r[n]:.4f}" for n in names) + " |")
        lines += [""] + [f"{what}: {m[key]}." for key, what in (("model_selection", "Model selection"),
                                                               ("database_codes", "Database codes"))
                         if m.get(key)] + [f"Note: {n}" for n in m.get("notes", [])]
        lines += ["", "Conventions: " + "; ".join(f"{k}: {v}" for k, v in CONVENTIONS.items()) + "."]
        return "\n".join(lines) + "\n"

    def plot_pr(self, path: str | os.PathLike) -> Path:
        """Precision-recall curves (one point per Hamming radius), one line per direction."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
        for d, r in self.results.items():
            pr = r["pr_curve"]
            ax.plot(pr["recall"], pr["precision"], marker=".", label=LABELS.get(d, d))
        m = self.meta
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
               title=f"{m.get('method')} / {m.get('dataset')} / {m.get('bits')} bits")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return Path(path)


def encode_part(hasher, data, modality: str) -> np.ndarray:
    return hasher.encode_image(data.image) if modality == "image" else hasher.encode_text(data.text_dense())


def evaluate(hasher, dataset, directions=("i2t", "t2i"), ks=(100,), norm: str = "retrieved",
             query_part: str = "query", database_part: str = "database") -> Report:
    """Evaluate a fitted hasher on a :class:`~crossmodal.data.core.Dataset`'s split."""
    for d in directions:
        if d not in DIRECTIONS:
            raise DataError(f"unknown direction {d!r}; use {', '.join(DIRECTIONS)}")
    if dataset.data.labels is None:
        raise DataError(f"{dataset.name}: evaluation needs labels; this dataset has none")
    q, db = dataset.part(query_part), dataset.part(database_part)
    codes: dict = {}

    def get(part, data, modality):
        key = (part, modality)
        if key not in codes:
            codes[key] = encode_part(hasher, data, modality)
        return codes[key]

    results = {}
    for d in directions:
        qm, dm = DIRECTIONS[d]
        results[d] = evaluate_codes(get("q", q, qm), get("db", db, dm), q.labels, db.labels, hasher.bits, ks=ks, norm=norm)
    meta = {
        "method": hasher.name,
        "dataset": dataset.name,
        "bits": hasher.bits,
        "seed": hasher.seed,
        "split_hash": dataset.split.hash,
        "split_protocol": dataset.split.protocol,
        "n_query": q.n,
        "n_database": db.n,
        "ks": list(ks),
        "norm": norm,
        "version": __version__,
        "commit": git_commit(),
    }
    return Report(results=results, meta=meta)
