"""``new_methods.md``: released code vs port for UCMFH, CIRH, DAEH, generated from ``new_methods.json``.

One table per dataset: a row per method x bits x direction with mAP@all (and mAP@100) as mean ±
population std over the seeds of each variant, and the like-for-like difference (:data:`PAIRS`:
the port variant that does what the released code does, minus the released figure). Differences
over 0.01 mAP@all are in bold and listed after the tables. Beside it, ``new_methods_ucmfh.md`` (the
UCMFH rows alone) and ``new_methods_runs.md`` (the recorded ``crossmodal train`` runs).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from classic_table import mean_std

GAP = 0.01
ARROWS = {"i2t": "I→T", "t2i": "T→I"}
VARIANTS = ("official", "official-permodality", "port", "port-paired", "port-released")
ORDER = ("ucmfh", "cirh", "daeh")
DATASETS = ("toy", "wiki", "uci")
PAIRS = {  # method -> (port variant, released variant) that do the same thing
    "ucmfh": ("port-paired", "official-permodality"),  # trained on paired tokens, coded per modality
    "cirh": ("port-released", "official"),  # the released hash-function pass (S block by position)
    "daeh": ("port", "official"),
}


def _cells(entries, metric: str) -> dict:
    cells = defaultdict(list)
    for e in entries:
        figs = e.get("figures", {}).get("per-modality", {})
        if e["variant"].startswith("run:"):
            continue
        for d in ARROWS:
            if d in figs:
                cells[(e["dataset"], e["method"], e["bits"], d, e["variant"])].append(figs[d][metric])
    return cells


def table_lines(data: dict, metric: str = "mAP@all", methods=ORDER) -> tuple[list[str], list[tuple]]:
    """Markdown lines of each dataset's table (``metric``, rows of ``methods``) and the like-for-like
    gaps (:data:`PAIRS`) over :data:`GAP`."""
    entries = [e for e in data.get("entries", []) if e["method"] in methods]
    cells = _cells(entries, metric)
    about = data.get("about", {})
    lines, gaps = [], []
    for ds in [d for d in DATASETS if any(k[0] == d for k in cells)]:
        info = about.get("datasets", {}).get(ds, {})
        seeds = sorted({e["seed"] for e in entries if e["dataset"] == ds})
        lines += [(f"#### {ds}: {info.get('n_train', '?')} training pairs, {info.get('n_query', '?')} queries, "
                  f"{info.get('n_database', '?')} database items (split {info.get('split_hash', '?')}); "
                  f"{metric}, mean ± std over seeds {', '.join(map(str, seeds))}"), "",
                  "| method | bits | epochs | direction | " + " | ".join(VARIANTS) + " | like for like |",
                  "|---|---:|---:|---|" + "---:|" * (len(VARIANTS) + 1)]
        keys = sorted({k[1:4] for k in cells if k[0] == ds}, key=lambda k: (ORDER.index(k[0]), k[1], k[2]))
        for method, bits, d in keys:
            epochs = about.get("epochs", {}).get(f"{method}/{ds}", "?")
            vals = {v: cells.get((ds, method, bits, d, v), []) for v in VARIANTS}
            diff = "—"
            port, official = PAIRS[method]
            if vals[official] and vals[port]:
                gap = float(np.mean(vals[port]) - np.mean(vals[official]))
                diff = f"**{gap:+.4f}**" if abs(gap) > GAP else f"{gap:+.4f}"
                if abs(gap) > GAP:
                    gaps.append((ds, method, bits, d, f"{port} − {official}", gap))
            lines.append(f"| {method} | {bits} | {epochs} | {ARROWS[d]} | "
                         + " | ".join(mean_std(vals[v]) for v in VARIANTS) + f" | {diff} |")
        lines.append("")
    return lines, gaps


def run_lines(data: dict) -> list[str]:
    """Markdown table of the recorded training runs (variant ``run:LABEL``): mAP@all, its difference
    to the LSH run of the same dataset, bits and seed (when recorded), and mAP@100."""
    runs = sorted((e for e in data.get("entries", []) if e["variant"].startswith("run:")),
                  key=lambda e: (e["dataset"], e["bits"], e["variant"], e["seed"]))
    if not runs:
        return []
    lsh = {(e["dataset"], e["bits"], e["seed"]): e["figures"].get("per-modality", {})
           for e in runs if e["method"] == "lsh"}
    lines = [("| dataset | run | bits | seed | I→T mAP@all | T→I mAP@all | I→T − LSH | T→I − LSH "
              "| I→T mAP@100 | T→I mAP@100 | validation score | model selection | commit |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for e in runs:
        f = e["figures"].get("per-modality", {})
        base = lsh.get((e["dataset"], e["bits"], e["seed"]), {}) if e["method"] != "lsh" else {}
        cells = [f"{f[d]['mAP@all']:.4f}" if d in f else "—" for d in ARROWS]
        cells += [f"{f[d]['mAP@all'] - base[d]['mAP@all']:+.4f}" if d in f and d in base else "—" for d in ARROWS]
        cells += [f"{f[d]['mAP@100']:.4f}" if d in f else "—" for d in ARROWS]
        sel = (e.get("model_selection") or "").split(";")[0]
        val = "—" if e.get("validation_score") is None else f"{e['validation_score']:.4f}"
        lines.append(f"| {e['dataset']} | {e['variant'][4:]} | {e['bits']} | {e['seed']} | " + " | ".join(cells)
                     + f" | {val} | {sel} | {e.get('commit') or '—'} |")
    return lines + [""]


def write_table(data: dict, path: Path) -> None:
    """Write ``new_methods.md`` (``path``), ``new_methods_ucmfh.md`` and ``new_methods_runs.md`` beside
    it for the parsed ``new_methods.json``, each atomically."""
    from common import atomic_write

    about = data.get("about", {})
    head = ["# UCMFH, CIRH, DAEH: released code vs port", "",
            ("Generated by `benchmarks/official/new_methods.py` from `new_methods.json`; do not edit by hand. "
            "Codes of every variant are scored by crossmodal (`import-codes` + `evaluate`, per-modality database "
            "codes); every training pair trains (`--validation-fraction 0`), both sides train the same epochs "
            "and keep the last one. The last column is the like-for-like difference: UCMFH `port-paired` − "
            "`official-permodality`, CIRH `port-released` − `official`, DAEH `port` − `official`. "
            "Variants: `official` = released code (its changes listed in `benchmarks/official/*_released.py`); "
            "`official-permodality` = the released UCMFH model coding each item from its own modality; `port` = crossmodal's defaults (= the paper preset); `port-paired` = "
            "UCMFH `fusion_input=paired`; `port-released` = CIRH `hashfunc_similarity=released`."), ""]
    for method in ORDER:
        code = about.get("code", {}).get(method)
        if code:
            head.append(f"- {method}: `{code['repo']}` at commit `{code['commit']}`")
    made = Counter(e.get("commit") for e in data.get("entries", []) if not e["variant"].startswith("run:"))
    head += [f"- crossmodal commit of {n} entries: `{c[:7]}`" for c, n in sorted(made.items(), key=str) if c]
    if made.get(None):
        head.append(f"- {made[None]} entries from before entries recorded their commit (the page says which)")
    head.append("")
    lines, gaps = table_lines(data, "mAP@all")
    lines100, _ = table_lines(data, "mAP@100")
    tail = [f"Rows whose like-for-like difference exceeds {GAP} mAP@all ({len(gaps)}):", ""]
    tail += [f"- {ds} {m} {b} bits {ARROWS[d]}, {pair}: {g:+.4f}" for ds, m, b, d, pair, g in gaps]
    failed = sorted({(e["dataset"], e["method"], e["bits"], e["seed"], e["variant"], e["error"])
                     for e in data.get("entries", []) if e.get("error")})
    if failed:
        tail += ["", "Runs that failed:", ""] + [f"- {ds} {m} {b} bits seed {s}, {v}: {err}"
                                                 for ds, m, b, s, v, err in failed]
    def section(name, body):  # pymdownx.snippets sections: the docs include a part by name
        return [f"<!-- --8<-- [start:{name}] -->", *body, f"<!-- --8<-- [end:{name}] -->", ""]

    text = "\n".join(head[:2] + section("about", head[2:]) + section("map-all", ["### mAP@all", ""] + lines)
                     + section("map-100", ["### mAP@100", ""] + lines100) + section("gaps", tail)) + "\n"
    ucmfh = "\n".join(table_lines(data, "mAP@all", ("ucmfh",))[0]) + "\n"
    runs = "\n".join(run_lines(data) or ["No recorded runs."]) + "\n"
    path = Path(path)
    for target, body in ((path, text), (path.with_name(path.stem + "_ucmfh.md"), ucmfh),
                         (path.with_name(path.stem + "_runs.md"), runs)):
        atomic_write(target, lambda tmp, body=body: tmp.write_text(body, encoding="utf-8"))
