"""``crossmodal report RUNS... --out DIR``: find the runs, build the table, write its text files
and figures."""

from __future__ import annotations

import os
from pathlib import Path

from crossmodal.engine import atomic_write_text, check_out_folder
from crossmodal.report.find import find_runs
from crossmodal.report.table import ResultTable
from crossmodal.report.text import DEFAULT_METRICS


def write_report(paths: list[str | os.PathLike], out: str | os.PathLike, metrics=DEFAULT_METRICS,
                 methods_order=(), plots: bool = True, only=None, allow_mixed_codes: bool = False,
                 formats=("png", "pdf", "svg"), kinds=None) -> tuple[ResultTable, list[Path]]:
    """Aggregate the runs under ``paths`` into ``out``: table.md, table.tex, table.csv and the
    figures (PNG, PDF, SVG). Everything is checked (metrics, labels, conventions) before
    anything is written."""
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
