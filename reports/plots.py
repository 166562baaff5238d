"""The report's figures, drawn with matplotlib's Agg backend and saved as PNG (and SVG on request).

Each function draws one figure from tables the report has already computed (`reports.analysis`,
`reports.figures` prepares the per-figure frames) and returns the Figure; none recomputes a
statistic. Every figure is `WIDTH` inches wide at `DPI`, its axes at margins measured from their labels
(`_figure`), and saved without tight cropping, so its PNG has exactly the pixel size asked for and fits
the page width. `reports.drawing` hands the figures to worker processes.
Strategies keep one colour across figures (`strategy_colours`). Outputs are byte-stable for the
same input: SVG ids are salted with a constant and no creation date is written.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports run on servers and in CI without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import TICKDOWN, TICKLEFT, Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator  # noqa: E402

# Re-exported: the report's shared figure vocabulary and writing live in the matplotlib-free `reports.drawing`.
from reports import drawing  # noqa: E402
from reports.drawing import (  # noqa: E402, F401
    DPI,
    LAYER_METRICS,
    TOP,
    WIDTH,
    hparam_value,
    render,
    save_to,
    strategy_colours,
    warm_up,
    writing,
)

plt.rcParams.update({"svg.hashsalt": "lrsweep-report", "svg.fonttype": "none", "font.size": 8, "axes.titlesize": 8.5,
                     "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
                     # Titles sit right above their axes: left to place them, matplotlib measures every tick
                     # label of every axes for labels at the top, which only the CD diagram has (it resets this).
                     "axes.titley": 1.0})

_OTHER = "#b0b0b0"
#: Grid lines: a figure's, and a small panel's.
_GRID, _PANEL_GRID = {"color": "#eeeeee", "lw": 0.6}, {"color": "#eeeeee", "lw": 0.5}


def _highlighted(frame: pd.DataFrame, by: str, order: Sequence[str], colours: Mapping[str, tuple], top: int):
    """Each strategy's rows of ``frame`` sorted by ``by``, as (strategy, rows, hot, colour, line width,
    zorder): the ``top`` of ``order`` are hot (own colour, drawn last so on top, the best last of
    all), the others grey and thin; strategies without rows are skipped."""
    hot_ones = list(order[:top])
    for strategy in [s for s in order if s not in hot_ones] + hot_ones[::-1]:
        rows = frame[frame["strategy"] == strategy].sort_values(by)
        if rows.empty:
            continue
        hot = strategy in hot_ones
        yield (strategy, rows, hot, *((colours[strategy], 1.4, 3) if hot else (_OTHER, 0.7, 2)))


def _figure(height: float, nrows: int = 1, ncols: int = 1, margins: tuple[float, float, float, float] | None = None,
            gap: float = 0.0, **kw) -> tuple[plt.Figure, np.ndarray]:
    """A figure `WIDTH` x ``height`` inches; with ``margins`` (left, right, top, bottom, in inches; see `_left`)
    the axes sit at fixed margins, ``gap`` inches apart side by side, else constrained layout places them.
    Constrained layout measures every label twice and makes savefig draw the whole figure once more: over
    half the time of a simple figure."""
    if margins is None:
        return plt.subplots(nrows, ncols, figsize=(WIDTH, height), dpi=DPI, layout="constrained", squeeze=False, **kw)
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH, height), dpi=DPI, squeeze=False, **kw)
    left, right, top, bottom = margins
    width = (WIDTH - left - right - gap * (ncols - 1)) / ncols  # of one axes; wspace is a fraction of it
    fig.subplots_adjust(left=left / WIDTH, right=1 - right / WIDTH, top=1 - top / height, bottom=bottom / height,
                        wspace=gap / width)
    return fig, axes


#: Fixed margins (inches) for `_figure`: above an axes with a title; below one with numeric tick labels and
#: an x label; left of numeric tick labels and a y label; the figure's edge beside an axis without labels.
TITLE, XLABEL, YLABEL, EDGE = 0.3, 0.45, 0.6, 0.15


def _left(labels: Sequence[str], size: float, ylabel: bool = False) -> float:
    """The margin (inches) left of an axes whose y tick labels are ``labels`` at font ``size`` (points):
    the widest label as Agg draws it, the tick and its pad, and room for a y label when ``ylabel``."""
    widest = max((_text_width(str(t), size) for t in labels), default=0)
    return widest / DPI + 0.14 + (0.2 if ylabel else 0) + 0.06


def _text_width(text: str, size: float) -> float:
    """The width (pixels) of one line of plain ``text`` at font ``size`` (points) as Agg draws it: the sum of
    its characters' hinted advances, within a pixel of laying the whole string out (kerning aside), where
    laying it out takes about a millisecond a label (the search figure has a hundred)."""
    if not text.isascii():  # a character the default font may lack: laid out, with the font's fallbacks
        return _measured(text, size)
    return sum(_advance(c, size) for c in text)


@functools.lru_cache(maxsize=1024)
def _advance(char: str, size: float) -> float:
    from matplotlib.backends.backend_agg import get_hinting_flag

    return _font(size).load_char(ord(char), flags=get_hinting_flag()).horiAdvance / 64


def _font(size: float):
    from matplotlib.font_manager import FontProperties

    return _agg()._prepare_font(FontProperties(size=size))


def _measured(text: str, size: float) -> float:
    from matplotlib.font_manager import FontProperties

    return _agg().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0]


@functools.cache
def _agg():
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(10, 10, DPI)


def _panels(n: int, panel_height: float, shared_y: bool = False) -> tuple[plt.Figure, list[plt.Axes], int]:
    """A grid of ``n`` small panels, 6 to a row, with fixed margins (inches), as (figure, axes in reading
    order, columns); ``shared_y`` packs the columns closer, for panels that show one y range and label it
    on the left only. Constrained layout would measure every tick label of every panel, which took most of
    a small-multiples figure's time. No axis is shared, nor is an empty slot given an axes: matplotlib's
    shared axes make every autoscale walk all the panels, so callers set each panel's limits (the same on
    each) and hide the inner tick labels with `_outer_labels`."""
    nrows, ncols = _grid(n, 6)
    height = panel_height * nrows + 0.9
    fig = plt.figure(figsize=(WIDTH, height), dpi=DPI)
    grid = fig.add_gridspec(nrows, ncols, left=0.7 / WIDTH, right=1 - 0.12 / WIDTH, bottom=0.55 / height,
                            top=1 - 0.42 / height, wspace=0.12 if shared_y else 0.35, hspace=0.45)
    return fig, [fig.add_subplot(grid[i // ncols, i % ncols]) for i in range(n)], ncols


def _outer_labels(axes: Sequence[plt.Axes], ncols: int, x: bool = False, y: bool = False,
                  grid: Mapping | None = None) -> None:
    """Tick labels on the outer panels only, as matplotlib's shared axes would show them: y on the first
    column (with ``y``), x on the lowest panel of each column (with ``x``). Each inner panel draws the
    ticks of its row's first panel (y) or of the first panel (x), as `_same` set them, as plain lines
    (`_marks`), with grid lines styled ``grid`` where given: a matplotlib tick is three lines and two
    labels, about a millisecond apiece, and a small-multiples figure has over a hundred unlabelled ones."""
    rows = {i: _in_view(axes[i].yaxis) for i in range(0, len(axes), ncols)}
    columns = _in_view(axes[0].xaxis)
    for i, ax in enumerate(axes):
        if y and i % ncols:
            _marks(ax, "y", *rows[i - i % ncols], grid)
        if x and i + ncols < len(axes):
            _marks(ax, "x", *columns, grid)


def _in_view(axis, major: Sequence[float] | None = None, minor: Sequence[float] | None = None):
    """(major, minor) tick locations of ``axis`` inside its view: of those given, else of its own ticks."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * (hi - lo)
    return tuple([t for t in locs if lo - tol <= t <= hi + tol]
                 for locs in (axis.get_majorticklocs() if major is None else major,
                              axis.get_minorticklocs() if minor is None else minor))


def _marks(ax: plt.Axes, which: str, major: Sequence[float], minor: Sequence[float], grid: Mapping | None) -> None:
    """Ticks without labels on axis ``which`` of ``ax``, drawn as matplotlib draws its own (tick marks as
    markers on the axis, pointing out; grid lines across at the major ones, styled ``grid``) but as one
    line each instead of a tick object per location."""
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(NullLocator())
    axis.set_minor_locator(NullLocator())
    vertical = which == "x"
    for locs, kind in ((major, "major"), (minor, "minor")):
        if len(locs):
            at = (locs, [0] * len(locs)) if vertical else ([0] * len(locs), locs)
            _line(ax, *at, ls="none", marker=TICKDOWN if vertical else TICKLEFT,
                  ms=plt.rcParams[f"{which}tick.{kind}.size"], mew=plt.rcParams[f"{which}tick.{kind}.width"],
                  color=plt.rcParams[f"{which}tick.color"], clip_on=False, zorder=1.5, gid=f"ticks-{which}",
                  transform=ax.get_xaxis_transform() if vertical else ax.get_yaxis_transform())
    if grid:
        _rules(ax, major, vertical, zorder=1.5, **grid)


def _y_labels(ax: plt.Axes, at: Sequence[float], labels: Sequence[str], size: float) -> None:
    """Labelled y ticks at data ``at``, drawn and placed as matplotlib draws its own (`_marks`; each label
    right of the axis's tick label pad) but as one line and a text per label instead of a tick object each
    (a hundred in the search figure). ``size``: the labels' font size (points, or a name such as "small")."""
    at = list(at)
    _marks(ax, "y", at, [], None)
    transform, va, ha = ax.get_yaxis_text1_transform(plt.rcParams["ytick.major.pad"] + plt.rcParams["ytick.major.size"])
    for y, label in zip(at, labels, strict=True):
        ax.text(0, y, label, transform=transform, va=va, ha=ha, fontsize=size)


def _dots(ax: plt.Axes, x, y, size: float, colour, edge="black", edge_width: float = 0.3, **kw):
    """Points of one colour, size (``size``: area in points^2, as `scatter` takes it) and marker as one
    marker-only line: a scatter's PathCollection costs several times more to build and draw, for the
    same marks."""
    return ax.plot(x, y, ls="none", marker=kw.pop("marker", "o"), ms=math.sqrt(size), mfc=colour, mec=edge,
                   mew=edge_width, **kw)[0]


def _pin_ticks(axis) -> None:
    """Fix ``axis``'s major and minor ticks at those its locators put inside the view: an axis makes a tick
    (two marks, a grid line, two labels: about a millisecond) for every location its locator returns, in
    view or not (a log axis's minor locator returns a whole decade beyond each end). Left alone with fewer
    than two major ticks in view, which the number format would then be chosen from."""
    major, minor = _in_view(axis, axis.get_major_locator()(), axis.get_minor_locator()())
    if len(major) >= 2:
        axis.set_major_locator(FixedLocator(major))
        if not isinstance(axis.get_minor_locator(), NullLocator):
            axis.set_minor_locator(FixedLocator(minor))


def _same(axes: Sequence[plt.Axes], which: str, limits: tuple[float, float] | None) -> None:
    """The range ``limits`` on axis ``which`` ("x" or "y") of every panel, ticked where the first panel's
    locator ticks it (None: each panel autoscales)."""
    if limits is None:
        return
    for ax in axes:
        getattr(ax, f"set_{which}lim")(*limits)
    first = getattr(axes[0], f"{which}axis")
    _pin_ticks(first)
    if isinstance(first.get_major_locator(), FixedLocator):
        for ax in axes[1:]:
            getattr(ax, f"{which}axis").set_major_locator(FixedLocator(first.get_major_locator().locs))


def _span(values, log: bool = False) -> tuple[float, float] | None:
    """The view range matplotlib's autoscaling gives data ``values``: their range with a 5% margin each
    side (on a log axis, in log space, over the positive values); None without a finite value."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = (float(np.log10(v.min())), float(np.log10(v.max()))) if log else (float(v.min()), float(v.max()))
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):  # one value: widened by 5% of it, as matplotlib's locators do
        pad = 0.05 * abs(lo) or 0.05
        lo, hi = lo - pad, hi + pad
    lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
    return (10.0 ** lo, 10.0 ** hi) if log else (float(lo), float(hi))


def _rules(ax: plt.Axes, at: Sequence[float], vertical: bool = True, **kw) -> Line2D:
    """Lines across the axes at data ``at`` (x positions when ``vertical``, else y), as one line that leaves
    the view limits alone: `axvline` and `axhline` ask for the view limits (autoscaling the axes, and every
    axes it shares with) per line."""
    across, along = np.repeat(np.asarray(at, dtype=float), 3), np.tile([0, 1, math.nan], len(at))
    across[2::3] = math.nan
    if vertical:
        return _line(ax, across, along, transform=ax.get_xaxis_transform(), **kw)
    return _line(ax, along, across, transform=ax.get_yaxis_transform(), **kw)


def _line(ax: plt.Axes, x, y, **kw) -> Line2D:
    """A line added to ``ax`` as it is, for lines that are not data (rules, tick marks), so left out of the
    data limits: `plot` parses its arguments and asks for autoscaling, and `add_line` takes the line's
    extent (through its transform), together most of such a line's cost."""
    return ax.add_artist(Line2D(x, y, **kw))


def pixel_size(height: float) -> tuple[int, int]:
    """(width, height) in pixels of a figure of `height` inches as this module saves it."""
    return round(WIDTH * DPI), round(height * DPI)


def save(fig: plt.Figure, directory: str, stem: str) -> dict[str, str]:
    """Write a drawn `fig` under `directory`, here and now, as PNG and SVG (inside a `writing` block:
    the formats it names), and close it; returns {format: path}."""
    paths = drawing._paths(directory, stem)
    save_to(fig, paths)
    return paths


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


# ---- 1. forest plot ---------------------------------------------------------------------------

def forest(rows: pd.DataFrame, leader: str, margin: float, colours: Mapping[str, tuple], workload: str) -> plt.Figure:
    """Each strategy's paired difference from the leader (pp, strategy - leader) with its 95% paired t
    interval, the zero line and the equivalence band +-margin; sorted from the closest to the farthest.

    `rows`: the workload's comparisons with the leader (`tables.summary_and_vs_best`'s second table:
    a = leader, b, mean_diff = a - b, diff_ci_low / diff_ci_high, n, p_t_holm_all). The right axis
    prints each comparison's Holm p within all pairs, which does not depend on the leader being picked.
    """
    d = rows.assign(diff=-100 * rows["mean_diff"], lo=-100 * rows["diff_ci_high"], hi=-100 * rows["diff_ci_low"])
    d = d.sort_values(["diff", "b"], ascending=[False, True], kind="stable").reset_index(drop=True)
    names = [leader, *d["b"]]
    y = np.arange(len(names))[::-1].astype(float)  # leader on top
    p_labels = ["leader", *(_p_text(p) for p in d["p_t_holm_all"])]
    fig, axes = _figure(0.24 * len(names) + 1.1, margins=(_left(names, 7), _left(p_labels, 7, ylabel=True), TITLE,
                                                           XLABEL))
    ax = axes[0, 0]
    m = 100 * margin
    ax.axvspan(-m, m, color="#d9ead3", lw=0, zorder=0)
    _rules(ax, [0], color="black", lw=0.8, zorder=1)
    ok = np.isfinite(d["lo"]) & np.isfinite(d["hi"])
    ax.hlines(y[1:][ok], d["lo"][ok], d["hi"][ok], colors=[colours[s] for s in d["b"][ok]], lw=2,
              gid="forest-intervals")
    ax.scatter(d["diff"], y[1:], c=[colours[s] for s in d["b"]], s=22, zorder=3, edgecolors="black",
               linewidths=0.4, gid="forest-means")
    _dots(ax, [0.0], y[:1], 26, colours[leader], edge_width=0.4, marker="D", zorder=3)
    ax.set_yticks(y, names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel(f"difference from the leader {leader} (percentage points of test accuracy; strategy - leader)")
    ax.set_title(f"{workload}: paired difference from the leader, 95% paired t interval")
    right = ax.secondary_yaxis("right")
    right.set_yticks(y, p_labels)
    right.set_ylabel("Holm p, all pairs (t-test)")
    ax.legend(handles=[Patch(color="#d9ead3", label=f"equivalence margin +-{m:g} pp"),
                       Line2D([], [], color="black", lw=0.8, label="no difference")],
              loc="lower left", frameon=True)
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return fig


def _p_text(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


# ---- 2. dot and interval ----------------------------------------------------------------------

def accuracy_intervals(summary: pd.DataFrame, seed_values: pd.DataFrame, colours: Mapping[str, tuple],
                       workload: str, chance: float | None = None) -> plt.Figure:
    """Mean final test accuracy (%) per strategy with its 95% t interval and each seed as a small point.

    `summary`: the workload's rows of the report's summary (ranked; mean, ci_low, ci_high);
    `seed_values`: `tables.seed_matrix` (seed x strategy). Dots, not bars, so an axis that does not
    start at 0 exaggerates nothing: positions carry the values, not lengths.
    """
    s = summary.sort_values("rank").reset_index(drop=True)
    y = np.arange(len(s))[::-1].astype(float)
    fig, axes = _figure(0.24 * len(s) + 1.0, margins=(_left(s["strategy"], 7), EDGE, TITLE, XLABEL))
    ax = axes[0, 0]
    mean, lo, hi = (100 * s[c].to_numpy(dtype=float) for c in ("mean", "ci_low", "ci_high"))
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.hlines(y[ok], lo[ok], hi[ok], colors=[colours[n] for n in s["strategy"][ok]], lw=2, gid="accuracy-intervals")
    seeds = []
    for yi, strategy in zip(y, s["strategy"], strict=True):
        vals = 100 * seed_values[strategy].dropna().to_numpy() if strategy in seed_values else np.array([])
        jitter = np.linspace(-0.18, 0.18, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        seeds.append((vals, yi + jitter))
    _dots(ax, np.concatenate([v for v, _ in seeds]), np.concatenate([j for _, j in seeds]), 7, "black", edge="none",
          edge_width=0, alpha=0.7, zorder=4)
    ax.scatter(mean, y, c=[colours[n] for n in s["strategy"]], s=26, zorder=3, edgecolors="black",
               linewidths=0.4, gid="accuracy-means")
    _y_labels(ax, y, list(s["strategy"]), plt.rcParams["ytick.labelsize"])
    ax.set_ylim(-0.7, len(s) - 0.3)
    if chance is not None and np.isfinite(chance):
        lo_x = ax.get_xlim()[0]
        if 100 * chance >= lo_x:
            _rules(ax, [100 * chance], color="grey", ls=":", lw=0.8, label="chance (majority class)")
            ax.legend(loc="lower left")
    ax.set_xlabel("final test accuracy (%); axis starts near the lowest run, not at 0")
    ax.set_title(f"{workload}: mean, 95% t interval over seeds, dots = individual seeds")
    ax.grid(axis="x", color="#eeeeee", lw=0.6)
    return fig


# ---- 3. sensitivity ---------------------------------------------------------------------------

def sensitivity(trials: pd.DataFrame, hparam: str, bounds: Mapping[str, dict], chosen: Mapping[str, str],
                order: Sequence[str], colours: Mapping[str, tuple], workload: str, metric: str) -> plt.Figure:
    """Validation accuracy (%) of every tune trial against one searched hparam, one panel per strategy.

    `trials`: the workload's tune trials with ``hparams`` (JSON), ``trial_id``, ``strategy`` and the
    `metric` column; `bounds`: strategy -> {low, high, scale} of `hparam` (the pair's recorded search
    range; a strategy without one gets no bound lines); `chosen`: strategy -> the trial_id the seed
    stage retrained. Log x where the range is searched on a log scale.
    """
    names = [s for s in order if s in set(trials["strategy"])]
    fig, axes, ncols = _panels(len(names), 1.2, shared_y=True)
    floor = _sensitivity_floor(trials, metric, chosen)
    drawn = []
    for ax, strategy in zip(axes, names, strict=True):
        t = trials[trials["strategy"] == strategy]
        x = np.array([hparam_value(h, hparam) for h in t["hparams"]])
        v = 100 * t[metric].to_numpy(dtype=float)
        b = bounds.get(strategy)
        if b and b.get("scale") == "log":
            ax.set_xscale("log")
        low = v < floor  # collapsed or far-off trials: drawn on the bottom edge, so the good region stays readable
        _dots(ax, x[~low], v[~low], 12, colours[strategy], zorder=3)
        _dots(ax, x[low], np.full(int(low.sum()), floor), 14, colours[strategy], marker="v", zorder=3, clip_on=False)
        pick = (t["trial_id"] == chosen.get(strategy)).to_numpy()
        _dots(ax, x[pick], v[pick], 90, "gold", edge_width=0.6, marker="*", zorder=4, gid=f"chosen-{strategy}")
        drawn += [v[~low], [floor] if low.any() else []]
        if b:
            _rules(ax, (b["low"], b["high"]), color="black", ls="--", lw=0.7, gid=f"bounds-{strategy}")
            pad = (b["high"] / b["low"]) ** 0.08 if b.get("scale") == "log" else None
            if pad:
                ax.set_xlim(b["low"] / pad, b["high"] * pad)
            else:
                w = 0.08 * (b["high"] - b["low"])
                ax.set_xlim(b["low"] - w, b["high"] + w)
        ax.set_title(strategy, fontsize=7.5, pad=2)
        ax.tick_params(labelsize=6)
        ax.xaxis.set_major_locator(plt.LogLocator(numticks=3) if ax.get_xscale() == "log" else MaxNLocator(3))
        ax.xaxis.set_minor_locator(NullLocator())  # minor log ticks: clutter in a small panel, half its drawing
        _pin_ticks(ax.xaxis)
    # One y range on every panel: from the floor to the highest point plus matplotlib's 5% margin.
    ys = np.concatenate(drawn) if drawn else np.array([])
    ys = ys[np.isfinite(ys)]
    top = float(ys.max() + 0.05 * (ys.max() - ys.min())) if ys.size and ys.max() > ys.min() else floor + 1.0
    _same(axes, "y", (floor, top))
    _outer_labels(axes, ncols, y=True)
    for ax in axes[::ncols]:
        ax.set_ylabel("val. accuracy (%)")
    fig.supxlabel(f"{hparam} (dashed: search bounds; star: the retrained configuration; "
                  f"triangles: trials below {floor:.0f}%, drawn on the bottom edge)",
                  fontsize=8, y=0.02)
    fig.suptitle(f"{workload}: validation accuracy ({metric}) of each tune trial against {hparam}", fontsize=8.5)
    return fig


def _sensitivity_floor(trials: pd.DataFrame, metric: str, chosen: Mapping[str, str]) -> float:
    """The y floor of the sensitivity panels (%): 10 pp below the worst retrained trial, so every chosen
    point and its neighbourhood show while collapsed trials (at chance) do not squeeze the axis."""
    picked = trials[trials["trial_id"].isin(list(chosen.values()))][metric].to_numpy(dtype=float)
    values = trials[metric].to_numpy(dtype=float)
    base = picked[np.isfinite(picked)] if np.isfinite(picked).any() else values[np.isfinite(values)]
    return float(max(0.0, 100 * base.min() - 10)) if base.size else 0.0


def search_positions(points: pd.DataFrame, workload: str) -> plt.Figure:
    """Where every tune trial's value of every searched hparam lies in its search range (0 = lower
    bound, 1 = upper bound, on the range's own scale), coloured by validation accuracy; the retrained
    configuration is starred.

    `points`: one row per (strategy, hparam, trial): strategy, hparam, position, val (fraction),
    chosen (bool); rows in display order.
    """
    labels = list(dict.fromkeys(zip(points["strategy"], points["hparam"], strict=True)))
    names = [f"{s}: {h}" for s, h in labels]
    # Right: the colour bar, its ticks and its label.
    fig, axes = _figure(0.13 * len(labels) + 1.1, margins=(_left(names, 5.5), 0.45, TITLE, XLABEL))
    ax = axes[0, 0]
    row = {k: len(labels) - 1 - i for i, k in enumerate(labels)}
    y = np.array([row[k] for k in zip(points["strategy"], points["hparam"], strict=True)], dtype=float)
    val = 100 * points["val"].to_numpy(dtype=float)
    finite = val[np.isfinite(val)]
    vmin, vmax = (np.percentile(finite, 10), finite.max()) if finite.size else (0, 100)
    ax.set_xlim(-0.04, 1.04)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    sc = ax.scatter(points["position"], y, c=val, cmap="viridis", vmin=vmin, vmax=vmax, s=14, linewidths=0)
    pick = points["chosen"].to_numpy(dtype=bool)
    _dots(ax, points["position"][pick], y[pick], 70, "none", edge="red", edge_width=0.8, marker="*",
          gid="positions-chosen")
    _rules(ax, (0, 1), color="black", lw=0.7)
    _y_labels(ax, list(row.values()), names, 5.5)
    strategies = list(dict.fromkeys(points["strategy"]))
    # A thin rule between strategies.
    _rules(ax, [max(r for (st, _), r in row.items() if st == s) + 0.5 for s in strategies[1:]], vertical=False,
           color="#dddddd", lw=0.5)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["lower bound", "", "middle", "", "upper bound"])
    ax.set_xlabel("position in the search range, on the range's own scale (log ranges: in log space)")
    fig.colorbar(sc, ax=ax, label="validation accuracy (%)", shrink=0.5, aspect=30)
    ax.set_title(f"{workload}: where the tune trials and the retrained configuration (red star) lie in each range")
    return fig


# ---- 4. learning curves -----------------------------------------------------------------------

def learning_curves(stats: pd.DataFrame, order: Sequence[str], colours: Mapping[str, tuple], workload: str,
                    top: int = TOP) -> plt.Figure:
    """Test accuracy (%) and training loss per epoch of the seed runs: the `top` best strategies in
    colour with a mean +- SD band over seeds, the others as thin grey mean lines.

    `stats`: one workload's rows of `reports.figures.epoch_stats` (strategy, epoch, acc_mean, acc_sd,
    loss_mean, loss_sd); `order`: strategies ranked best first. The accuracy axis is cut below the
    lowest mean of the last half of training, so the region where strategies differ fills the panel.
    """
    fig, axes = _figure(3.3, 1, 2, margins=(YLABEL, EDGE, TITLE, XLABEL), gap=YLABEL + 0.1)
    acc_ax, loss_ax = axes[0]
    for strategy, g, hot, col, lw, z in _highlighted(stats, "epoch", order, colours, top):
        for ax, mean, sd, k in ((acc_ax, "acc_mean", "acc_sd", 100), (loss_ax, "loss_mean", "loss_sd", 1)):
            ax.plot(g["epoch"], k * g[mean], color=col, lw=lw, zorder=z,
                    label=strategy if hot and ax is acc_ax else None)
            if hot:
                ax.fill_between(g["epoch"], k * (g[mean] - g[sd].fillna(0)), k * (g[mean] + g[sd].fillna(0)),
                                color=col, alpha=0.18, lw=0)
    late = stats[stats["epoch"] >= stats["epoch"].max() / 2]
    if not late.empty:
        low = 100 * late["acc_mean"].min()
        high = 100 * (late["acc_mean"] + late["acc_sd"].fillna(0)).max()
        span = max(high - low, 1.0)
        acc_ax.set_ylim(max(0.0, low - 0.1 * span), min(100.0, high + 0.1 * span))
    losses = stats["loss_mean"].to_numpy(dtype=float)
    if np.all(losses[np.isfinite(losses)] > 0):
        loss_ax.set_yscale("log")
    for ax in (acc_ax, loss_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(**_GRID)
        for axis in (ax.xaxis, ax.yaxis):
            _pin_ticks(axis)
    acc_ax.set_ylabel("test accuracy (%)")
    loss_ax.set_ylabel("training loss (mean over the epoch)")
    handles = acc_ax.get_legend_handles_labels()[0]
    handles.append(Line2D([], [], color=_OTHER, lw=0.7, label="other strategies (mean only)"))
    acc_ax.legend(handles=handles, loc="lower right")
    fig.suptitle(f"{workload}: seed-run curves, mean over seeds, band = +-1 SD over seeds (top {top} in colour)",
                 fontsize=8.5)
    return fig


# ---- 5. learning rate used, DALS state --------------------------------------------------------

def lr_used(lrs: pd.DataFrame, order: Sequence[str], colours: Mapping[str, tuple], workload: str) -> plt.Figure:
    """The learning rate each strategy used per epoch (top layer group, end of epoch; log y, shared),
    one panel per strategy. `lrs`: strategy, epoch, lr (median over the seed runs)."""
    names = [s for s in order if s in set(lrs["strategy"])]
    fig, axes, ncols = _panels(len(names), 1.05, shared_y=True)
    positive = lrs["lr"].to_numpy(dtype=float)
    log = bool(np.all(positive[np.isfinite(positive)] > 0))
    finite = positive[np.isfinite(positive)]
    decades = float(np.log10(finite.max() / finite.min())) if log and finite.size else 0.0
    for ax, strategy in zip(axes, names, strict=True):
        g = lrs[lrs["strategy"] == strategy].sort_values("epoch")
        ax.plot(g["epoch"], g["lr"], color=colours[strategy], lw=1.3, marker="o", ms=1.8)
        if log:
            ax.set_yscale("log")
            if decades >= 2:  # majors at every decade: the minor ticks are clutter and a third of the drawing
                ax.yaxis.set_minor_locator(NullLocator())
        ax.set_title(strategy, fontsize=7.5, pad=2)
        ax.tick_params(labelsize=6)
        ax.grid(**_PANEL_GRID)
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    _same(axes, "x", _span(lrs["epoch"]))
    _same(axes, "y", _span(finite, log))
    _outer_labels(axes, ncols, x=True, y=True, grid=_PANEL_GRID)
    fig.supxlabel("epoch", fontsize=8, y=0.02)
    fig.supylabel("learning rate (top layer group)", fontsize=8, x=0.01)
    fig.suptitle(f"{workload}: learning rate used at the end of each epoch (median over seed runs)", fontsize=8.5)
    return fig


def dals_state(states: pd.DataFrame, colours: Mapping[str, tuple], workload: str) -> plt.Figure:
    """DALS's phase (0, 1, 2) and mean trust ratio per epoch, one line per DALS-family strategy.
    `states`: strategy, epoch, phase, trust_ratio (median over the seed runs)."""
    fig, axes = _figure(2.6, 1, 2, margins=(YLABEL, EDGE, TITLE, XLABEL), gap=YLABEL + 0.1)
    phase_ax, trust_ax = axes[0]
    for strategy, g in states.groupby("strategy", sort=True):
        g = g.sort_values("epoch")
        phase_ax.step(g["epoch"], g["phase"], where="post", color=colours[strategy], lw=1.3, label=strategy)
        trust_ax.plot(g["epoch"], g["trust_ratio"], color=colours[strategy], lw=1.3, marker="o", ms=2)
    phase_ax.set_yticks([0, 1, 2])
    phase_ax.set_ylim(-0.2, 2.2)
    phase_ax.set_ylabel("DALS phase (end of epoch)")
    trust_ax.set_ylabel("mean trust ratio (end of epoch)")
    for ax in (phase_ax, trust_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(**_GRID)
    phase_ax.legend(loc="lower right")
    fig.suptitle(f"{workload}: DALS state per epoch (median over seed runs)", fontsize=8.5)
    return fig


def layer_views(layers: pd.DataFrame, ranked: list[str], colours: Mapping[str, tuple], workload: str) -> plt.Figure:
    """Small multiples by layer group (columns, bottom to top) of the per-layer diagnostics (rows: the
    update-to-weight ratio, the gradient norm, the trust ratio where any strategy has one), one line
    per strategy among the ``TOP`` ranked. `layers`: strategy, epoch, group and the metrics (median
    over the seed runs)."""
    shown = [s for s in ranked if s in set(layers["strategy"])][:TOP]
    rows = [(c, label) for c, label in LAYER_METRICS if layers[c].notna().any()]
    groups = sorted(layers["group"].unique())
    height = 1.5 * len(rows) + 1.1
    fig = plt.figure(figsize=(WIDTH, height), dpi=DPI)
    grid = fig.add_gridspec(len(rows), len(groups), left=0.8 / WIDTH, right=1 - 0.12 / WIDTH, bottom=0.5 / height,
                            top=1 - 0.75 / height, wspace=0.12, hspace=0.25)
    # Unshared axes with one x range and one y range per row set on each (see `_panels`).
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(len(groups))] for r in range(len(rows))])
    drawn = layers[layers["strategy"].isin(shown)]
    for r, (column, label) in enumerate(rows):
        for c, group in enumerate(groups):
            ax = axes[r, c]
            for strategy in shown:
                g = layers[(layers["strategy"] == strategy) & (layers["group"] == group)].sort_values("epoch")
                values = g[column].where(g[column] > 0)
                if values.notna().any():
                    ax.plot(g["epoch"], values, color=colours[strategy], lw=1.2,
                            label=strategy if r == 0 and c == 0 else None)
            if layers[column].gt(0).any():
                ax.set_yscale("log")
                # Unlabelled minor log ticks: marks no reader reads, and a third of the figure's drawing.
                ax.yaxis.set_minor_locator(NullLocator())
            ax.grid(**_GRID)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
            if r == 0:
                ax.set_title(f"group {group}" + (" (bottom)" if group == groups[0] else
                                                 " (top)" if group == groups[-1] else ""), fontsize=7.5)
            if c == 0:
                ax.set_ylabel(label, fontsize=7.5)
            if r == len(rows) - 1:
                ax.set_xlabel("epoch")
        _same(axes[r], "y", _span(drawn[column].where(drawn[column] > 0), log=layers[column].gt(0).any()))
    _same(axes.ravel(), "x", _span(drawn["epoch"]))
    _outer_labels(axes.ravel(), len(groups), x=True, y=True, grid=_GRID)
    fig.suptitle(f"{workload}: per layer group at each epoch's last step (median over seed runs)", fontsize=8.5,
                 x=0.02, y=1 - 0.06 / height, ha="left", va="top")
    fig.legend(loc="upper left", bbox_to_anchor=(0.8 / WIDTH, 1 - 0.3 / height), fontsize=6.5,
               ncols=min(len(shown), 5), frameon=False)
    return fig


# ---- 6. all pairs -----------------------------------------------------------------------------

def pair_matrix(matrix: pd.DataFrame, pvalues: pd.DataFrame, workload: str) -> plt.Figure:
    """Mean paired difference row - column (pp) for every pair of strategies (upper triangle; rows in
    rank order, so mostly positive), with Holm-corrected significance stars (all pairs of the
    workload). `matrix` and `pvalues`: square frames indexed and columned by strategy in display
    order (NaN on the diagonal)."""
    names = list(matrix.index)
    k = len(names)
    side = min(WIDTH, 0.34 * k + 2.2)
    size = 6.5 if k > 12 else 7  # tick labels
    names_in = _left(names, size) - 0.2  # the widest name; rotated 60 degrees below the matrix
    fig, axes = _figure(side, margins=(_left(names[:-1], size), 1.0, TITLE, 0.87 * names_in + 0.25))
    ax = axes[0, 0]
    values = 100 * matrix.to_numpy(dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    lim = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    p = pvalues.to_numpy(dtype=float)
    cell = 5.5 if k > 12 else 7
    values[np.tril_indices(k)] = np.nan  # the matrix is antisymmetric: the upper triangle says it all
    im = ax.imshow(values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    for i in range(k):
        for j in range(i + 1, k):
            if not np.isfinite(values[i, j]):
                continue
            stars = _stars(p[i, j])
            dark = abs(values[i, j]) > 0.6 * lim
            ax.text(j, i, f"{values[i, j]:.1f}{stars}", ha="center", va="center", fontsize=cell,
                    color="white" if dark else "black", fontweight="bold" if stars else "normal",
                    in_layout=False)  # inside the cells: measuring 300 texts for the layout is wasted time
    ax.set_xticks(range(1, k), names[1:], rotation=60, ha="right", rotation_mode="anchor")
    _y_labels(ax, range(k - 1), names[:-1], size)
    ax.set_xlim(0.5, k - 0.5)
    ax.set_ylim(k - 1.5, -0.5)
    ax.tick_params(labelsize=size)
    fig.colorbar(im, ax=ax, label="row - column, mean paired difference (pp)", shrink=0.6)
    ax.set_title(f"{workload}: all pairs; * Holm p < 0.05, ** < 0.01, *** < 0.001 (paired t, all pairs)")
    return fig


def _stars(p: float) -> str:
    if not np.isfinite(p) or p >= 0.05:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*"


# ---- 7. accuracy against compute --------------------------------------------------------------

def accuracy_vs_compute(cost: pd.DataFrame, colours: Mapping[str, tuple], workload: str, unit: str) -> plt.Figure:
    """Mean final test accuracy (%) with its 95% t interval against the compute per seed run (mean +- SD
    over seeds). `cost`: strategy, mean, ci_low, ci_high, cost_mean, cost_sd; `unit`: the x axis label."""
    fig, axes = _figure(4.2, margins=(YLABEL, EDGE, TITLE, XLABEL))
    ax = axes[0, 0]
    x = cost["cost_mean"].to_numpy(dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    log = bool(x.size) and x.max() / x.min() > 8
    if log:
        ax.set_xscale("log")
    scale = (np.log if log else np.asarray)
    lo, hi = (float(scale(x.min())), float(scale(x.max()))) if x.size else (0.0, 0.0)
    for r in cost.itertuples():
        yerr = None
        if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
            yerr = [[100 * (r.mean - r.ci_low)], [100 * (r.ci_high - r.mean)]]
        xerr = [[r.cost_sd], [r.cost_sd]] if np.isfinite(r.cost_sd) else None
        ax.errorbar([r.cost_mean], [100 * r.mean], yerr=yerr, xerr=xerr, fmt="o", ms=4.5, color=colours[r.strategy],
                    mec="black", mew=0.4, elinewidth=1.1, capsize=0)
        # A name in the right quarter of the axis is written to the left of its point: at the right it is cut.
        right = hi > lo and r.cost_mean > 0 and (float(scale(r.cost_mean)) - lo) / (hi - lo) > 0.75
        ax.annotate(r.strategy, (r.cost_mean, 100 * r.mean), xytext=(-4 if right else 4, 3),
                    textcoords="offset points", fontsize=6, ha="right" if right else "left", in_layout=False)
    ax.set_xlabel(unit)
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(**_GRID)
    ax.set_title(f"{workload}: accuracy against compute; y: 95% t interval over seeds, x: +-1 SD over seeds")
    return fig


# ---- 8. budget curves -------------------------------------------------------------------------

def budget_curves(curves: pd.DataFrame, order: Sequence[str], colours: Mapping[str, tuple], workload: str,
                  top: int = TOP) -> plt.Figure:
    """Best-so-far validation accuracy (%) against tuning trials (solid) and the expected best of k
    random trials (dashed), the `top` strategies in colour, the others grey. `curves`: one workload's
    rows of `tables.budget_curves`; `order`: strategies ranked best first."""
    fig, axes = _figure(3.4, margins=(YLABEL, EDGE, TITLE, XLABEL))
    ax = axes[0, 0]
    for strategy, g, hot, col, lw, z in _highlighted(curves, "trials", order, colours, top):
        ax.step(g["trials"], 100 * g["best_so_far"], where="post", color=col, lw=lw, zorder=z,
                label=strategy if hot else None)
        if hot:
            ax.plot(g["trials"], 100 * g["expected_max"], color=col, ls="--", lw=1.0, zorder=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    late = curves[curves["trials"] >= 1]["best_so_far"].to_numpy(dtype=float)
    late = late[np.isfinite(late)]
    if late.size:
        top_val = 100 * late.max()
        low = 100 * np.percentile(late, 10)
        span = max(top_val - low, 1.0)
        ax.set_ylim(low - 0.15 * span, top_val + 0.1 * span)
    ax.set_xlabel("tuning trials used (in trial order)")
    ax.set_ylabel("validation accuracy (%)")
    handles = ax.get_legend_handles_labels()[0]
    handles += [Line2D([], [], color="black", lw=1.2, label="solid: best so far"),
                Line2D([], [], color="black", lw=1.0, ls="--", label="dashed: expected best of k random trials"),
                Line2D([], [], color=_OTHER, lw=0.7, label="other strategies (best so far)")]
    ax.legend(handles=handles, loc="lower right", ncols=2)
    ax.grid(**_GRID)
    ax.set_title(f"{workload}: tuning budget (top {top} strategies by seed-stage mean in colour)")
    return fig


def tuning_curves(curves: pd.DataFrame, summary: pd.DataFrame, order: Sequence[str], colours: Mapping[str, tuple],
                  workload: str, confidence: float) -> plt.Figure:
    """One panel per strategy (ranked, 6 to a row, shared axes): the expected best validation accuracy
    (%) of n independent tuning draws with its simultaneous band, a dashed line at the budget's draws
    per study, the title in red with an up arrow where `reports.tuning_curves.rising` says so (a word would
    run into the next panel's title).

    `curves`, `summary`: one workload's rows of `reports.tuning_curves.tuning_curves`.
    """
    names = [s for s in order if s in set(curves["strategy"])]
    fig, axes, ncols = _panels(len(names), 1.15, shared_y=True)
    e = 100 * curves["expected"].to_numpy(dtype=float)
    span = max(float(e.max() - e.min()), 2.0)
    # The axis follows the estimates, not the bands: a band from a few draws spans most of [0, 100].
    low, high = float(e.min()) - 0.6 * span, min(100.0, float(e.max()) + 0.4 * span)
    info = summary.set_index("strategy")
    for ax, strategy in zip(axes, names, strict=True):
        c = curves[curves["strategy"] == strategy].sort_values("n")
        col = colours[strategy]
        ax.fill_between(c["n"], 100 * c["low"], 100 * c["high"], color=col, alpha=0.25, lw=0, step=None,
                        gid=f"band-{strategy}")
        ax.plot(c["n"], 100 * c["expected"], color=col, lw=1.4, marker="." if len(c) <= 12 else None, ms=3,
                gid=f"curve-{strategy}")
        budget = info.at[strategy, "budget_draws"] if strategy in info.index else math.nan
        if np.isfinite(budget) and budget <= c["n"].max():
            _rules(ax, [budget], color="black", ls="--", lw=0.7)
        up = bool(info.at[strategy, "rising"]) if strategy in info.index else False
        ax.set_title(strategy + (" \u2191" if up else ""), fontsize=7.5, pad=2, color="#c00000" if up else "black")
        ax.tick_params(labelsize=6)
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.grid(**_PANEL_GRID)
    _same(axes, "x", _span(curves["n"]))
    _same(axes, "y", (low, high))
    _outer_labels(axes, ncols, x=True, y=True, grid=_PANEL_GRID)
    for ax in axes[::ncols]:
        ax.set_ylabel("E[best val.] (%)")
    fig.supxlabel("independent tuning draws n (dashed: the budget's draws per study)", fontsize=8, y=0.02)
    fig.suptitle(f"{workload}: expected best validation accuracy of n draws, {confidence:.0%} simultaneous band",
                 fontsize=8.5)
    return fig


# ---- across workloads -------------------------------------------------------------------------

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

    with plt.rc_context({"axes.titley": None}):  # the rank axis is on top: the title goes above its labels
        fig, axes = _figure(0.3 * len(ranks) + 1.5)
        ax = axes[0, 0]
        avg = pd.Series(ranks["avg_rank"].to_numpy(), index=ranks["strategy"])
        find = _plotting._find_maximal_cliques
        _plotting._find_maximal_cliques = _ordered_cliques(find)
        try:
            _plotting.critical_difference_diagram(avg, nemenyi, ax=ax, label_fmt_left="{label} ({rank:.2f})",
                                                  label_fmt_right="({rank:.2f}) {label}")
        finally:
            _plotting._find_maximal_cliques = find
        ax.set_title(f"average rank over {n_workloads} workloads (1 = best); Nemenyi CD = {cd:.2f}")
    return fig


def performance_profiles(profiles: pd.DataFrame, colours: Mapping[str, tuple]) -> plt.Figure:
    """Fraction of runs above each normalised-score threshold (mean over workloads), stratified-bootstrap bands."""
    fig, axes = _figure(4.0)
    ax = axes[0, 0]
    interesting = profiles[(profiles["fraction"] > 0) & (profiles["fraction"] < 1)]["tau"]
    for strategy, g in profiles.groupby("strategy", sort=True):
        color = colours.get(strategy, _OTHER)
        ax.plot(g["tau"], g["fraction"], color=color, label=strategy, lw=1.2)
        ax.fill_between(g["tau"], g["ci_low"], g["ci_high"], color=color, alpha=0.15, lw=0)
    if not interesting.empty:
        ax.set_xlim(interesting.min() - 0.02, interesting.max() + 0.02)
    ax.set_xlabel("normalised score threshold tau (0 = chance, 1 = workload's best mean)")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title("performance profiles (mean over workloads; 95% stratified bootstrap band)")
    ax.legend(ncols=3, fontsize=6)
    return fig
