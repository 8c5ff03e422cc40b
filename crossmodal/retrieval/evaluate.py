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
from crossmodal.retrieval.collapse import code_collapse, collapse_statement
from crossmodal.retrieval.metrics import CONVENTIONS, evaluate_codes
from crossmodal.stored import read_json

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
        from crossmodal.engine import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "Report":
        d = read_json(path, hint="evaluate the run again")
        try:
            return cls(results=dict(d["results"]), meta=dict(d["meta"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: damaged report ({type(exc).__name__}: {exc})") from None

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
        if m.get("n_query_without_relevant"):
            lines += ["", f"Note: {m['n_query_without_relevant']} of {m.get('n_query')} queries share no label with "
                          "any database item; they score AP 0 and are counted."]
        lines += [f"Note: {n}" for n in m.get("notes", [])]
        conv = {**CONVENTIONS, "database codes": m.get("database_codes") or "per-modality"}
        if m.get("model_selection"):
            conv["model selection"] = m["model_selection"]
        lines += ["", "Conventions: " + "; ".join(f"{k}: {v}" for k, v in conv.items()) + "."]
        if m.get("protocol_note"):
            lines += ["", f"Protocol: {m['protocol_note']}"]
        if m.get("collapse"):
            lines += ["", f"**Warning: {m['collapse']['statement']}.**"]
        return "\n".join(lines) + "\n"

    def plot_pr(self, path: str | os.PathLike) -> Path:
        """Precision-recall curves (one point per Hamming radius), one line per direction."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
        for d, r in self.results.items():
            if "pr_curve" not in r:  # an explicit ranking (retrieval="paper") has no per-radius curve
                continue
            pr = r["pr_curve"]
            ax.plot(pr["recall"], pr["precision"], marker=".", label=LABELS.get(d, d))
        m = self.meta
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
               title=f"{m.get('method')} / {m.get('dataset')} / {m.get('bits')} bits")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        fig.tight_layout()
        from crossmodal.engine import atomic_savefig

        try:
            atomic_savefig(fig, path)
        finally:
            plt.close(fig)
        return Path(path)


def queries_without_relevant(q_labels: np.ndarray, db_labels: np.ndarray) -> int:
    """How many queries share no label with any database item (their AP is 0 by convention).
    ``q_labels (Nq, C)``, ``db_labels (Ndb, C)`` 0/1."""
    present = np.asarray(db_labels).astype(bool).any(axis=0)  # (C,)
    return int((~(np.asarray(q_labels).astype(bool) & present).any(axis=1)).sum())


def eval_device(hasher):
    """Where to rank: the hasher's torch device when it is CUDA (distances, ranking and AP on
    the GPU, same values), else None (NumPy on the CPU)."""
    try:
        dev = getattr(hasher, "device", None)
    except Exception:  # a saved config naming a device this machine lacks: rank on the CPU
        return None
    return dev if getattr(dev, "type", None) == "cuda" else None


def encode_part(hasher, data, modality: str) -> np.ndarray:
    return hasher.encode_image(data.image) if modality == "image" else hasher.encode_text(data.text_dense())


DATABASE_CODES = ("per-modality", "unified")


def check_database_codes(hasher, database_codes: str) -> str:
    """Validate the database-coding convention for ``hasher``: ``per-modality`` (each database
    item coded from its own features, out of sample) or ``unified`` (one code per database pair
    from both modalities, as CMFH/LSSH/FSH papers evaluate)."""
    if database_codes not in DATABASE_CODES:
        raise DataError(f"database_codes must be one of {', '.join(DATABASE_CODES)}, got {database_codes!r}")
    if database_codes == "unified" and not getattr(hasher, "unified_codes", False):
        raise DataError(f"{hasher.name} cannot code a pair from both modalities; database_codes=unified needs a "
                        "method with unified codes (e.g. cmfh, lssh, fsh)")
    return database_codes


def evaluate(hasher, dataset, directions=("i2t", "t2i"), ks=(100,), norm: str = "retrieved",
             query_part: str = "query", database_part: str = "database",
             database_codes: str = "per-modality", retrieval: str = "hamming") -> Report:
    """Evaluate a fitted hasher on a :class:`~crossmodal.data.types.Dataset`'s split.

    ``database_codes="unified"`` codes every database pair once from both modalities (both
    cross-modal directions then search the same codes); queries are always coded from their
    own modality.

    ``retrieval``: ``"hamming"`` ranks by Hamming distance (every method); ``"paper"`` scores the
    ranking the method's paper retrieves with (``hasher.paper_ranking``, e.g. URPH's graph search
    and re-ranking) through :func:`~crossmodal.retrieval.ranked.evaluate_ranking`. The rule
    used is recorded in ``meta["retrieval"]``.
    """
    if retrieval not in ("hamming", "paper"):
        raise DataError(f"retrieval must be 'hamming' or 'paper', got {retrieval!r}")
    if retrieval == "paper" and not hasattr(hasher, "paper_ranking"):
        raise DataError(f"{hasher.name} has no retrieval of its own besides the Hamming ranking; "
                        "use retrieval='hamming'")
    for d in directions:
        if d not in DIRECTIONS:
            raise DataError(f"unknown direction {d!r}; use {', '.join(DIRECTIONS)}")
    check_database_codes(hasher, database_codes)
    if dataset.data.labels is None:
        raise DataError(f"{dataset.name}: evaluation needs labels; this dataset has none")
    q, db = dataset.part(query_part), dataset.part(database_part)
    no_relevant = queries_without_relevant(q.labels, db.labels)
    if no_relevant == q.n:
        raise DataError(f"{dataset.name}: no query shares a label with any database item (are the labels all zero?), "
                        "so every score would be 0; check labels.npy")
    codes: dict = {}

    stored = getattr(hasher, "stored_codes", None)  # imported codes (crossmodal.external)

    def get(part, data, modality):
        if part == "db" and database_codes == "unified":
            modality = "pair"
        key = (part, modality)
        if key not in codes:
            if stored is not None:
                codes[key] = stored(query_part if part == "q" else database_part, modality)
            elif modality == "pair":
                codes[key] = hasher.encode_pair(data.image, data.text_dense())
            else:
                codes[key] = encode_part(hasher, data, modality)
        return codes[key]

    results = {}
    for d in directions:
        qm, dm = DIRECTIONS[d]
        if retrieval == "paper":
            from crossmodal.retrieval.ranked import evaluate_ranking

            if d != "i2i":
                raise DataError(f"retrieval='paper' ranks image queries against image items (i2i), not {d}")
            ranking = hasher.paper_ranking(q.image, db.image)
            results[d] = evaluate_ranking(ranking, q.labels, db.labels, ks=ks, norm=norm)
            continue
        results[d] = evaluate_codes(get("q", q, qm), get("db", db, dm), q.labels, db.labels, hasher.bits, ks=ks,
                                    norm=norm, device=eval_device(hasher), graded_curves=True)
    meta = {
        "method": hasher.name,
        "dataset": dataset.name,
        "bits": hasher.bits,
        "seed": hasher.seed,
        "split_hash": dataset.split.hash,
        "split_protocol": dataset.split.protocol,
        "n_query": q.n,
        "n_database": db.n,
        "n_query_without_relevant": no_relevant,
        "ks": list(ks),
        "norm": norm,
        "database_codes": database_codes,
        "retrieval": hasher.paper_retrieval if retrieval == "paper" else "hamming ranking",
        "model_selection": getattr(hasher, "model_selection", None),
        "version": __version__,
        "commit": git_commit(),
    }
    parts = {"q": "query", "db": "database"}
    collapse = code_collapse({f"{parts[p]} {m}": c for (p, m), c in codes.items()}, hasher.bits)
    if collapse:
        meta["collapse"] = {**collapse, "statement": collapse_statement(collapse)}
    return Report(results=results, meta=meta)


PUBLISHED = (
    # (row name, metric key, k, norm, no-relevant queries counted?)
    ("mAP@all", "mAP@all", None, "retrieved", True),
    ("mAP@all, no-relevant queries left out", "mAP@all", None, "retrieved", False),
    ("mAP@50 ÷ relevant in top 50", "mAP@50", 50, "retrieved", True),
    ("mAP@50 ÷ relevant in top 50, no-relevant left out", "mAP@50", 50, "retrieved", False),
    ("mAP@50 ÷ min(R, 50)", "mAP@50", 50, "min", True),
    ("mAP@50 ÷ min(R, 50), no-relevant left out", "mAP@50", 50, "min", False),
)

PUBLISHED_NOTES = {
    "mAP@all": "AP over the whole ranking; a query with no relevant item scores 0 and is counted "
               "(crossmodal's default; UGACH's tables)",
    "no-relevant left out": "queries with no relevant database item are dropped from the mean "
                            "(UCCH's evaluation code)",
    "÷ relevant in top 50": "mAP@50 normalised by the relevant items retrieved in the top 50 "
                            "(DJSRH/JDSH-era tables)",
    "÷ min(R, 50)": "mAP@50 normalised by min(R, 50), R = relevant items in the database",
    "per-modality": "each database item coded from its own modality's features (out of sample)",
    "unified": "one code per database pair from both modalities (CMFH/LSSH/FSH papers)",
}


def relevant_query_mask(q_labels, db_labels, chunk: int = 1024) -> np.ndarray:
    """``(Nq,)`` bool: the query shares a label with at least one database item."""
    dl = np.asarray(db_labels, dtype=np.float32)
    ql = np.asarray(q_labels, dtype=np.float32)
    present = (dl.sum(0) > 0).astype(np.float32)
    return np.concatenate([(ql[s:s + chunk] @ present) > 0 for s in range(0, len(ql), chunk)]) if len(ql) else \
        np.zeros(0, bool)


def published_conventions(hasher, dataset, directions=("i2t", "t2i")) -> dict:
    """One run under every published convention, side by side.

    Returns ``{"rows": [(row name, database_codes, {direction: value})], "notes": {...}}``:
    mAP@all and mAP@50 (both normalisations), each with queries that have no relevant item
    counted as 0 or left out, for each database-coding convention the hasher supports.
    A query with no relevant item scores 0 under every metric, so leaving it out multiplies
    the mean by ``Nq / Nq_relevant``.
    """
    q = dataset.part("query")
    db = dataset.part("database")
    conventions = ["per-modality"] + (["unified"] if getattr(hasher, "unified_codes", False) else [])
    has_rel = relevant_query_mask(q.labels, db.labels)
    scale = len(has_rel) / max(int(has_rel.sum()), 1)
    rows = []
    for conv in conventions:
        by_norm = {norm: evaluate(hasher, dataset, directions=directions, ks=(50,), norm=norm,
                                  database_codes=conv).results
                   for norm in ("retrieved", "min")}
        for name, key, _k, norm, counted in PUBLISHED:
            vals = {d: by_norm[norm][d][key] * (1.0 if counted else scale) for d in directions}
            rows.append((name, conv, vals))
    return {"rows": rows, "notes": PUBLISHED_NOTES, "n_query": q.n, "n_query_relevant": int(has_rel.sum())}


def published_markdown(table: dict, directions=("i2t", "t2i")) -> str:
    lines = ["| convention | database codes | " + " | ".join(LABELS[d] for d in directions) + " |",
             "|---|---|" + "---:|" * len(directions)]
    for name, conv, vals in table["rows"]:
        lines.append(f"| {name} | {conv} | " + " | ".join(f"{vals[d]:.4f}" for d in directions) + " |")
    lines.append("")
    lines.append(f"{table['n_query_relevant']} of {table['n_query']} queries have a relevant database item.")
    lines += [f"- *{k}*: {v}" for k, v in table["notes"].items()]
    return "\n".join(lines) + "\n"
