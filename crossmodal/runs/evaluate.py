"""Evaluating a run: the report a training writes into its folder (:func:`write_report`) and
re-evaluations into numbered folders beside it (:func:`evaluate_run`), each stating how the
model was selected (:func:`selection_statement`)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from crossmodal.engine import atomic_write_text, pid_alive
from crossmodal.retrieval.collapse import collapse_statement
from crossmodal.retrieval.evaluate import evaluate
from crossmodal.runs.query import load_run


def selection_statement(hasher, ds) -> str:
    """How a run chose its model, for the report: the hasher's rule (and epoch) and the
    validation data it had."""
    rule = getattr(hasher, "model_selection", None) or "none"
    n_val = len(ds.split.validation)
    if n_val and ds.data.labels is not None:
        data = (f"validation split: {n_val} labelled items held out of the training side, searched against the "
                f"{len(ds.split.train)} training items (never the query split)")
    else:
        data = "no validation split (validation_fraction=0 or no labels): nothing was selected on labels"
    return f"{rule}; {data}"


def save_report(report, folder: Path) -> None:
    """``report.md``, ``pr.png`` and, last, ``report.json`` into ``folder``, each atomically."""
    atomic_write_text(folder / "report.md", report.to_markdown())
    report.plot_pr(folder / "pr.png")
    report.save_json(folder / "report.json")


def write_report(hasher, ds, run_dir: Path, ks=(100,), directions=("i2t", "t2i"), fingerprint: str | None = None,
                 database_codes: str = "per-modality", note: str | None = None, retrieval: str = "hamming"):
    """Evaluate and write ``report.md``, ``pr.png`` and, last, ``report.json`` into ``run_dir``
    (each atomically; ``report.json`` marks the folder finished). ``note`` (a protocol
    mismatch) goes into the report's meta and Markdown, and so does a collapse: constant bits
    found by the evaluation, or the trainer's validation at chance (``hasher.collapse``)."""
    report = evaluate(hasher, ds, directions=directions, ks=ks, database_codes=database_codes, retrieval=retrieval)
    trained = getattr(hasher, "collapse", None)
    if trained:
        collapse = {**report.meta.get("collapse", {}), "validation": trained}
        report.meta["collapse"] = {**collapse, "statement": collapse_statement(collapse)}
    if fingerprint:
        report.meta["data_fingerprint"] = fingerprint
    if note:
        report.meta["protocol_note"] = note
    report.meta["model_selection"] = selection_statement(hasher, ds)
    report.meta["n_train"] = int(len(ds.split.train))
    if ds.notes:
        report.meta["notes"] = list(ds.notes)
    save_report(report, Path(run_dir))
    return report


def evaluate_run(run_dir: str | os.PathLike, ks=(100,), directions=None, log=print,
                 database_codes: str | None = None, retrieval: str = "hamming",
                 data_root: str | os.PathLike | None = None):
    """Re-evaluate a run without touching its files: the report goes to a new numbered folder
    ``evaluations/eval-0001`` (``-0002`` ...) holding report.json, report.md and pr.png, written
    under a hidden name and renamed when complete. ``directions`` and ``database_codes`` default
    to the run's own. Returns ``(report, folder)``."""
    run_dir = Path(run_dir)
    spec, hasher, ds = load_run(run_dir, data_root=data_root)
    directions = tuple(directions or spec.directions or ("i2t", "t2i"))
    database_codes = database_codes or spec.database_codes
    report = evaluate(hasher, ds, directions=directions, ks=ks, database_codes=database_codes, retrieval=retrieval)
    if spec.data_fingerprint:
        report.meta["data_fingerprint"] = spec.data_fingerprint
    if spec.protocol_note:
        report.meta["protocol_note"] = spec.protocol_note
    report.meta["model_selection"] = selection_statement(hasher, ds)
    return report, save_evaluation(report, run_dir / "evaluations")


def save_evaluation(report, evals: Path) -> Path:
    """Write ``report`` into the next free ``evals/eval-NNNN`` (made complete under a hidden
    name, then renamed); a hidden folder left by a killed evaluation is removed first. On any
    error nothing is left behind (not even an empty ``evals``)."""
    evals.mkdir(exist_ok=True)
    for old in evals.glob(".eval-partial-*"):  # left by a killed evaluation: its process is gone
        m = re.match(r"\.eval-partial-(\d+)-", old.name)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".eval-partial-{os.getpid()}-", dir=evals))
    try:
        save_report(report, tmp)
        taken = [int(p.name[5:]) for p in evals.iterdir() if re.fullmatch(r"eval-\d{4,}", p.name)]
        n = max(taken, default=0) + 1
        while True:
            target = evals / f"eval-{n:04d}"
            if not target.exists():
                try:
                    os.rename(tmp, target)  # fails if another evaluation took the number meanwhile
                    return target
                except OSError:
                    if not target.exists():
                        raise
            n += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            evals.rmdir()  # only when empty: the run folder is left as it was
        except OSError:
            pass
        raise
