"""The variance-split figure: stacked bars of tuning, seeds and test rows per strategy (`reports.variance_report`).

Drawn by `reports.drawing.render` like every report figure (a module-level function, named by its dotted
path, so a worker process can draw it), from the table `reports.variance_report.variance_table` computed;
nothing is recomputed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.plots import EDGE, TITLE, XLABEL, _figure, _left, _y_labels, plt

#: One colour per source, the same in every workload's figure.
SOURCE_COLOURS = {"tuning": "#d95f02", "seeds": "#1b9e77", "rows": "#7570b3"}
LABELS = {"tuning": "tuning (between studies)", "seeds": "seeds (within a study)", "rows": "test rows"}


def variance_bars(table: pd.DataFrame, workload: str) -> plt.Figure:
    """Horizontal stacked bars, one per strategy (largest total on top): each component's variance of one
    run's score (pp^2), a component not estimated counting 0; each segment labelled with its share."""
    t = table.copy()
    parts = {k: np.nan_to_num(t[f"{k}_var"].to_numpy(float), nan=0.0).clip(min=0) for k in SOURCE_COLOURS}
    total = sum(parts.values())
    order = np.argsort(total, kind="stable")
    height = 1.2 + 0.28 * len(t)
    fig, axes = _figure(height, margins=(_left(t["strategy"], 7), EDGE, TITLE, XLABEL + 0.25))  # legend below
    ax = axes[0, 0]
    y = np.arange(len(t))
    left = np.zeros(len(t))
    for key, colour in SOURCE_COLOURS.items():
        width = parts[key][order]
        ax.barh(y, width, left=left, color=colour, label=LABELS[key], height=0.7)
        for yi, (lo, w, tot) in enumerate(zip(left, width, total[order], strict=True)):
            if tot > 0 and w / tot >= 0.12:
                ax.text(lo + w / 2, yi, f"{100 * w / tot:.0f}%", ha="center", va="center", fontsize=6, color="white")
        left += width
    _y_labels(ax, y, list(t["strategy"].to_numpy()[order]), plt.rcParams["ytick.labelsize"])
    ax.set_xlabel("variance of one run's score (pp^2)")
    ax.set_title(f"{workload}: where the variance of a strategy's score comes from")
    fig.legend(loc="lower center", ncol=3, frameon=False, borderaxespad=0.2)
    ax.set_axisbelow(True)
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return fig
