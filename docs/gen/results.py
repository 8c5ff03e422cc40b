"""Results pages, generated at build time from ``experiments/results/`` so no figure is typed twice.

``table(name)`` is the committed ``table.md`` of one results folder (as ``crossmodal report``
wrote it), ``figures(name)`` its plots, ``sweep(name)`` the sweep file that produced it, and
``ablation(file)`` the UGACH ablation table computed from its JSON by the same function that
``benchmarks/ablate_ugach.py`` prints it with.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "experiments" / "results"
SWEEPS = REPO / "experiments" / "sweeps"
FIGURE_DIR = "results/figures"  # where the plots land in the site
KINDS = (("map", "mAP against code length"), ("pr", "precision–recall"), ("pk", "precision@k"),
         ("ndcg", "NDCG@k"), ("recall", "recall@k"))


def figure_sources() -> list[tuple[Path, str]]:
    """``(file, site path)`` of every SVG and PDF under experiments/results."""
    return [(f, f"{FIGURE_DIR}/{f.parent.name}/{f.name}") for f in sorted(RESULTS.glob("*/*"))
            if f.suffix in (".svg", ".pdf")]


def folder(name: str) -> Path:
    p = RESULTS / name
    if not (p / "table.md").is_file():
        raise ValueError(f"experiments/results/{name}/table.md does not exist")
    return p


def table(name: str) -> str:
    """The committed table.md: headings one level down (to sit under a page section), its
    footnotes (the lines after the tables) as a list so that each keeps its own line."""
    out: list[str] = []
    for line in (folder(name) / "table.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            out.append("#" + line)
        elif line.strip() and not line.startswith("|"):
            if out and out[-1].startswith("|"):
                out.append("")
            out.append(f"- {line}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def figures(name: str, page_depth: int) -> str:
    """Every plot of a results folder, SVG inline with a link to its PDF, grouped by kind."""
    up = "../" * page_depth
    lines = []
    for prefix, title in KINDS:
        svgs = sorted(folder(name).glob(f"{prefix}-*.svg"))
        if not svgs:
            continue
        lines += [f"#### {title}", ""]
        for svg in svgs:
            uri = f"{up}{FIGURE_DIR}/{name}/{svg.name}"
            pdf = svg.with_suffix(".pdf")
            link = f" ([PDF]({uri[:-4]}.pdf))" if pdf.is_file() else ""
            lines += [f"![{svg.stem}]({uri}){link}", ""]
    return "\n".join(lines)


def sweep(name: str) -> str:
    """The sweep file of a results folder, as a collapsed block."""
    path = SWEEPS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"experiments/sweeps/{name}.yaml does not exist")
    body = [f"    {line}".rstrip() for line in path.read_text(encoding="utf-8").splitlines()]
    return "\n".join([f'??? note "experiments/sweeps/{name}.yaml"', "", "    ```yaml", *body, "    ```", ""])


def _ablate_module():
    path = REPO / "benchmarks" / "ablate_ugach.py"
    spec = importlib.util.spec_from_file_location("ablate_ugach", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ablation(file: str) -> str:
    """The table of one UGACH ablation JSON, as ``benchmarks/ablate_ugach.py --table-only``
    prints it, with the cuts and seeds read from the file."""
    rows = json.loads((RESULTS / "ugach-ablation" / file).read_text(encoding="utf-8"))
    cuts = {(r["hidden"], r["epochs"], r["pretrain_epochs"], r["cut"]) for r in rows}
    if len(cuts) != 1:
        raise ValueError(f"{file}: rows of several configurations {sorted(cuts)}; the table shows one")
    hidden, epochs, pretrain, cut = cuts.pop()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    bits = sorted({r["bits"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    text = _ablate_module().table(rows, datasets, bits, set(seeds))
    caption = (f"`experiments/results/ugach-ablation/{file}`: hidden {hidden}, {epochs} adversarial epochs, "
               f"{pretrain} epochs of the official pre-training schedule (`+ old pretrain` and `fast preset`: "
               f"their own schedules), {cut} training pairs; "
               f"mean (std) over seeds {', '.join(map(str, seeds))} of the mean of I→T and T→I mAP@all; "
               "val = validation split (selection), query = query split (never used for selection); "
               "time = mean seconds per run.")
    return caption + "\n\n" + text + "\n"


OFFICIAL = RESULTS / "official"
OFFICIAL_COMMANDS = {"classic": "benchmarks/official/classic_octave.py", "deep": "benchmarks/official/*_official.py",
                     "deep-released": "benchmarks/official/*_official.py",
                     "paper-settings": "benchmarks/official/paper_settings.py",
                     "ugach-stages": "benchmarks/official/ugach_stages.py",
                     "deep-lockstep": "benchmarks/official/deep_lockstep.py"}


def official(name: str) -> str:
    """A table of ``experiments/results/official/NAME.md`` (written by the script that ran the
    released code from its ``NAME.json``), its title dropped and headings one level down. A table
    not in this checkout (its script has not run here) is a note naming the script, not an error."""
    path = OFFICIAL / f"{name}.md"
    if not path.is_file():
        script = OFFICIAL_COMMANDS.get(name, "its script under benchmarks/official/")
        return (f'!!! note "Not in this checkout"\n    `experiments/results/official/{name}.md` is not here yet; '
                f"`{script}` writes it.\n")
    lines = path.read_text(encoding="utf-8").splitlines()
    out = [("#" + line) if line.startswith("##") else line for line in lines if not line.startswith("# ")]
    return "\n".join(out).strip() + "\n"
