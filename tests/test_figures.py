"""The report's figures on fixture results: exact pixel sizes, and the plotted data checked by hand."""

import json
import math
import os
import struct

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from results_fixture import SEARCH_SPACE, write_fixture

from reports import checks, figures, plots, tables
from reports.analysis import analyse
from reports.load import load_results

W = "synthetic"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One workload, 4 strategies (one DALS), 3 seeds, 6 tune trials each."""
    d = str(tmp_path_factory.mktemp("sweep"))
    write_fixture(d, workloads=(W,), seeds=(0, 1, 2), diverge=None)
    return analyse(load_results([d]), margin=0.005, seed=0, thresholds=(0.6,))


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])




def test_every_figure_has_the_pixel_size_asked_for(data, tmp_path):
    sec = figures.figure_section(data, str(tmp_path))
    names = {"forest", "accuracy", "pairs", "curves", "lr", "dals", "sensitivity_lr", "search", "compute", "budget",
             "tuning_curves"}
    assert set(sec.figures) == {f"{n}_{W}" for n in names}
    for name, saved in sec.figures.items():
        width, height = _png_size(saved["png"])
        assert width == round(plots.WIDTH * plots.DPI) == 900, name
        assert height > 200, name
        assert os.path.getsize(saved["svg"]) > 1000
    # Every figure has a caption (the Figure block's alt text) saying what the interval is, or that there is none.
    captions = [b.alt for b in sec.blocks if hasattr(b, "alt")]
    assert len(captions) == len(names)
    assert all("interval" in c.lower() for c in captions)


def test_pixel_size_follows_the_figure_height(data, tmp_path):
    s = data.summary[data.summary["workload"] == W]
    fig = plots.accuracy_intervals(s, tables.seed_matrix(data.res, W), plots.strategy_colours(list(s["strategy"])), W)
    inches = fig.get_size_inches()[1]
    saved = plots.save(fig, str(tmp_path), "acc")
    assert _png_size(saved["png"]) == plots.pixel_size(inches)


def _segments(fig, gid):
    for ax in fig.axes:
        for c in [*ax.collections, *ax.lines]:
            if c.get_gid() == gid:
                return c
    raise AssertionError(f"no artist {gid}")


def _points(fig, gid):
    """The data points of the artist ``gid``: a scatter's offsets, or a marker line's (x, y)."""
    artist = _segments(fig, gid)
    return artist.get_offsets() if hasattr(artist, "get_offsets") else artist.get_xydata()


def test_forest_intervals_are_the_paired_t_intervals_sorted(data):
    s = data.summary[data.summary["workload"] == W].sort_values("rank")
    leader = s["strategy"].iloc[0]
    vs = data.vs_best[data.vs_best["workload"] == W]
    order = figures.strategy_order(data.summary)
    fig = plots.forest(vs, leader, data.margin, plots.strategy_colours(order), W)
    m = tables.seed_matrix(data.res, W)
    expected = {}
    for other in s["strategy"].iloc[1:]:
        d = 100 * (m[other] - m[leader]).to_numpy()  # strategy - leader, pp
        lo, hi = scipy.stats.t.interval(0.95, df=len(d) - 1, loc=d.mean(), scale=scipy.stats.sem(d))
        expected[other] = (d.mean(), lo, hi)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ys = fig.axes[0].get_yticks()
    by_y = dict(zip(ys, labels, strict=True))
    assert labels[0] == leader
    # Sorted from the closest to the leader to the farthest.
    assert labels[1:] == sorted(expected, key=lambda k: -expected[k][0])
    for seg in _segments(fig, "forest-intervals").get_segments():
        (x0, y0), (x1, _) = seg
        name = by_y[y0]
        assert (x0, x1) == pytest.approx(expected[name][1:], abs=1e-9)
    means = _points(fig, "forest-means")
    for x, y in means:
        assert x == pytest.approx(expected[by_y[y]][0])
    plots.plt.close(fig)


def test_sensitivity_stars_the_retrained_trial_inside_the_recorded_bounds(data):
    res = data.res
    ranges = checks.search_bounds(res)
    assert ranges[(W, "dals")] == json.loads(SEARCH_SPACE)
    chosen = figures.chosen_trials(res, data.summary, ranges)
    tune = res.tune_runs()
    seeds = res.seed_runs()
    order = figures.strategy_order(data.summary)
    bounds = {s: ranges[(W, s)]["lr"] for s in order}
    fig = plots.sensitivity(tune, "lr", bounds, {s: chosen[(W, s)] for s in order}, order,
                            plots.strategy_colours(order), W, "val_accuracy_final")
    for s in order:
        # The seed runs retrained this LR; the starred tune trial is the one that had it.
        seed_lr = json.loads(seeds[seeds["strategy"] == s]["hparams"].iloc[0])["lr"]
        trial = tune[tune["trial_id"] == chosen[(W, s)]].iloc[0]
        assert json.loads(trial["hparams"])["lr"] == seed_lr
        (x, y), = _points(fig, f"chosen-{s}")
        assert (x, y) == pytest.approx((seed_lr, 100 * trial["val_accuracy_final"]))
    ax = next(a for a in fig.axes if a.get_title() == order[0])
    assert ax.get_xscale() == "log"
    x = _segments(fig, f"bounds-{order[0]}").get_xdata()
    assert sorted(x[np.isfinite(x)]) == pytest.approx([1e-3, 1e-3, 1e-1, 1e-1])
    plots.plt.close(fig)


def test_search_positions_are_the_log_position_in_the_range(data):
    res = data.res
    ranges = checks.search_bounds(res)
    chosen = figures.chosen_trials(res, data.summary, ranges)
    order = figures.strategy_order(data.summary)
    points = figures.position_points(res.tune_runs(), ranges, chosen, W, order,
                                     lambda w, s: tables.tune_metric(res, w, s))
    lr = points[(points["hparam"] == "lr")]
    tune = res.tune_runs().set_index("trial_id")
    for s in order:
        row = lr[(lr["strategy"] == s) & lr["chosen"]]
        assert len(row) == 1
        value = json.loads(tune.loc[chosen[(W, s)], "hparams"])["lr"]
        assert row["position"].iloc[0] == pytest.approx(math.log10(value / 1e-3) / 2)  # [1e-3, 1e-1] in log space
    assert checks.position(0.875, 0.8, 0.95, "linear") == pytest.approx(0.5)


def test_pair_matrix_is_the_all_pairs_differences(data):
    order = list(data.summary.sort_values("rank")["strategy"])
    diff, p = figures.pair_frames(data.all_pairs, W, order)
    m = tables.seed_matrix(data.res, W)
    for a in order:
        for b in order:
            if a != b:
                assert diff.loc[a, b] == pytest.approx((m[a] - m[b]).mean())
                assert p.loc[a, b] == p.loc[b, a]
    fig = plots.pair_matrix(diff, p, W)
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts if t.get_transform() is ax.transData]  # not the row labels
    assert len(cells) == len(order) * (len(order) - 1) // 2  # the upper triangle only
    # Every row but the last is labelled with its strategy, in order, at its row.
    rows = sorted((t.get_position()[1], t.get_text()) for t in ax.texts if t.get_transform() is not ax.transData)
    assert rows == [(i, name) for i, name in enumerate(order[:-1])]
    plots.plt.close(fig)


def test_compute_uses_gradient_evaluations_when_every_run_has_them(data):
    cost, unit, measure = figures.compute_cost(data.res, data.summary, W)
    assert measure == "wall_seconds" and "wall seconds" in unit
    runs = data.res.seed_runs()
    sgdr = runs[(runs["workload"] == W) & (runs["strategy"] == "sgdr")]["wall_seconds"]
    row = cost.set_index("strategy").loc["sgdr"]
    assert (row["cost_mean"], row["cost_sd"]) == pytest.approx((sgdr.mean(), sgdr.std(ddof=1)))
    res = data.res
    trials = res.trials.assign(grad_evals=np.arange(len(res.trials), dtype="int64") + 100)
    counted = type(res)(res.sweep_dirs, trials, res.epochs, res.budget, res.mixed, res.warnings)
    _, unit, measure = figures.compute_cost(counted, data.summary, W)
    assert measure == "grad_evals" and "gradient evaluations" in unit


def test_budget_curves_tick_whole_trials(data):
    order = list(data.summary.sort_values("rank")["strategy"])
    fig = plots.budget_curves(data.budget_curves, order, plots.strategy_colours(order), W)
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 6]
    assert ticks and all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "solid: best so far" in labels and "dashed: expected best of k random trials" in labels
    plots.plt.close(fig)


def test_the_sweep_records_its_search_ranges():
    """budget_rows writes each pair's searched ranges, spec overrides applied, for the report's bounds."""
    from sweeps.record.results import budget_rows
    from sweeps.spec import catalog, parse_spec

    spec = parse_spec({"name": "t", "workloads": ["synthetic"], "strategies": ["sgdr", "adamw"],
                       "budget": {"trials": 2, "epochs": 1}, "evaluation": {"seeds": 1},
                       "search_space": {"sgdr": {"lr": [0.01, 0.2]}}})
    rows = {r["strategy"]: json.loads(r["search_space"]) for r in budget_rows(spec, [])}
    assert rows["sgdr"]["lr"] == {"low": 0.01, "high": 0.2, "scale": "log"}
    w = spec.workloads[0]
    for name, r in catalog.space(w.name, w.options_dict, "adamw").items():
        assert rows["adamw"][name] == {"low": r.low, "high": r.high, "scale": r.scale}


@pytest.mark.parametrize(("values", "log"), [([1, 10], False), ([-2.5, 0.0, 7.0, np.nan], False), ([4.0], False),
                                             ([3e-7, 2e-3, 0.2], True)])
def test_small_multiples_limits_are_what_autoscaling_gives(values, log):
    """The panels of a small-multiples figure share no axis; each gets the range matplotlib's autoscaling
    would give the data of all of them (`plots._span`)."""
    fig, ax = plots.plt.subplots()
    if log:
        ax.set_yscale("log")
    ax.plot(np.arange(len(values)), values)
    assert plots._span(values, log) == pytest.approx(ax.get_ylim(), rel=1e-9)
    plots.plt.close(fig)


def test_small_multiples_label_the_outer_panels_only():
    """Ranges shown as matplotlib's shared axes would show them: every panel with the same limits, y tick
    labels on the first column, x tick labels on the lowest panel of each column (7 panels: the 7th alone
    in the second row, so columns 2 to 6 are labelled in the first)."""
    order = [f"s{i}" for i in range(7)]
    lrs = pd.DataFrame([(s, e, 10.0 ** -(i + e / 10)) for i, s in enumerate(order) for e in range(1, 11)],
                       columns=["strategy", "epoch", "lr"])
    fig = plots.lr_used(lrs, order, plots.strategy_colours(order), W)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == order
    assert {ax.get_ylim() for ax in axes} == {axes[0].get_ylim()}
    assert {ax.get_xlim() for ax in axes} == {axes[0].get_xlim()}
    fig.canvas.draw()

    def labelled(labels):
        return any(t.get_visible() and t.get_text() for t in labels)

    assert [labelled(ax.get_yticklabels()) for ax in axes] == [True, False, False, False, False, False, True]
    assert [labelled(ax.get_xticklabels()) for ax in axes] == [False, True, True, True, True, True, True]
    # The inner panels' ticks: marks at the labelled panels' tick locations, inside the view.
    low, high = axes[0].get_ylim()
    yticks = [t for t in axes[0].get_yticks() if low <= t <= high]
    assert len(yticks) >= 2
    for ax in axes[1:6]:
        marks = [line for line in ax.get_lines() if line.get_gid() == "ticks-y"]
        assert [list(m.get_ydata()) for m in marks][0] == pytest.approx(yticks)
    xticks = [t for t in axes[6].get_xticks() if axes[6].get_xlim()[0] <= t <= axes[6].get_xlim()[1]]
    (mark,) = [line for line in axes[0].get_lines() if line.get_gid() == "ticks-x"]
    assert list(mark.get_xdata()) == pytest.approx(xticks)
    plots.plt.close(fig)


@pytest.mark.parametrize("size", [5.5, 6.5, 7])
def test_label_widths_from_advances_match_the_laid_out_text(size):
    """The margins are sized from each label's width summed over its characters' hinted advances
    (`plots._text_width`); laying the string out as Agg draws it gives the same within about a pixel."""
    labels = ["lookahead_adamw: weight_decay", "stlr_discriminative", "sam_discriminative: rho", "dals_acc",
              "Holm p, all pairs (t-test)", "<0.001", "WAVE [x]", "é accent"]
    for label in labels:
        assert plots._text_width(label, size) == pytest.approx(plots._measured(label, size), abs=1.5), label
