"""``classic.md``: the official-vs-port table, generated from ``classic.json`` (never typed by hand).

One table per dataset; a row per method x bits x database convention x direction with mAP@all
as mean ± std over the seeds (population std) of the released code (``official``), the port with
the same settings (``port``) and, where the released code departs from the paper, the port with
its named option for the released behaviour (``port, released``), each port column followed by its
difference to the official mean, and how far the port-released database codes equal the released
code's (``equal bits``, image / text, mean over seeds: the bits whose every item agrees, then in
brackets the share of agreeing bit values). Differences over 0.01 are in bold and listed after the
tables.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

METRIC = "mAP@all"
GAP = 0.01
ARROWS = {"i2t": "I→T", "t2i": "T→I"}
VARIANTS = ("official", "port", "port-released")
ORDER = ("cvh", "imh", "cmfh", "fsh", "lssh")


def _cells(entries) -> dict:
    """``{(dataset, method, bits, convention, direction, variant): [values over seeds]}``."""
    cells = defaultdict(list)
    for e in entries:
        for conv, figs in e["figures"].items():
            for d in ARROWS:
                if d in figs:
                    cells[(e["dataset"], e["method"], e["bits"], conv, d, e["variant"])].append(figs[d][METRIC])
    return cells


def mean_std(values) -> str:
    """``"0.1234 ± 0.0040"`` (population std; `` (n=K)`` unless 3 values); none: ``—``."""
    if not values:
        return "—"
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.4f} ± {v.std():.4f}" + ("" if len(v) == 3 else f" (n={len(v)})")


def _diff(values, ref) -> tuple[str, float | None]:
    if not values or not ref:
        return "—", None
    d = float(np.mean(values) - np.mean(ref))
    text = f"{round(d, 4) + 0.0:+.4f}"  # + 0.0: no "-0.0000"
    return (f"**{text}**" if abs(d) > GAP else text), d


def _equal_bits(entries, ds: str, method: str, bits: int) -> str:
    """``image / text`` database bits of the port-released run equal to the released code's for
    every item (up to a flip; mean over seeds) and, in brackets, the share of equal bit values,
    from the entries' ``agreement``; ``—`` without."""
    got = [e["agreement"] for e in entries if e["variant"] == "port-released" and e.get("agreement")
           and (e["dataset"], e["method"], e["bits"]) == (ds, method, bits)]
    if not got:
        return "—"
    mean = lambda m, key: np.mean([g[m][key] for g in got])  # noqa: E731
    return (f"{mean('image', 'identical_bits'):.3g} / {mean('text', 'identical_bits'):.3g} of {bits} "
            f"({mean('image', 'mean_agreement'):.3f} / {mean('text', 'mean_agreement'):.3f})")


def table_rows(data: dict) -> tuple[list[str], list[tuple]]:
    """The Markdown lines of every dataset's table and the list of gaps over :data:`GAP`
    ``(dataset, method, bits, convention, direction, variant, difference)``."""
    entries = data.get("entries", [])
    cells = _cells(entries)
    about = data.get("about", {})
    lines, gaps = [], []
    datasets = [k for k in ("wiki", "uci") if any(e["dataset"] == k for e in entries)]
    for ds in datasets:
        info = about.get("datasets", {}).get(ds, {})
        seeds = sorted({e["seed"] for e in entries if e["dataset"] == ds})
        lines += [f"### {ds}: {info.get('n_train', '?')} training pairs, {info.get('n_query', '?')} queries, "
                  f"{info.get('n_database', '?')} database items (split {info.get('split_hash', '?')}); "
                  f"{METRIC}, mean ± std over seeds {', '.join(map(str, seeds))}", "",
                  "| method | bits | database codes | direction | official | port | port − official "
                  "| port, released behaviour | released − official | equal bits |",
                  "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
        keys = sorted({k[1:5] for k in cells if k[0] == ds},
                      key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1], k[2] != "per-modality", k[3]))
        for method, bits, conv, d in keys:
            off = cells.get((ds, method, bits, conv, d, "official"), [])
            if not off:
                continue
            row = [method, str(bits), conv, ARROWS[d], mean_std(off)]
            for variant in VARIANTS[1:]:
                vals = cells.get((ds, method, bits, conv, d, variant), [])
                text, diff = _diff(vals, off)
                row += [mean_std(vals), text]
                if diff is not None and abs(diff) > GAP:
                    gaps.append((ds, method, bits, conv, d, variant, diff))
            row.append(_equal_bits(entries, ds, method, bits))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return lines, gaps


def _in_errors(diff: float, a, b) -> str:
    """`` (k.k standard errors)``: the difference of two means over seeds in units of its standard
    error ``sqrt(s_a²/n_a + s_b²/n_b)`` (sample std, ddof 1); empty when both sides are constant or
    a side has one value."""
    if len(a) < 2 or len(b) < 2:
        return ""
    se = float(np.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)))
    return f" ({abs(diff) / se:.1f} standard errors)" if se > 1e-12 else ""


def summary(data: dict, gaps: list[tuple]) -> str:
    """One sentence counting the rows past :data:`GAP`: of the port, of the port with the released
    behaviour (among the rows that have it), and rows with a port run where no port variant is
    within it."""
    cells = _cells(data.get("entries", []))
    rows = {k[:5] for k in cells if k[5] == "official"}
    has = lambda row, v: bool(cells.get((*row, v)))  # noqa: E731
    port = {g[:5] for g in gaps if g[5] == "port"}
    released = {g[:5] for g in gaps if g[5] == "port-released"}
    with_released = {r for r in rows if has(r, "port-released")}
    left = {r for r in rows if (has(r, "port") or has(r, "port-released"))
            and (r in port or not has(r, "port")) and (r in released or not has(r, "port-released"))}
    return (f"port {len(port)} of {sum(has(r, 'port') for r in rows)} rows; port with the released behaviour "
            f"{len(released)} of {len(with_released)} rows; within {GAP} by neither {len(left)}")


def write_table(data: dict, path: Path) -> None:
    """Write ``classic.md`` for the results ``data`` (the parsed ``classic.json``), atomically (the
    docs page ``docs/src/findings/official-classic.md`` includes it)."""
    from common import atomic_write

    about = data.get("about", {})
    code = about.get("code", {})
    head = ["**Classic baselines: released code (GNU Octave) vs port**", "",
            "Generated by `benchmarks/official/classic_octave.py` from `classic.json`; do not edit by hand.",
            "Codes of both sides are scored by crossmodal (`import-codes` + `evaluate`); every training pair "
            "trains (`--validation-fraction 0`).", ""]
    for repo in sorted(code):
        head.append(f"- released code: `{code[repo]['repo']}` at commit `{code[repo]['commit']}`")
    if about.get("octave"):
        head.append(f"- {about['octave']}; crossmodal commit `{about.get('crossmodal_commit')}`")
    head.append("")
    lines, gaps = table_rows(data)
    tail = [f"Rows whose mean differs from the official mean by more than {GAP} mAP: {summary(data, gaps)}.",
            ""]
    cells = _cells(data.get("entries", []))
    tail += [f"- {ds} {m} {b} bits, {conv}, {ARROWS[d]}: {v} {diff:+.4f}"
             + _in_errors(diff, cells[(ds, m, b, conv, d, "official")], cells[(ds, m, b, conv, d, v)])
             for ds, m, b, conv, d, v, diff in gaps]
    failed = sorted({(e["dataset"], e["method"], e["bits"], e["variant"], e["error"])
                     for e in data.get("entries", []) if e.get("error")})
    if failed:
        tail += ["", "Runs that failed (no row; every seed):", ""]
        tail += [f"- {ds} {m} {b} bits, {v}: {err}" for ds, m, b, v, err in failed]
    text = "\n".join(head + lines + tail) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))

