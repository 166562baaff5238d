"""The report's figures, drawn with matplotlib's Agg backend and saved as PNG and SVG.

Each function draws one figure from the DataFrames of `reports.tables` and returns the Figure;
`save` writes it as `<stem>.png` and `<stem>.svg`. Outputs are byte-stable for the same input:
SVG ids are salted with a constant and no creation date is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")  # headless: reports run on servers and in CI without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.tables import GENERATIONS  # noqa: E402

plt.rcParams["svg.hashsalt"] = "lrsweep-report"
_COLORS = dict(zip(GENERATIONS, plt.get_cmap("tab10").colors, strict=False))


def _strategy_colors(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, tuple]]:
    """(strategy, its rows, its colour) in name order: the line plots' one colour cycle (tab20)."""
    cmap = plt.get_cmap("tab20")
    for i, (strategy, g) in enumerate(frame.groupby("strategy", sort=True)):
        yield strategy, g, cmap(i % 20)


def save(fig: plt.Figure, directory: str, stem: str) -> dict[str, str]:
    """Write `fig` as PNG and SVG under `directory`; returns {"png": path, "svg": path}."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = os.path.join(directory, f"{stem}.{ext}")
        fig.savefig(path, format=ext, metadata=meta, dpi=110, bbox_inches="tight")
        paths[ext] = path
    plt.close(fig)
    return paths


def workload_bars(summary: pd.DataFrame, seed_values: pd.DataFrame, workload: str) -> plt.Figure:
    """Mean final test accuracy (%) per strategy with its 95% t interval and the individual seeds.

    `summary`: rows of `tables.summary_and_vs_best` for one workload (ranked); `seed_values`:
    `tables.seed_matrix` of that workload.
    """
    s = summary.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(s) + 2), 3.8))
    x = np.arange(len(s))
    mean = 100 * s["mean"].to_numpy()
    lo = np.nan_to_num(mean - 100 * s["ci_low"].to_numpy())
    hi = np.nan_to_num(100 * s["ci_high"].to_numpy() - mean)
    colors = [_COLORS.get(g, "grey") for g in s["generation"]]
    ax.bar(x, mean, color=colors, alpha=0.75, yerr=[lo, hi], capsize=3, ecolor="black")
    for i, strategy in enumerate(s["strategy"]):
        vals = 100 * seed_values[strategy].dropna().to_numpy() if strategy in seed_values else []
        ax.scatter(np.full(len(vals), i), vals, s=8, color="black", zorder=3)
    finite = np.concatenate([mean, 100 * seed_values.to_numpy().ravel()])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        ax.set_ylim(max(0.0, finite.min() - 5), min(100.0, finite.max() + 2))
    ax.set_xticks(x, s["strategy"], rotation=45, ha="right")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"{workload}: mean, 95% t interval, dots = seeds", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLORS[g], alpha=0.75) for g in GENERATIONS
               if g in set(s["generation"])]
    ax.legend(handles, [f"gen {g}" for g in GENERATIONS if g in set(s["generation"])], fontsize=7, ncols=3)
    return fig


def learning_curves(curves: pd.DataFrame, workload: str) -> plt.Figure:
    """Test accuracy (%) against epoch per strategy: mean over seeds, band from the min to the max seed."""
    c = curves[curves["workload"] == workload]
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for strategy, g, color in _strategy_colors(c):
        ax.plot(g["epoch"], 100 * g["mean"], color=color, label=strategy, lw=1.3)
        ax.fill_between(g["epoch"], 100 * g["low"], 100 * g["high"], color=color, alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{workload}: seed-stage learning curves (band = min..max over seeds)")
    ax.legend(fontsize=7, ncols=2)
    return fig


def _ordered_cliques(find):
    """``find`` (scikit-posthocs' clique search) with each clique a sorted list and the cliques sorted.

    The library returns sets of strategy names and draws each bar by iterating one, so the figure's
    bytes, and the stacking of bars that start at the same rank, followed Python's per-process string
    hash: the same Parquet gave a different report.html in another process.
    """
    def ordered(adj_matrix):
        return sorted((sorted(c) for c in find(adj_matrix)), key=lambda c: (len(c), c))

    return ordered


def cd_diagram(ranks: pd.DataFrame, nemenyi: pd.DataFrame, cd: float, n_workloads: int) -> plt.Figure:
    """Critical-difference diagram of average ranks (scikit-posthocs), bars joining Nemenyi-tied strategies."""
    from scikit_posthocs import _plotting

    fig, ax = plt.subplots(figsize=(7.0, 0.35 * len(ranks) + 1.5))
    avg = pd.Series(ranks["avg_rank"].to_numpy(), index=ranks["strategy"])
    find = _plotting._find_maximal_cliques
    _plotting._find_maximal_cliques = _ordered_cliques(find)
    try:
        _plotting.critical_difference_diagram(avg, nemenyi, ax=ax, label_fmt_left="{label} ({rank:.2f})",
                                              label_fmt_right="({rank:.2f}) {label}")
    finally:
        _plotting._find_maximal_cliques = find
    ax.set_title(f"average rank over {n_workloads} workloads (1 = best); Nemenyi CD = {cd:.2f}", fontsize=9)
    return fig


def budget_curves(curves: pd.DataFrame, workload: str) -> plt.Figure:
    """Best-so-far validation accuracy (%) against tuning trials, and the expected max of k random trials."""
    c = curves[curves["workload"] == workload]
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for strategy, g, color in _strategy_colors(c):
        ax.step(g["trials"], 100 * g["best_so_far"], where="post", color=color, label=strategy, lw=1.3)
        ax.plot(g["trials"], 100 * g["expected_max"], color=color, ls="--", lw=0.9)
    ax.set_xlabel("tuning trials used")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{workload}: best so far (solid) and expected max of k trials (dashed)", fontsize=9)
    ax.legend(fontsize=7, ncols=2)
    return fig


def performance_profiles(profiles: pd.DataFrame) -> plt.Figure:
    """Fraction of runs above each normalised-score threshold (mean over workloads), stratified-bootstrap bands."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    interesting = profiles[(profiles["fraction"] > 0) & (profiles["fraction"] < 1)]["tau"]
    for strategy, g, color in _strategy_colors(profiles):
        ax.plot(g["tau"], g["fraction"], color=color, label=strategy, lw=1.3)
        ax.fill_between(g["tau"], g["ci_low"], g["ci_high"], color=color, alpha=0.2, lw=0)
    if not interesting.empty:
        ax.set_xlim(interesting.min() - 0.02, interesting.max() + 0.02)
    ax.set_xlabel("normalised score threshold tau (0 = chance, 1 = workload's best mean)")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title("performance profiles (mean over workloads; 95% stratified bootstrap band)", fontsize=9)
    ax.legend(fontsize=7, ncols=2)
    return fig
