"""The report's figures section: which figures, in what order, with what caption.

`figure_section(data, out_dir)` draws every figure from the tables `reports.analysis` computed once
(`Figures` does it in two steps, so drawing starts before the analysis ends)
(intervals, paired differences, Holm p and budget curves are read, never recomputed) plus a few
per-epoch aggregates of the epochs table that no table holds (`epoch_stats`, `epoch_medians`).
Drawing is `reports.plots`; each figure's caption says what is drawn and what its interval is.
"""

from __future__ import annotations

import functools
import json
import math
import os

import numpy as np
import pandas as pd

from reports import checks, drawing, tables
from reports import tuning_curves as tuning
from reports.analysis import Analysis, curve_tables
from reports.document import Section
from reports.load import Results

#: Where the figure functions are: named, not imported, so that this process need not import matplotlib.
PLOTS = "reports.plots."
#: Strategies whose epochs carry DALS state (phase and trust ratio) get the DALS figure.
DALS_COLUMNS = ("phase", "trust_ratio")


def strategy_order(summary: pd.DataFrame) -> list[str]:
    """Every strategy of the report, by the paper's generation then name: the colour order."""
    gen = summary.drop_duplicates("strategy").set_index("strategy")["generation"]
    return sorted(gen.index, key=lambda s: (tables.GENERATIONS.index(gen[s]) if gen[s] in tables.GENERATIONS
                                            else len(tables.GENERATIONS), s))


def epoch_stats(res: Results) -> pd.DataFrame:
    """Per (workload, strategy, epoch) over the seed runs: mean and SD of test accuracy and of training loss."""
    ep = res.epochs[res.epochs["trial_id"].isin(res.seed_runs()["trial_id"])]
    g = ep.groupby(["workload", "strategy", "epoch"], sort=True)
    out = g["test_accuracy"].agg(acc_mean="mean", acc_sd="std", n="count")
    out = out.join(g["train_loss"].agg(loss_mean="mean", loss_sd="std"))
    return out.reset_index()


def epoch_medians(res: Results, columns: tuple[str, ...]) -> pd.DataFrame:
    """Per (workload, strategy, epoch): the median over the seed runs of each of ``columns`` (the LR, the
    DALS state: the same schedule on every seed, so the median is the schedule, not a blend of outliers)."""
    ep = res.epochs[res.epochs["trial_id"].isin(res.seed_runs()["trial_id"])]
    ep = ep.assign(**{c: pd.to_numeric(ep[c], errors="coerce") for c in columns})
    return ep.groupby(["workload", "strategy", "epoch"], sort=True)[list(columns)].median().reset_index()


def layer_medians(res: Results) -> pd.DataFrame:
    """Per (workload, strategy, epoch, layer group): the median over the seed runs of each per-layer
    diagnostic (empty for results written before the ``layers`` table)."""
    layers = res.layers if res.layers is not None else pd.DataFrame(columns=["trial_id"])
    ly = layers[layers["trial_id"].isin(res.seed_runs()["trial_id"])]
    columns = [c for c, _ in drawing.LAYER_METRICS]
    ly = ly.assign(**{c: pd.to_numeric(ly[c], errors="coerce") for c in columns})
    return ly.groupby(["workload", "strategy", "epoch", "group"], sort=True)[columns].median().reset_index()


def _config(hparams_json: str) -> dict:
    try:
        return json.loads(hparams_json) if hparams_json else {}
    except ValueError:
        return {}


def _same_config(a: dict, b: dict, names) -> bool:
    for k in names:
        x, y = a.get(k), b.get(k)
        if isinstance(x, int | float) and isinstance(y, int | float):
            if not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif x != y:
            return False
    return True


def tune_columns(res: Results) -> pd.DataFrame:
    """The tune trials' columns the figures read: filtering the whole table per pair took every column."""
    tune = res.tune_runs()
    columns = ("workload", "strategy", "trial_id", "hparams", *tables.TUNE_METRICS.values())
    return tune[[c for c in columns if c in tune]]


def chosen_trials(res: Results, summary: pd.DataFrame, ranges: dict) -> dict[tuple[str, str], str]:
    """(workload, strategy) -> trial_id of the tune trial whose configuration the seed stage retrained:
    the one whose searched hparams equal the seed runs' (``tuned_config``), else the best by the pair's
    tune metric."""
    tune = tune_columns(res)
    out = {}
    for r in summary.itertuples():
        t = tune[(tune["workload"] == r.workload) & (tune["strategy"] == r.strategy)]
        if t.empty:
            continue
        seed_cfg = _config(r.tuned_config)
        names = list(ranges.get((r.workload, r.strategy), {})) or list(seed_cfg)
        match = [tid for tid, h in zip(t["trial_id"], t["hparams"], strict=True)
                 if seed_cfg and _same_config(_config(h), seed_cfg, names)]
        if match:
            out[(r.workload, r.strategy)] = match[0]
        else:
            metric = tables.tune_metric(res, r.workload, r.strategy)
            v = t[metric].to_numpy(dtype=float)
            if np.isfinite(v).any():
                out[(r.workload, r.strategy)] = t["trial_id"].iloc[int(np.nanargmax(v))]
    return out


def position_points(tune: pd.DataFrame, ranges: dict, chosen: dict, workload: str, order: list[str],
                    metric_of) -> pd.DataFrame:
    """One row per (strategy, searched hparam, tune trial) of one workload: its position in the range
    (`checks.position`), its validation score and whether it is the retrained trial."""
    rows = []
    for strategy in order:
        space = ranges.get((workload, strategy))
        t = tune[(tune["workload"] == workload) & (tune["strategy"] == strategy)]
        if not space or t.empty:
            continue
        metric = metric_of(workload, strategy)
        for hparam, r in space.items():
            for tid, h, v in zip(t["trial_id"], t["hparams"], t[metric], strict=True):
                x = drawing.hparam_value(h, hparam)
                rows.append({"strategy": strategy, "hparam": hparam,
                             "position": checks.position(x, float(r["low"]), float(r["high"]), r["scale"])
                             if np.isfinite(x) else math.nan,
                             "val": v, "chosen": tid == chosen.get((workload, strategy))})
    return pd.DataFrame(rows, columns=["strategy", "hparam", "position", "val", "chosen"])


def pair_frames(all_pairs: pd.DataFrame, workload: str, order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Square frames (row - column mean paired difference, Holm p over all pairs) in ``order``, from
    `tables.pairwise_all`, whose rows are a - b with a before b alphabetically."""
    w = all_pairs[all_pairs["workload"] == workload]
    at = {name: i for i, name in enumerate(order)}
    diff, p = np.full((len(order), len(order)), np.nan), np.full((len(order), len(order)), np.nan)
    for a, b, d, q in zip(w["a"], w["b"], w["mean_diff"], w["p_t_holm"], strict=True):
        if a in at and b in at:  # numpy cells: setting DataFrame cells one by one took most of the figure's prep
            i, j = at[a], at[b]
            diff[i, j], diff[j, i] = d, -d
            p[i, j] = p[j, i] = q
    return pd.DataFrame(diff, index=order, columns=order), pd.DataFrame(p, index=order, columns=order)


def compute_cost(res: Results, summary: pd.DataFrame, workload: str) -> tuple[pd.DataFrame, str, str]:
    """Per strategy of one workload: its summary mean and t interval and the mean and SD over its seed
    runs of gradient evaluations per run (trials ``grad_evals``), or of wall seconds where any run
    lacks a count. Returns the frame, the axis label and the measure's name."""
    runs = res.seed_runs()
    runs = runs[runs["workload"] == workload]
    counted = "grad_evals" in runs and runs["grad_evals"].notna().all() and len(runs)
    column = "grad_evals" if counted else "wall_seconds"
    label = ("gradient evaluations per seed run (SAM counts two per step)" if counted
             else "wall seconds per seed run (no gradient-evaluation counts recorded)")
    g = runs.assign(cost=pd.to_numeric(runs[column], errors="coerce")).groupby("strategy")["cost"]
    cost = g.agg(cost_mean="mean", cost_sd="std")
    s = summary[summary["workload"] == workload].set_index("strategy")[["mean", "ci_low", "ci_high"]]
    return s.join(cost).reset_index(), label, column


def figure_section(data: Analysis, out_dir: str) -> Section:
    """The report's figures: per workload the forest plot (the main figure), accuracy intervals, all
    pairs, learning curves, the LR used (and DALS's state), sensitivity, compute and budget; then the
    cross-workload figures."""
    figs = Figures(out_dir, data.res, data.summary)
    figs.start({"vs_best": data.vs_best, "all_pairs": data.all_pairs, "budget_curves": data.budget_curves,
                "tuning_curves": data.tuning_curves, "tuning_summary": data.tuning_summary}, data.margin)
    return figs.finish(data)


def curves_and_figures(figures: Figures, margin: float) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """`reports.analysis.curve_tables` of ``figures.res`` (the trials and budget suffice) and the figures drawn
    from them (`Figures.from_curves`), here: the report submits this to a figure worker, which draws the
    curves as soon as it has computed them. Returns the tables and the figures drawn (`Figures.drawn`)."""
    frames = curve_tables(figures.res, margin)
    figures.from_curves(frames)
    return frames, figures.drawn


class Figures:
    """The figures section in steps, so that the figure workers (`drawing.writing`) draw while the analysis
    goes on, each figure as soon as the tables it is drawn from exist: `from_runs` (the results and the
    ranked summary: most of the drawing), `from_pairs` (the paired comparisons), `from_curves` (the budget
    and tuning curves); `finish` hands out the cross-workload figures and returns the section with every
    figure in document order (`ORDER`)."""

    #: CPU seconds each kind of figure took to draw and write on the `make run` sweep (18 strategies; one
    #: warm process, 2026-12-07): the workers get the costliest first, so that no long one is left to the end.
    COST = {"tuning_curves": 0.49, "search": 0.49, "sensitivity_lr": 0.48, "layers": 0.43, "pairs": 0.42, "lr": 0.37,
            "curves": 0.28, "forest": 0.21, "variance": 0.20, "compute": 0.18, "budget": 0.17, "dals": 0.15,
            "accuracy": 0.11}

    #: Each workload's figures in document order (the kinds `_add` is given); they are handed out as the
    #: tables they are drawn from exist, in another order.
    ORDER = ("forest", "accuracy", "pairs", "curves", "lr", "dals", "layers", "sensitivity_lr", "search", "compute",
             "budget", "tuning_curves")

    def __init__(self, out_dir: str, res: Results, summary: pd.DataFrame):
        """``summary``: the ranked per-strategy summary (`reports.tables.summary_table`; the comparisons
        with the best are not read)."""
        self.out_dir, self.res, self.summary = out_dir, res, summary
        self.colours = drawing.strategy_colours(strategy_order(summary))
        self.workloads = sorted(summary["workload"].unique())
        self.ranked = {w: list(summary[summary["workload"] == w].sort_values("rank")["strategy"])
                       for w in self.workloads}
        #: Per workload, the figures handed out: kind -> (name, saved paths, alt); the figures not yet handed out.
        self.drawn: dict[str, dict[str, tuple]] = {w: {} for w in self.workloads}
        self.pending: list[tuple] = []

    def _add(self, workload: str, draw, args: tuple, kind: str, alt: str) -> None:
        self.pending.append((workload, draw, args, kind, alt))

    def _hand_out(self) -> None:
        """Hand the pending figures to the workers (`drawing.render`), the costliest first (`COST`)."""
        plots = os.path.join(self.out_dir, "plots")
        for workload, draw, args, kind, alt in sorted(self.pending, key=lambda f: -self.COST.get(f[3], 0.3)):
            name = f"{kind}_{workload}"
            self.drawn[workload][kind] = (name, drawing.render(draw, args, plots, name), alt)
        self.pending = []

    def start(self, frames: dict[str, pd.DataFrame], margin: float) -> None:
        """Every workload's figures at once (`from_runs`, `from_pairs`, `from_curves`)."""
        self.from_runs()
        self.from_pairs(frames, margin)
        self.from_curves(frames)

    def from_runs(self) -> None:
        """Hand the workers every workload's figures drawn from the results and the ranked summary alone
        (most of the drawing: the small multiples), before any paired test is computed; without workers
        they are drawn here, in turn."""
        res, summary, colours = self.res, self.summary, self.colours
        ranges = checks.search_bounds(res)
        chosen = chosen_trials(res, summary, ranges)
        stats = epoch_stats(res)
        lrs = epoch_medians(res, ("lr", *DALS_COLUMNS))
        layer_views = layer_medians(res)
        tune = tune_columns(res)
        chance = tables.chance_levels(res)
        metric_of = tables.tune_metrics(res)
        for workload in self.workloads:
            s = summary[summary["workload"] == workload].sort_values("rank")
            ranked = self.ranked[workload]
            add = functools.partial(self._add, workload)
            add(PLOTS + "accuracy_intervals", (s, tables.seed_matrix(res, workload), colours, workload,
                                           chance.get(workload)), "accuracy",
                f"{workload}: mean final test accuracy per strategy (large dot) with its 95% Student t interval "
                "over seeds (bar) and each seed run (small dots); ranked by mean. The axis does not start at 0, "
                "which dots, unlike bars, do not exaggerate.")
            st = stats[stats["workload"] == workload]
            if not st.empty:
                add(PLOTS + "learning_curves", (st, ranked, colours, workload), "curves",
                    f"{workload}: test accuracy (left) and training loss (right) per epoch of the seed runs, "
                    f"mean over seeds; the {min(drawing.TOP, len(ranked))} strategies with the highest final "
                    "mean in colour with a band of +-1 SD over seeds (not a confidence interval), the "
                    "others as grey means. The accuracy axis is cut below the lowest mean of the second half "
                    "of training, so early epochs may leave the panel.")
            lr = lrs[lrs["workload"] == workload]
            if lr["lr"].notna().any():
                add(PLOTS + "lr_used", (lr, ranked, colours, workload), "lr",
                    f"{workload}: the learning rate of the top layer group at the end of each epoch, median "
                    "over the seed runs (log scale, shared by the panels), as the seed runs used it. No "
                    "interval: the seeds share one schedule.")
            dals = lr.dropna(subset=list(DALS_COLUMNS), how="all")
            if not dals.empty:
                add(PLOTS + "dals_state", (dals, colours, workload), "dals",
                    f"{workload}: DALS's phase (0, 1, 2) and mean trust ratio at the end of each epoch, median "
                    "over the seed runs, for the DALS strategies. No interval.")
            ly = layer_views[layer_views["workload"] == workload]
            if not ly.empty:
                add(PLOTS + "layer_views", (ly, ranked, colours, workload), "layers",
                    f"{workload}: per layer group (columns, bottom to top), at the last step of each epoch, "
                    "median over the seed runs: the norm of the step's weight change over the weight norm, "
                    "the gradient norm, and the trust ratio where the strategy has one (DALS family, LARS); "
                    f"the {min(drawing.TOP, len(ranked))} strategies with the highest final mean, log scale "
                    "shared along each row. No interval; one step per epoch, so these are samples, not "
                    "epoch averages. Values are in `layers.parquet`.")
            wt = tune[tune["workload"] == workload]
            metrics = {metric_of.get((workload, st_), tables.TUNE_METRICS["final"]) for st_ in ranked}
            metric = sorted(metrics)[0]
            if np.isfinite([drawing.hparam_value(h, "lr") for h in wt["hparams"]]).any():
                bounds = {st_: ranges[(workload, st_)]["lr"] for st_ in ranked
                          if "lr" in ranges.get((workload, st_), {})}
                picks = {st_: chosen[(workload, st_)] for st_ in ranked if (workload, st_) in chosen}
                note = ("dashed lines mark each pair's search bounds" if bounds
                        else "the search bounds were not recorded in these results")
                add(PLOTS + "sensitivity", (wt, "lr", bounds, picks, ranked, colours, workload, metric),
                    "sensitivity_lr",
                    f"{workload}: validation accuracy (`{metric}`) of every tune trial against its learning "
                    f"rate, one panel per strategy (ranked); {note}; the star is the configuration the seed "
                    "stage retrained. No interval: each point is one trial on one seed.")
            points = position_points(wt, ranges, chosen, workload, ranked,
                                     lambda w, s_: metric_of.get((w, s_), tables.TUNE_METRICS["final"]))
            if not points.empty:
                add(PLOTS + "search_positions", (points, workload), "search",
                    f"{workload}: every searched hyperparameter of every strategy (rows), each tune trial's "
                    "value as its position in the search range (0 = lower bound, 1 = upper bound, in log "
                    "space for log ranges), coloured by validation accuracy; the red star is the retrained "
                    "configuration. A star at 0 or 1 is an optimum at the edge of its range. No interval: one "
                    "point per trial.")
            cost, unit, measure = compute_cost(res, summary, workload)
            add(PLOTS + "accuracy_vs_compute", (cost, colours, workload, unit), "compute",
                f"{workload}: mean final test accuracy (95% t interval over seeds, vertical) against the "
                f"{'gradient evaluations' if measure == 'grad_evals' else 'wall seconds'} of a seed run "
                "(mean +-1 SD over seeds, horizontal).")
        self._hand_out()

    def from_pairs(self, frames: dict[str, pd.DataFrame], margin: float) -> None:
        """Hand the workers the figures drawn from the paired comparisons (``frames``: `reports.analysis.
        seed_tables`' vs_best and all_pairs): the forest plot and the all-pairs matrix."""
        vs_best, all_pairs, colours = frames["vs_best"], frames["all_pairs"], self.colours
        m = 100 * margin
        for workload in self.workloads:
            ranked = self.ranked[workload]
            leader = ranked[0]
            add = functools.partial(self._add, workload)
            vs = vs_best[vs_best["workload"] == workload] if not vs_best.empty else vs_best
            if not vs.empty:
                add(PLOTS + "forest", (vs, leader, margin, colours, workload), "forest",
                    f"{workload}: each strategy's mean paired difference in final test accuracy from the leader "
                    f"{leader} (strategy - leader, pp) with its 95% paired t interval over the seeds both ran; "
                    f"the green band is the equivalence margin +-{m:g} pp; the right axis gives the Holm-"
                    "corrected paired t-test p within all pairs of the workload, which does not depend on "
                    "which strategy came out best.")
            if len(ranked) > 2:
                diff, p = pair_frames(all_pairs, workload, ranked)
                add(PLOTS + "pair_matrix", (diff, p, workload), "pairs",
                    f"{workload}: mean paired difference in final test accuracy, row minus column (pp), for "
                    "every pair of strategies (ranked by mean); stars mark Holm-corrected paired t-test p "
                    "within all pairs (* < 0.05, ** < 0.01, *** < 0.001). An unstarred cell is not shown "
                    "to be a tie: these seeds could not tell. No interval is drawn; each pair's paired t "
                    "interval is in `csv/pairwise_all.csv`.")
        self._hand_out()

    def from_curves(self, frames: dict[str, pd.DataFrame]) -> None:
        """Hand the workers the budget and tuning-curve figures (``frames``: `reports.analysis.curve_tables`)."""
        colours = self.colours
        for workload in self.workloads:
            ranked = self.ranked[workload]
            add = functools.partial(self._add, workload)
            bc = frames["budget_curves"]
            bc = bc[bc["workload"] == workload] if not bc.empty else bc
            if not bc.empty:
                add(PLOTS + "budget_curves", (bc, ranked, colours, workload), "budget",
                    f"{workload}: best validation accuracy so far against tuning trials in trial order (solid) "
                    "and the expected best of k trials drawn at random without replacement from those run "
                    f"(dashed, Dodge et al. 2019), for the {min(drawing.TOP, len(ranked))} strategies with the "
                    "highest seed-stage mean; grey: the others' best so far. No interval.")
            tc = frames["tuning_curves"]
            tc = tc[tc["workload"] == workload] if not tc.empty else tc
            if not tc.empty:
                ts = frames["tuning_summary"][frames["tuning_summary"]["workload"] == workload]
                add(PLOTS + "tuning_curves", (tc, ts, ranked, colours, workload, tuning.CONFIDENCE), "tuning_curves",
                    f"{workload}: tuning curves, one panel per strategy (ranked by seed-stage mean): the expected "
                    "best validation accuracy of n configurations drawn independently from the strategy's search "
                    "space (the canonical trial 0 left out), estimated from the draws run (Tang et al. 2020), "
                    f"with its {tuning.CONFIDENCE:.0%} simultaneous band (Lourie et al. 2024, opda: a confidence "
                    "interval at every n that holds at all n at once); the dashed line marks the budget's draws "
                    "per study. A red title with an up arrow marks a curve still rising at the budget (section "
                    "Tuning curves). "
                    "The band's upper edge nears 100% unless there are many draws, and leaves the panel: its "
                    "lower edge is the informative one.")
        self._hand_out()

    def add_drawn(self, drawn: dict[str, dict]) -> None:
        """Take figures handed out elsewhere (`curves_and_figures`'s) into the section."""
        for workload, figures in drawn.items():
            self.drawn[workload].update(figures)

    def finish(self, data: Analysis) -> Section:
        """Hand the workers the cross-workload figures; the section, with every figure in document order."""
        sec = Section(self.out_dir)
        sec.h(2, "Figures")
        for workload in self.workloads:
            sec.h(3, workload)
            drawn = self.drawn[workload]
            for kind in sorted(drawn, key=self.ORDER.index):
                sec.add_figure(*drawn[kind])
        a = data.across
        if np.isfinite(a.friedman.p):
            sec.h(3, "Across workloads")
            sec.figure(PLOTS + "cd_diagram", (a.ranks, a.nemenyi, a.friedman.cd, a.friedman.n_workloads), "cd_diagram",
                       "The critical-difference diagram: average rank of each strategy over the workloads "
                       "(1 = best); a bar joins strategies the Nemenyi test at alpha 0.05 does not separate "
                       "(not separated is not equal).")
        if a.profiles is not None:
            sec.figure(PLOTS + "performance_profiles", (a.profiles, self.colours), "performance_profiles",
                       "Performance profiles: fraction of seed runs whose normalised score (0 = chance, 1 = the "
                       "workload's best mean) exceeds each threshold, mean over workloads, with a 95% stratified "
                       "bootstrap band.")
        return sec
