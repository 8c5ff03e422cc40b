"""The result table's figures, each as PNG, PDF and SVG, sized for a two-column paper:
``pr-<ds>-<dir>`` (precision-recall, one panel per code length), ``pk-`` (precision@k, log k),
``ndcg-`` and ``recall-`` (NDCG@k, recall@k, log k), ``map-<ds>`` (mAP vs bits). Y axes fitted
to the data, std bands where there are at least two seeds, colour + line style + marker per
configuration. :class:`TableFigures` is a mixin of :class:`~crossmodal.report.table.ResultTable`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossmodal.retrieval.evaluate import LABELS

CURVES = {  # kind: (result key, x key, y key, x label, y label, log x)
    "pr": ("pr_curve", "recall", "precision", "recall", "precision", False),
    "pk": ("pk_curve", "k", "precision", "number of retrieved items $k$", "precision@$k$", True),
    "ndcg": ("ndcg_curve", "k", "ndcg", "number of retrieved items $k$", "NDCG@$k$", True),
    "recall": ("recall_curve", "k", "recall", "number of retrieved items $k$", "recall@$k$", True),
}
TEXT_WIDTH_IN = 7.0  # two-column papers: full text width about 7 in, one column about 3.4 in
COLUMN_WIDTH_IN = 3.4


class TableFigures:
    """``plot`` of a :class:`~crossmodal.report.table.ResultTable` (its runs, labels, cells)."""

    def curve(self, ds, d, label, bits, name, xkey, ykey):
        """``(x mean, y mean, y std or None, n seeds)`` of one configuration's curve."""
        xs, ys = [], []
        for r in self.runs:
            if (r.dataset, r.label, r.bits) == (ds, label, bits) and d in r.results and name in r.results[d]:
                c = r.results[d][name]
                xs.append(np.asarray(c[xkey], float))
                ys.append(np.asarray(c[ykey], float))
        if not xs or len({len(x) for x in xs}) != 1:
            return None
        y = np.array(ys)
        return np.mean(xs, axis=0), y.mean(axis=0), (y.std(axis=0, ddof=1) if len(ys) > 1 else None), len(ys)

    def style(self, label):
        """Colour, line style and marker of ``label``'s curves (distinct for 40 rows)."""
        i = self.labels.index(label)
        colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
        styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1))]
        markers = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]  # 10 markers x 8 colours: 40 distinct rows
        return dict(color=colours[i % len(colours)], linestyle=styles[i % len(styles)],
                    marker=markers[i % len(markers)])

    def plot(self, out: Path, formats=("png", "pdf", "svg"), kinds=None) -> list[Path]:
        """Write the figures into ``out``; ``kinds`` limits them to some of ``pr, pk, ndcg, recall, map``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rc = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
              "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 3.5, "pdf.fonttype": 42,
              "ps.fonttype": 42, "svg.fonttype": "none", "savefig.dpi": 200, "axes.spines.top": False,
              "axes.spines.right": False}
        from crossmodal.engine import atomic_savefig

        written: list[Path] = []

        def save(fig, stem):
            for fmt in formats:
                p = out / f"{stem}.{fmt}"
                atomic_savefig(fig, p, bbox_inches="tight", pad_inches=0.02)
                written.append(p)
            plt.close(fig)

        with plt.rc_context(rc):
            for ds in self.datasets:
                dirs = self.directions(ds)
                bits = [b for b in self.bits if any(k[0] == ds and k[3] == b for k in self.cells)]
                for kind, (name, xkey, ykey, xlabel, ylabel, logx) in CURVES.items():
                    if kinds is not None and kind not in kinds:
                        continue
                    for d in dirs:
                        if not any(name in r.results.get(d, {}) for r in self.runs if r.dataset == ds):
                            continue
                        fig, axes = panels(plt, len(bits))
                        lo, hi = np.inf, -np.inf
                        for ax, b in zip(axes, bits):
                            for lab in self.labels:
                                c = self.curve(ds, d, lab, b, name, xkey, ykey)
                                if c is None:
                                    continue
                                x, y, sd, _ = c
                                st = self.style(lab)
                                every = max(1, len(x) // 8)
                                ax.plot(x, y, label=lab + (" †" if self.marked(ds, lab) else ""), markevery=every, **st)
                                if sd is not None:
                                    ax.fill_between(x, y - sd, y + sd, color=st["color"], alpha=0.15, linewidth=0)
                                    lo, hi = min(lo, np.min(y - sd)), max(hi, np.max(y + sd))
                                else:
                                    lo, hi = min(lo, np.min(y)), max(hi, np.max(y))
                            ax.set_title(f"{b} bits")
                            if len(bits) == 1:
                                ax.set_xlabel(xlabel)
                            if logx:
                                ax.set_xscale("log")
                            ax.grid(alpha=0.3, linewidth=0.5)
                        fit_y(axes, lo, hi)
                        axes[0].set_ylabel(f"{ylabel} ({LABELS.get(d, d)})")
                        legend_below(fig, axes, None if len(bits) == 1 else xlabel)
                        save(fig, f"{kind}-{ds}-{d}")
                for metric in ("mAP@all",) if kinds is None or "map" in kinds else ():
                    fig, axes = panels(plt, len(dirs), per=2.3)
                    lo, hi = np.inf, -np.inf
                    for ax, d in zip(axes, dirs):
                        for lab in self.labels:
                            pts = [(b, *s[:3]) for b in bits if (s := self.stat((ds, d, lab, b, metric)))]
                            if not pts:
                                continue
                            b_, m, e, n = map(np.array, zip(*pts))
                            st = self.style(lab)
                            ax.plot(b_, m, label=lab + (" †" if self.marked(ds, lab) else ""), **st)
                            if (n >= 2).all():
                                ax.fill_between(b_, m - e, m + e, color=st["color"], alpha=0.15, linewidth=0)
                                lo, hi = min(lo, np.min(m - e)), max(hi, np.max(m + e))
                            else:
                                lo, hi = min(lo, np.min(m)), max(hi, np.max(m))
                        ax.set_xscale("log", base=2)
                        ax.minorticks_off()
                        ax.set_xticks(bits, [str(b) for b in bits])
                        ax.set_title(LABELS.get(d, d))
                        ax.set_xlabel("code length (bits)")
                        ax.grid(alpha=0.3, linewidth=0.5)
                    fit_y(axes, lo, hi)
                    axes[0].set_ylabel(metric)
                    legend_below(fig, axes)
                    save(fig, f"map-{ds}")
        return written


def panels(plt, n: int, per: float = 2.3):
    """``n`` side-by-side panels: one column wide for one or two panels, the text width above."""
    width = COLUMN_WIDTH_IN if n <= 1 else min(TEXT_WIDTH_IN, max(COLUMN_WIDTH_IN, per * n))
    fig, axes = plt.subplots(1, n, figsize=(width, 2.1 if n > 1 else 2.4), squeeze=False, sharey=True)
    return fig, list(axes[0])


def fit_y(axes, lo: float, hi: float) -> None:
    """One y range for all panels, fitted to the data with a 5% margin (clipped to [0, 1.02])."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return
    pad = max(0.05 * (hi - lo), 0.01)
    axes[0].set_ylim(max(0.0, lo - pad), min(1.02, hi + pad))


def legend_below(fig, axes, xlabel: str | None = None) -> None:
    """One legend for the figure, below the panels (it never hides a curve); ``xlabel`` once for
    all panels when given."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.tight_layout(pad=0.3)
    if xlabel:
        fig.supxlabel(xlabel, y=0.0, va="top", fontsize=8)
    if handles:
        ncol = min(len(labels), max(1, int(fig.get_size_inches()[0] // 1.15)))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.07 if xlabel else 0.0), ncol=ncol,
                   frameon=False, handlelength=2.6, columnspacing=1.2)

