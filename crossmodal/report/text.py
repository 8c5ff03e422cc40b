"""The result table as text: Markdown (``table.md``), LaTeX with booktabs (``table.tex``) and
long-form CSV (``table.csv``). :class:`TableText` is a mixin of
:class:`~crossmodal.report.table.ResultTable`, whose ``blocks``, ``caption``, ``footnotes``,
``stat`` and ``seeds_of`` it prints."""

from __future__ import annotations

import csv
import io

from crossmodal.report.find import DB_CODES_DEFAULT
from crossmodal.retrieval.evaluate import LABELS

DEFAULT_METRICS = ("mAP@all", "mAP@100")
PM, DAGGER = r"$\pm$", r"$^\dagger$"
LATEX_DIRECTIONS = {"i2t": r"I$\to$T", "t2i": r"T$\to$I", "i2i": r"I$\to$I", "t2t": r"T$\to$T"}


def latex_escape(s: str) -> str:
    """``s`` with the LaTeX special characters escaped."""
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(rep.get(c, c) for c in str(s))


def latex_note(note: str) -> str:
    """A footnote of the table in LaTeX: escaped, with ±, † and → as math."""
    return latex_escape(note).replace("±", "$\\pm$").replace("†", "$^\\dagger$").replace("→", "$\\to$")


class TableText:
    """Markdown, LaTeX and CSV writers of a :class:`~crossmodal.report.table.ResultTable`."""

    def to_markdown(self, metrics=DEFAULT_METRICS, digits: int = 3) -> str:
        """``table.md``: per dataset and metric a table (rows configurations, columns bits, one block
        per direction; best mean per column in bold), then the dataset's footnotes."""
        self.check_metrics(metrics)
        out = []
        for ds in self.datasets:
            seeds = self.seeds_of(ds)
            for metric in [m for m in metrics if m in self.metrics(ds)]:
                bits, blocks = self.blocks(ds, metric)
                out.append(f"### {self.caption(ds, metric)}\n")
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
            seeds = self.seeds_of(ds)
            for metric in [m for m in metrics if m in self.metrics(ds)]:
                bits, blocks = self.blocks(ds, metric)
                tag = "".join(c if c.isalnum() else "-" for c in f"{ds}-{metric}").strip("-")
                caption = latex_escape(self.caption(ds, metric)).replace("±", PM)
                out += ["\\begin{table}[t]", "\\centering", "\\small",
                        f"\\caption{{{caption}}}",
                        f"\\label{{tab:{tag}}}",
                        "\\begin{tabular}{l" + "c" * len(bits) + "}", "\\toprule",
                        "Method & " + " & ".join(f"{b} bits" for b in bits) + " \\\\", "\\midrule"]
                for i, (d, rows) in enumerate(blocks):
                    if i:
                        out.append("\\midrule")
                    direction = LATEX_DIRECTIONS.get(d, d)
                    out.append(f"\\multicolumn{{{len(bits) + 1}}}{{l}}{{\\textit{{{direction}}}}} \\\\")
                    for lab, cells, marked in rows:
                        row = []
                        for c in cells:
                            if c is None:
                                row.append("--")
                                continue
                            txt = f"{c[0]:.{digits}f}" + (f" {PM} {c[1]:.{digits}f}" if c[2] >= 2 else "")
                            txt += f" ($n$={c[2]})" if c[2] < len(seeds) else ""
                            row.append(f"\\textbf{{{txt}}}" if c[3] else txt)
                        out.append(latex_escape(lab) + (DAGGER if marked else "") + " & " + " & ".join(row) + " \\\\")
                out += ["\\bottomrule", "\\end{tabular}", "",
                        "\\par\\smallskip\\parbox{\\linewidth}{\\footnotesize "
                        + " ".join(latex_note(n) for n in self.footnotes(ds)) + "}",
                        "\\end{table}", ""]
        return "\n".join(out)

    def to_csv(self) -> str:
        """``table.csv`` in long form: one row per cell (dataset, direction, method, bits, metric, mean,
        std, n, seeds, database_codes)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["dataset", "direction", "method", "bits", "metric", "mean", "std", "n", "seeds", "database_codes"])
        for key in sorted(self.cells, key=lambda k: (k[0], k[1], self.labels.index(k[2]), k[3], k[4])):
            mean, std, n = self.stat(key)
            w.writerow([*key[:4], key[4], f"{mean:.6f}", f"{std:.6f}" if n > 1 else "", n,
                        " ".join(map(str, sorted(self.seeds[key]))), self.codes[key[0]].get(key[2], DB_CODES_DEFAULT)])
        return buf.getvalue()
