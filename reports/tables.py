"""The report's tables as pandas DataFrames, built from `reports.load.Results`.

Accuracies stay fractions here (the CSVs keep full precision); `reports.render` shows percent.
Every function is deterministic given its `seed`. Conventions the report states in words:
- primary metric: final-epoch test accuracy of the seed-stage runs (status ok or diverged);
- "paired by seed": seed-stage runs of two strategies on one workload matched on `seed`;
- the outcome of a comparison with the best (`outcome`): *worse* when the Holm-corrected paired
  t-test is significant, *equivalent* when the Holm-corrected TOST at the margin is, *inconclusive*
  when neither is, *untested* when no test was possible;
- normalised score: (accuracy - chance) / (workload's best mean - chance), chance being the
  majority-class rate of the test split, so every workload counts equally across workloads.
"""

from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pandas as pd

from lrstats import stats
from lrstats.studies import group_scores, group_seed_scores
from reports.load import Results
from reports.options import DEFAULT_MARGIN
from vocab.contracts import DIVERGED, ERROR, TUNE

#: Display order of the paper's generations.
GENERATIONS = ("1", "2", "3", "4", "5", "SOTA")
#: The tune-stage score each ``selection`` rule maximises (validation only; the test split chooses nothing).
TUNE_METRICS = {"final": "val_accuracy_final", "best": "val_accuracy_best"}
PRIMARY = "test_accuracy_final"
OPTIMISTIC = "test_accuracy_best"
#: Outcomes of a strategy against its workload's best (see the module docstring); "better" is a
#: strategy with a lower mean that is significantly better on the seeds both ran (missing seeds).
OUTCOMES = ("best", "worse", "better", "equivalent", "inconclusive", "untested")


def _generation_key(g: str) -> int:
    return GENERATIONS.index(g) if g in GENERATIONS else len(GENERATIONS)


def generations(res: Results) -> dict[str, str]:
    """Strategy -> generation, from the trials table."""
    t = res.trials.drop_duplicates("strategy")
    return dict(zip(t["strategy"], t["generation"], strict=True))


def seed_matrix(res: Results, workload: str, metric: str = PRIMARY) -> pd.DataFrame:
    """`(n_seeds x n_strategies)` table of `metric` on one workload: index seed, one column per strategy;
    with several tuning studies, index study (`Results.replicates`: each study's mean over its seeds)."""
    runs = res.replicates()
    runs = runs[runs["workload"] == workload]
    return runs.pivot_table(index="seed", columns="strategy", values=metric, aggfunc="mean").sort_index()


def _tuned_config(hparams: pd.Series) -> str:
    """The seed stage's configuration (the tuned best); the most frequent one if runs disagree."""
    values = hparams.dropna()
    if values.empty:
        return ""
    counts = values.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def _pair_rows(workload: str, a_name: str, b_name: str, m: dict[str, np.ndarray], margin: float,
               family: int) -> dict:
    """One paired comparison a - b on the seeds both strategies have (`paired_tests` drops a seed that
    either lacks), one of `family` comparisons; `m`: strategy -> its seed column of `seed_matrix`.

    Power figures use level ALPHA / family: the strictest level Holm applies in that family.
    """
    r = stats.paired_tests(m[a_name], m[b_name], margin=margin, power_alpha=stats.ALPHA / max(family, 1))
    return {"workload": workload, "a": a_name, "b": b_name, "n": r.n, "mean_diff": r.mean_diff,
            "sd_diff": r.sd_diff, "diff_ci_low": r.diff_ci[0], "diff_ci_high": r.diff_ci[1], "t": r.t,
            "p_t": r.p_t, "w": r.w, "p_w": r.p_w, "min_p_w": r.min_p_w, "cohen_d": r.cohen_d,
            "cliffs_delta": r.cliffs_delta, "margin": r.margin, "p_tost": r.p_tost,
            "power_alpha": r.power_alpha, "mdd": r.mdd,
            "seeds_for_margin": r.seeds_for_margin if r.seeds_for_margin is not None else np.nan,
            "note": r.note}


def _columns(m: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each strategy's column of a seed matrix as a float array (NaN where a seed is missing)."""
    return {c: m[c].to_numpy(dtype=float) for c in m.columns}


def _with_holm(rows: list[dict]) -> pd.DataFrame:
    """Pairwise rows of one family with Holm-adjusted p for each test and the comparison's outcome."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    for test in ("p_t", "p_w", "p_tost"):
        df[f"{test}_holm"] = stats.holm(df[test])
    df["outcome"] = [outcome(p, q, d) for p, q, d in zip(df["p_t_holm"], df["p_tost_holm"], df["mean_diff"],
                                                          strict=True)]
    return df


def outcome(p_t_holm: float, p_tost_holm: float, mean_diff: float) -> str:
    """The verdict on a comparison a - b: worse (b is), better, equivalent, inconclusive or untested."""
    if not np.isfinite(p_t_holm):
        return "untested"
    if p_t_holm < stats.ALPHA:
        return "worse" if mean_diff > 0 else "better"
    if np.isfinite(p_tost_holm) and p_tost_holm < stats.ALPHA:
        return "equivalent"
    return "inconclusive"


def final_lr_fractions(res: Results) -> pd.DataFrame:
    """Per seed-stage run: the LR of the last step taken (the top layer group's, which the epochs table
    records after each epoch's last step) as a fraction of the peak LR (the run's ``lr`` hyperparameter).

    ``lr_before`` is the LR at the end of the epoch before; ``restarted`` marks a run whose LR rose in
    its last epoch after falling before it: a cyclic schedule that restarted inside the last epoch
    (DALS-Acc's counter restarts at a cycle's last step), so a high fraction there is one restarted
    step, not a run that never decayed. Near 0 a schedule ran out.
    """
    runs = res.seed_runs()[["trial_id", "workload", "strategy", "seed", "hparams"]]
    ep = res.epochs[res.epochs["trial_id"].isin(runs["trial_id"])].sort_values(["trial_id", "epoch"])
    lr = ep.groupby("trial_id")["lr"]
    last, before, before2 = lr.nth(-1), lr.nth(-2), lr.nth(-3)
    by_id = lambda s: pd.Series(s.to_numpy(), index=ep.loc[s.index, "trial_id"].to_numpy())
    last, before, before2 = by_id(last), by_id(before), by_id(before2)
    peak = [float(json.loads(h).get("lr", np.nan)) if h else np.nan for h in runs["hparams"]]
    out = runs.drop(columns="hparams").assign(
        lr_final=runs["trial_id"].map(last).astype(float), lr_before=runs["trial_id"].map(before).astype(float),
        lr_peak=peak)
    falling = runs["trial_id"].map(before2).astype(float) > out["lr_before"]
    restarted = (out["lr_final"] > 2 * out["lr_before"]) & falling.fillna(False)
    out = out.assign(fraction=out["lr_final"] / out["lr_peak"], restarted=restarted.astype(bool))
    return out.reset_index(drop=True)


def tie_ranks(means: pd.Series) -> np.ndarray:
    """Rank 1 = highest mean; equal means (to 12 digits, so summation order cannot split a tie) share
    the average of their ranks, as `stats.average_ranks` does across workloads."""
    return pd.Series(np.round(means.to_numpy(dtype=float), 12)).rank(ascending=False, method="average").to_numpy()


def compute_per_run(runs: pd.DataFrame) -> dict[str, float]:
    """Mean and SD of wall seconds per run, and mean gradient evaluations and step seconds per run,
    over ``runs`` (NaN where a column is absent or null: sweeps written before it existed)."""
    def col(name: str) -> np.ndarray:
        if name not in runs:
            return np.array([])
        return pd.to_numeric(runs[name], errors="coerce").dropna().to_numpy(dtype=float)

    wall, grads, steps = col("wall_seconds"), col("grad_evals"), col("step_seconds")
    return {"wall_mean": float(wall.mean()) if wall.size else np.nan,
            "wall_sd": float(wall.std(ddof=1)) if wall.size > 1 else np.nan,
            "grad_evals_mean": float(grads.mean()) if grads.size else np.nan,
            "step_seconds_mean": float(steps.mean()) if steps.size else np.nan}


def regimes(res: Results) -> dict[str, str]:
    """Workload -> regime (scratch or finetune), from the trials table."""
    t = res.trials.drop_duplicates("workload")
    return dict(zip(t["workload"], t["regime"], strict=True))


#: Summary column <- the column of the strategy's comparison with its workload's best.
VS_BEST_COLUMNS = {"outcome": "outcome", "p_t_holm_vs_best": "p_t_holm", "p_tost_holm_vs_best": "p_tost_holm",
                   "mdd_vs_best": "mdd", "seeds_for_margin": "seeds_for_margin"}


def summary_and_vs_best(res: Results, *, margin: float = DEFAULT_MARGIN, all_pairs: pd.DataFrame | None = None,
                        fractions: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-workload summary (one row per strategy, ranked; `summary_table`) with the comparisons with each
    workload's best (`with_vs_best`). ``all_pairs`` (`pairwise_all`) and ``fractions``
    (`final_lr_fractions`) are computed when not given."""
    all_pairs = pairwise_all(res, margin=margin) if all_pairs is None else all_pairs
    return with_vs_best(summary_table(res, fractions=fractions), res, all_pairs, margin=margin)


def _by_pair(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """``frame``'s rows per (workload, strategy), in their order."""
    return {key: rows for key, rows in frame.groupby(["workload", "strategy"], sort=False)}


def summary_table(res: Results, *, fractions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-workload summary, one row per strategy, ranked by mean (no paired test is needed for it).

    Columns: workload, regime, rank, strategy, generation, n, mean, sd, ci_low, ci_high (95%
    Student t interval of the mean over seeds), best_epoch_mean, best_epoch_sd (the paper's
    optimistic metric), tuned_config (JSON), trials_run, trials_planned, diverged (seed runs),
    tune_diverged, lr_fraction_min / lr_fraction_max (final LR / peak over the seed runs), the
    compute per run. ``fractions`` (`final_lr_fractions`) is computed when not given.
    """
    gen = generations(res)
    reg = regimes(res)
    runs = res.seed_runs()
    replicates = res.replicates()  # what n, mean and the interval are over: seeds, or studies
    tune = res.tune_runs()
    fractions = final_lr_fractions(res) if fractions is None else fractions
    budget = res.budget.set_index(["workload", "strategy"])
    # Each pair's rows of the columns read, split once: a filter per pair of the whole frames (every
    # column taken) was most of this table's time.
    pair = ["workload", "strategy"]
    reps = _by_pair(replicates[[*pair, PRIMARY, OPTIMISTIC]])
    tunes, fracs = _by_pair(tune[[*pair, "status"]]), _by_pair(fractions)
    summaries = []
    for workload in sorted(runs["workload"].unique()):
        wr = runs[runs["workload"] == workload]
        rows = []
        for strategy, g in wr.groupby("strategy", sort=True):
            rep = reps.get((workload, strategy), replicates.iloc[:0])
            acc = rep[PRIMARY].dropna().to_numpy()
            best_ep = rep[OPTIMISTIC].dropna().to_numpy()
            lo, hi = stats.t_interval(acc)
            b = budget.loc[(workload, strategy)] if (workload, strategy) in budget.index else None
            td = tunes.get((workload, strategy), tune.iloc[:0])
            fr_rows = fracs.get((workload, strategy), fractions.iloc[:0])
            frac = fr_rows["fraction"]
            rows.append({
                "workload": workload, "regime": reg.get(workload, "?"), "strategy": strategy,
                "generation": gen.get(strategy, "?"),
                "n": int(acc.size), "mean": float(np.mean(acc)) if acc.size else np.nan,
                "sd": float(np.std(acc, ddof=1)) if acc.size > 1 else np.nan,
                "ci_low": lo, "ci_high": hi,
                "best_epoch_mean": float(np.mean(best_ep)) if best_ep.size else np.nan,
                "best_epoch_sd": float(np.std(best_ep, ddof=1)) if best_ep.size > 1 else np.nan,
                "tuned_config": _tuned_config(g["hparams"]),
                "trials_run": int(b["trials_run"]) if b is not None else len(td),
                "trials_planned": int(b["trials_planned"]) if b is not None else np.nan,
                "diverged": int((g["status"] == DIVERGED).sum()),
                "tune_diverged": int((td["status"] == DIVERGED).sum()),
                "lr_fraction_min": float(frac.min()) if frac.notna().any() else np.nan,
                "lr_fraction_max": float(frac.max()) if frac.notna().any() else np.nan,
                "lr_restarted": int(fr_rows["restarted"].sum()) if len(fr_rows) else 0,
                **compute_per_run(g),
            })
        df = pd.DataFrame(rows)
        # Order by mean, a tie alphabetically so the comparisons' best is well defined; equal means get
        # equal (averaged) ranks, the same ranks the cross-workload table averages.
        df = df.sort_values(["mean", "strategy"], ascending=[False, True], kind="stable").reset_index(drop=True)
        df.insert(2, "rank", tie_ranks(df["mean"]))
        summaries.append(df)
    return pd.concat(summaries, ignore_index=True)


def with_vs_best(summary: pd.DataFrame, res: Results, all_pairs: pd.DataFrame, *,
                 margin: float = DEFAULT_MARGIN) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`summary_table` with the columns against each workload's best, and the comparisons with the best.

    Added columns: outcome (see `OUTCOMES`), p_t_holm_vs_best, p_tost_holm_vs_best, mdd_vs_best,
    seeds_for_margin. The vs-best table has one row per non-best strategy: a = the best, b = it,
    differences a - b, Holm over that workload's rows, and p_t_holm_all, the same comparison's
    Holm p within all pairs of the workload (which does not depend on the best being picked first).
    """
    summaries, comparisons = [], []
    for workload in sorted(summary["workload"].unique()):
        df = summary[summary["workload"] == workload].reset_index(drop=True)
        best = df.loc[0, "strategy"]
        m = seed_matrix(res, workload)
        others = list(df["strategy"][1:])
        cols = _columns(m)
        vs = _with_holm([_pair_rows(workload, best, s, cols, margin, len(others)) for s in others])
        if not vs.empty:
            wa = all_pairs[all_pairs["workload"] == workload]
            p_all = {frozenset((a, b)): p for a, b, p in zip(wa["a"], wa["b"], wa["p_t_holm"], strict=True)}
            vs["p_t_holm_all"] = [p_all.get(frozenset((best, s)), np.nan) for s in vs["b"]]
        by_other = vs.set_index("b") if not vs.empty else pd.DataFrame(columns=list(VS_BEST_COLUMNS.values()))
        for column, source in VS_BEST_COLUMNS.items():
            df[column] = df["strategy"].map(by_other[source])
        df.loc[0, "outcome"] = "best"
        summaries.append(df)
        comparisons.append(vs)
    return pd.concat(summaries, ignore_index=True), pd.concat(comparisons, ignore_index=True)


def pairwise_all(res: Results, *, margin: float = DEFAULT_MARGIN) -> pd.DataFrame:
    """Every pair of strategies within each workload (a before b alphabetically), Holm over the workload's pairs."""
    out = []
    for workload in sorted(res.seed_runs()["workload"].unique()):
        m = seed_matrix(res, workload)
        pairs = list(combinations(sorted(m.columns), 2))
        cols = _columns(m)
        out.append(_with_holm([_pair_rows(workload, a, b, cols, margin, len(pairs)) for a, b in pairs]))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def power_statement(vs: pd.DataFrame, margin: float) -> str:
    """Plain words on what one workload's seeds can separate, from its comparisons with the best."""
    v = vs[np.isfinite(vs["mdd"].astype(float))]
    if v.empty:
        return ("No comparison with the best had two paired seeds with spread, so nothing can be said about "
                "which differences these seeds could detect.")
    n = int(v["n"].min()) if v["n"].nunique() == 1 else f"{int(v['n'].min())}-{int(v['n'].max())}"
    mdd = v["mdd"].astype(float)
    need = v["seeds_for_margin"].astype(float)
    lo, med, hi = (100 * mdd.min(), 100 * mdd.median(), 100 * mdd.max())
    need_med = need.median()
    need_text = (f"more than {stats.MAX_SEEDS}" if need_med > stats.MAX_SEEDS
                 else f"about {int(math.ceil(need_med))}")
    return (f"**Power**: {n} seeds cannot reliably separate differences below {med:.2f} pp on this workload "
            f"(median over the comparisons with the best; {lo:.2f}-{hi:.2f} pp across them), the difference "
            f"the paired t-test detects with {stats.POWER:.0%} power at level {stats.ALPHA}/{len(vs)} given "
            f"the observed spread of the differences. Detecting a {100 * margin:.2f} pp difference would take "
            f"{need_text} seeds (median). The spread is itself estimated from these few seeds.")


def score_matrix(summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """`(n_workloads x n_strategies)` mean accuracies, keeping strategies present on every workload.

    Returns the matrix and the strategies dropped for missing a workload.
    """
    wide = summary.pivot(index="workload", columns="strategy", values="mean").sort_index()
    complete = wide.columns[wide.notna().all()]
    dropped = sorted(set(wide.columns) - set(complete))
    return wide[sorted(complete)], dropped


def across_workloads(summary: pd.DataFrame, gen: dict[str, str]) -> tuple[pd.DataFrame, stats.FriedmanResult,
                                                                             pd.DataFrame, list[str]]:
    """Average ranks (1 = best) with per-workload ranks, the Friedman/Nemenyi result, the Nemenyi p matrix
    and the strategies left out for missing a workload."""
    wide, dropped = score_matrix(summary)
    fr = stats.friedman_nemenyi(wide.to_numpy())
    per = pd.DataFrame(
        pd.DataFrame(wide.to_numpy()).rank(axis=1, ascending=False, method="average").to_numpy(),
        index=wide.index, columns=wide.columns).T
    ranks = pd.DataFrame({"strategy": wide.columns, "generation": [gen.get(s, "?") for s in wide.columns],
                          "avg_rank": fr.avg_ranks})
    ranks = ranks.join(per, on="strategy").sort_values(["avg_rank", "strategy"], kind="stable")
    nemenyi = pd.DataFrame(fr.nemenyi_p, index=wide.columns, columns=wide.columns)
    return ranks.reset_index(drop=True), fr, nemenyi, dropped


def friedman_by_regime(summary: pd.DataFrame) -> pd.DataFrame:
    """The Friedman test and Nemenyi critical difference over all workloads and within each regime:
    group (all, scratch, finetune), workloads, strategies, chi2, df, p, nemenyi_cd, note."""
    groups = [("all", summary)] + [(r, summary[summary["regime"] == r]) for r in sorted(summary["regime"].unique())]
    rows = []
    for name, part in groups:
        wide, _ = score_matrix(part)
        fr = stats.friedman_nemenyi(wide.to_numpy())
        rows.append({"group": name, "workloads": ", ".join(wide.index), "n_workloads": fr.n_workloads,
                     "n_strategies": fr.n_strategies, "chi2": fr.statistic, "df": fr.n_strategies - 1, "p": fr.p,
                     "nemenyi_cd": fr.cd, "note": fr.note})
    return pd.DataFrame(rows)


def chance_levels(res: Results) -> dict[str, float]:
    """Workload -> chance accuracy of its test split (majority-class rate), from the seed-stage runs."""
    runs = res.seed_runs()
    return {w: float(g["chance_accuracy"].median()) for w, g in runs.groupby("workload", sort=True)}


def normalised_scores(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Seed-stage runs with ``normalised`` = (accuracy - chance) / (workload's best mean - chance).

    0 is the majority-class rate of the test split, 1 the highest strategy mean on the workload, so
    every workload spans the same scale and weighs the same in the aggregates. Returns the runs and
    the workloads that cannot be normalised (no chance level recorded, or no mean above it).
    """
    chance = chance_levels(res)
    best = summary.groupby("workload")["mean"].max()
    runs = res.seed_runs()
    skipped = sorted(w for w in best.index if not (np.isfinite(chance.get(w, np.nan)) and best[w] > chance[w]))
    runs = runs[~runs["workload"].isin(skipped)]
    low = runs["workload"].map(chance).astype(float)
    high = runs["workload"].map(best).astype(float)
    # Built from float columns even when every workload was skipped (no rows: an empty float column).
    normalised = (runs[PRIMARY].astype(float) - low) / (high - low)
    return runs.assign(normalised=normalised.astype(float)), skipped


def run_matrix(runs: pd.DataFrame, strategy: str, workloads: list[str], column: str = "normalised") -> np.ndarray:
    """`(n_runs x n_workloads)` values of ``column`` for one strategy's runs, NaN where a seed is missing."""
    runs = runs[runs["strategy"] == strategy]
    wide = runs.pivot_table(index="seed", columns="workload", values=column, aggfunc="mean")
    return wide.reindex(columns=workloads).sort_index().to_numpy(dtype=float)


def iqm_and_profiles(runs: pd.DataFrame, strategies: list[str], workloads: list[str], *, seed: int = 0,
                     taus: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per strategy the mean over workloads of its per-workload IQM with a stratified-bootstrap CI
    (`stats.task_iqm_ci`), and performance profiles, both on ``runs["normalised"]`` (see
    `normalised_scores`). Profiles are evaluated at `taus` (default: 101 points from min(0, lowest
    score) to max(1, highest score))."""
    if taus is None:
        values = runs[runs["workload"].isin(workloads)]["normalised"].dropna()
        taus = np.linspace(min(0.0, float(values.min())), max(1.0, float(values.max())), 101)
    taus = np.asarray(taus, dtype=float)
    iqm_rows, prof_rows = [], []
    for s in strategies:
        scores = run_matrix(runs, s, workloads)
        point, lo, hi = stats.task_iqm_ci(scores, seed=seed)
        iqm_rows.append({"strategy": s, "iqm": point, "ci_low": lo, "ci_high": hi,
                         "runs": int(np.isfinite(scores).sum())})
        prof, plo, phi = stats.performance_profile(scores, taus, seed=seed)
        prof_rows += [{"strategy": s, "tau": t, "fraction": f, "ci_low": a, "ci_high": b}
                      for t, f, a, b in zip(taus, prof, plo, phi, strict=True)]
    iqm = pd.DataFrame(iqm_rows).sort_values(["iqm", "strategy"], ascending=[False, True], kind="stable")
    return iqm.reset_index(drop=True), pd.DataFrame(prof_rows)


def convergence(res: Results, thresholds: list[float], relative_to: dict[str, float] | None = None) -> pd.DataFrame:
    """Epochs and seconds for seed-stage runs to first reach each test-accuracy threshold (paper's Table 2).

    One row per (workload, strategy, threshold): level (the accuracy to reach: the threshold itself,
    or threshold x ``relative_to[workload]``, e.g. the workload's best mean final accuracy), reached
    (runs that got there), n (runs), epochs_mean and seconds_mean over the runs that reached it
    (seconds = summed epoch times up to and including that epoch), and total_seconds_mean (whole run).
    """
    runs = res.seed_runs()[["trial_id", "workload", "strategy", "wall_seconds"]]
    ep = res.epochs[res.epochs["trial_id"].isin(runs["trial_id"])].sort_values(["trial_id", "epoch"])
    ep = ep[["trial_id", "epoch", "test_accuracy"]].assign(elapsed=ep.groupby("trial_id")["seconds"].cumsum())
    # numpy per pair and threshold, not a groupby of the pair's epochs each: those were most of this table's time.
    trial, epoch = ep["trial_id"].to_numpy(dtype=object), ep["epoch"].to_numpy()
    accuracy, elapsed = ep["test_accuracy"].to_numpy(dtype=float), ep["elapsed"].to_numpy(dtype=float)
    rows = []
    for (workload, strategy), g in runs.groupby(["workload", "strategy"], sort=True):
        mine = np.isin(trial, g["trial_id"].to_numpy(dtype=object))
        for thr in thresholds:
            level = thr * relative_to[workload] if relative_to is not None else thr
            hit = mine & (accuracy >= level)
            # Rows are sorted by trial then epoch: a trial's first hit row is its first epoch at the level.
            first = np.flatnonzero(hit)[np.unique(trial[hit], return_index=True)[1]]
            rows.append({"workload": workload, "strategy": strategy, "threshold": thr, "level": level,
                         "reached": len(first), "n": len(g),
                         "epochs_mean": float(epoch[first].mean()) if len(first) else np.nan,
                         "seconds_mean": float(elapsed[first].mean()) if len(first) else np.nan,
                         "total_seconds_mean": float(g["wall_seconds"].mean())})
    return pd.DataFrame(rows)


def tune_metrics(res: Results) -> dict[tuple[str, str], str]:
    """(workload, strategy) -> the trials column the pair's tune trials were ranked by (its budget row's
    ``selection``), for every pair at once: a figure asks it per pair and trial."""
    b = res.budget
    return {(w, s): TUNE_METRICS[sel] for w, s, sel in zip(b["workload"], b["strategy"], b["selection"], strict=True)}


def tune_metric(res: Results, workload: str, strategy: str) -> str:
    """The trials column the pair's tune trials were ranked by: its budget row's ``selection``."""
    return tune_metrics(res).get((workload, strategy), TUNE_METRICS["final"])


def budget_curves(res: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Best-so-far validation score against trials used, and the expected maximum over k random trials.

    The score is the one the sweep selected by (``selection`` in the budget table: the last or the
    best epoch's validation accuracy). Curves: workload, strategy, trials (k = 1..N in trial_index
    order), best_so_far, expected_max (`stats.expected_max` without replacement over the N observed
    values). Summary: per pair the score column, the best score, the trial at which it was first
    reached (1-based) and the trial counts; a best found in the last trials suggests the budget was
    not enough.
    """
    tune = res.tune_runs().sort_values(["workload", "strategy", "trial_index"])
    curves, summary = [], []
    for (workload, strategy), g in tune.groupby(["workload", "strategy"], sort=True):
        metric = tune_metric(res, workload, strategy)
        v = g[metric].to_numpy(dtype=float)
        finite = v[np.isfinite(v)]
        best = np.fmax.accumulate(np.where(np.isfinite(v), v, -np.inf))
        for k in range(1, len(v) + 1):
            curves.append({"workload": workload, "strategy": strategy, "trials": k,
                           "best_so_far": best[k - 1] if np.isfinite(best[k - 1]) else np.nan,
                           "expected_max": stats.expected_max(finite, k) if k <= finite.size else np.nan})
        summary.append({"workload": workload, "strategy": strategy, "metric": metric, "trials": len(v),
                        "best_val": float(finite.max()) if finite.size else np.nan,
                        "best_at_trial": int(np.argmax(best) + 1) if finite.size else np.nan,
                        "diverged": int((g["status"] == DIVERGED).sum())})
    errored = res.trials[(res.trials["stage"] == TUNE) & (res.trials["status"] == ERROR)]
    s = pd.DataFrame(summary)
    if not s.empty:
        counts = errored.groupby(["workload", "strategy"]).size()
        s["errored"] = [int(counts.get((w, st), 0)) for w, st in zip(s["workload"], s["strategy"], strict=True)]
    return pd.DataFrame(curves), s


def by_generation(summary: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """Results grouped by the paper's generations: members, their mean average rank and, per workload,
    the best member with its mean accuracy."""
    avg_rank = dict(zip(ranks["strategy"], ranks["avg_rank"], strict=True))
    rows = []
    for g, members in summary.groupby("generation", sort=False):
        names = sorted(members["strategy"].unique())
        row = {"generation": g, "strategies": ", ".join(names),
               "mean_avg_rank": float(np.nanmean([avg_rank.get(s, np.nan) for s in names]))
               if any(s in avg_rank for s in names) else np.nan}
        for workload, w in members.groupby("workload", sort=True):
            top = w.sort_values(["mean", "strategy"], ascending=[False, True], kind="stable").iloc[0]
            row[f"{workload}_best"] = top["strategy"]
            row[f"{workload}_mean"] = top["mean"]
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.sort_values("generation", key=lambda c: c.map(_generation_key), kind="stable").reset_index(drop=True)


def learning_curves(res: Results) -> pd.DataFrame:
    """Per (workload, strategy, epoch): mean, min and max test accuracy over the seed-stage runs."""
    runs = res.seed_runs()[["trial_id"]]
    ep = res.epochs[res.epochs["trial_id"].isin(runs["trial_id"])]
    g = ep.groupby(["workload", "strategy", "epoch"], sort=True)["test_accuracy"]
    return g.agg(mean="mean", low="min", high="max", n="count").reset_index()


# --- a workload's seed runs by tuning study (adapters for lrstats.studies) ----------------------------------


def _seed_runs_columns(seed_runs: pd.DataFrame):
    """(strategy, study, score in pp, seed) of the finished seed runs of one workload; pandas in, arrays out."""
    runs = seed_runs
    if "stage" in runs:
        runs = runs[runs["stage"] == "seed"]
    if "status" in runs:
        runs = runs[runs["status"].isin(["ok", "diverged"])]
    if "workload" in runs and runs["workload"].nunique() > 1:
        raise ValueError(f"study scores are per workload; got {sorted(runs['workload'].unique())}")
    study = runs["study"].fillna(0).astype(int) if "study" in runs else np.zeros(len(runs), dtype=int)
    score = 100.0 * runs["test_accuracy_final"].to_numpy(float)
    seed = runs["seed"].astype(int).to_numpy() if "seed" in runs else np.arange(len(runs))
    return runs["strategy"].astype(str).to_numpy(), np.asarray(study), score, seed


def study_scores(seed_runs: pd.DataFrame) -> dict[str, dict[int, float]]:
    """The trials table's seed runs of ONE workload -> strategy -> study -> replicate score (pp),
    `lrstats.studies.group_scores` of its columns.

    Reads ``strategy``, ``study`` (absent in tables written before studies: every run is study 0),
    ``test_accuracy_final`` (a fraction) and, where present, ``stage`` (seed runs only) and ``status``
    (ok and diverged count, as everywhere in the report).
    """
    strategy, study, score, _ = _seed_runs_columns(seed_runs)
    return group_scores(strategy, study, score)


def study_seed_scores(seed_runs: pd.DataFrame) -> dict[str, dict[int, list[float]]]:
    """strategy -> study -> its seed runs' scores (pp) in seed order, for `lrstats.studies.variance_split`."""
    return group_seed_scores(*_seed_runs_columns(seed_runs))
