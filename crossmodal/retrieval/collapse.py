"""Collapse detection: codes that carry no information, and retrieval at chance level.

A trained hasher has *collapsed* when its codes stop telling items apart. Two signs are checked:

* **constant bits** (:func:`constant_bits`): a bit that takes one value over every item of a coded
  part (the query or database codes of one modality); when every bit is constant, every item
  gets the same code and every ranking is the database order. Checked by
  :func:`crossmodal.retrieval.evaluate.evaluate` on the codes it scores.
* **validation at chance** (:func:`at_chance`): the best validation mAP of the whole run is within
  :data:`CHANCE_MARGIN` of the mAP of a random ranking (:func:`chance_map`). Checked by the epoch
  trainer (:class:`~crossmodal.methods.training.EpochTrainer`) after its last epoch.

Both land in ``report.json`` (``meta["collapse"]``), as a line of ``report.md``
(:func:`collapse_statement`) and as a warning in the log.
"""

from __future__ import annotations

import numpy as np

from crossmodal.retrieval.codes import unpack

CHANCE_MARGIN = 0.01  # a run whose best validation mAP is below chance + this is "at chance"


def constant_bits(packed: np.ndarray, bits: int) -> int:
    """How many of the ``bits`` bits of packed codes ``(N, ceil(bits/8)) uint8`` have the same
    value in every row (0 for fewer than two rows)."""
    if len(packed) < 2:
        return 0
    b = unpack(packed, bits)
    return int((b.min(axis=0) == b.max(axis=0)).sum())


def chance_map(q_labels: np.ndarray, db_labels: np.ndarray, chunk: int = 1024) -> float:
    """mAP@all of a random ranking: the mean over queries of the expected AP of a uniformly
    random order of the N database items, ``(H_N + (N - H_N)(R - 1)/(N - 1)) / N`` for a query
    with R relevant items (H_N the harmonic number; about R / N for large N); a query with no
    relevant item counts 0, as its AP. ``q_labels (Nq, C)``, ``db_labels (N, C)`` 0/1."""
    db = np.asarray(db_labels, dtype=np.float32)
    q = np.asarray(q_labels, dtype=np.float32)
    n = len(db)
    if n == 0 or len(q) == 0:
        return 0.0
    r = np.concatenate([((q[s:s + chunk] @ db.T) > 0).sum(axis=1) for s in range(0, len(q), chunk)])
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    rest = (r - 1) / (n - 1) if n > 1 else np.zeros_like(r, dtype=float)
    ap = np.where(r > 0, (h + (n - h) * rest) / n, 0.0)
    return float(ap.mean())


def at_chance(scores: list[float], chance: float, margin: float = CHANCE_MARGIN) -> bool:
    """True when there is at least one score and every score is below ``chance + margin``."""
    return bool(scores) and max(scores) < chance + margin


def code_collapse(codes: dict, bits: int) -> dict | None:
    """``{"constant_bits": {"PART MODALITY": count}, "bits": bits}`` for the coded parts with
    at least one constant bit, or None when no bit of any part is constant. ``codes`` maps a
    name (``"database image"`` ...) to packed codes."""
    counts = {name: constant_bits(c, bits) for name, c in codes.items()}
    counts = {name: n for name, n in counts.items() if n}
    return {"constant_bits": counts, "bits": int(bits)} if counts else None


def collapse_statement(collapse: dict) -> str:
    """One sentence for ``report.md`` and the log from a ``meta["collapse"]`` record."""
    parts = []
    counts = collapse.get("constant_bits") or {}
    bits = collapse.get("bits")
    if counts:
        whole = [name for name, n in counts.items() if n == bits]
        if whole:
            parts.append(f"every item gets the same code in the {', '.join(whole)} codes (all {bits} bits constant)")
        rest = {name: n for name, n in counts.items() if n != bits}
        if rest:
            each = (f"{n} of {bits} in the {name} codes" for name, n in rest.items())
            parts.append("constant bits: " + ", ".join(each))
    val = collapse.get("validation")
    if val:
        parts.append(f"validation mAP at chance for the whole run (best {val['best']:.3f} over {val['epochs']} epochs, "
                     f"chance {val['chance']:.3f})")
    word = "collapsed" if any(n == bits for n in counts.values()) or val else "degenerate codes"
    return f"{word}: " + "; ".join(parts)
