"""The report's tables as pandas DataFrames, built from `reports.load.Results`.

Accuracies stay fractions here (the CSVs keep full precision); `reports.render` shows percent.
Every function is deterministic given its `seed`. Conventions the report states in words:
- primary metric: final-epoch test accuracy of the seed-stage runs (status ok or diverged);
- "paired by seed": seed-stage runs of two strategies on one workload matched on `seed`;
- "tied with the best": Holm-corrected (over the comparisons with the best) paired t-test p >= 0.05.
"""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd

from reports import stats
from reports.load import Results

#: Display order of the paper's generations.
GENERATIONS = ("1", "2", "3", "4", "5", "SOTA")
#: The tune-stage score each ``selection`` rule maximises (validation only; the test split chooses nothing).
TUNE_METRICS = {"final": "val_accuracy_final", "best": "val_accuracy_best"}
PRIMARY = "test_accuracy_final"
OPTIMISTIC = "test_accuracy_best"


def _generation_key(g: str) -> int:
    return GENERATIONS.index(g) if g in GENERATIONS else len(GENERATIONS)


def generations(res: Results) -> dict[str, str]:
    """Strategy -> generation, from the trials table."""
    t = res.trials.drop_duplicates("strategy")
    return dict(zip(t["strategy"], t["generation"], strict=True))


def seed_matrix(res: Results, workload: str, metric: str = PRIMARY) -> pd.DataFrame:
    """`(n_seeds x n_strategies)` table of `metric` on one workload: index seed, one column per strategy."""
    runs = res.seed_runs()
    runs = runs[runs["workload"] == workload]
    return runs.pivot_table(index="seed", columns="strategy", values=metric, aggfunc="mean").sort_index()


def _tuned_config(hparams: pd.Series) -> str:
    """The seed stage's configuration (the tuned best); the most frequent one if runs disagree."""
    values = hparams.dropna()
    if values.empty:
        return ""
    counts = values.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def _pair_rows(workload: str, a_name: str, b_name: str, m: pd.DataFrame, seed: int) -> dict:
    """One paired comparison a - b on the seeds both strategies have."""
    both = m[[a_name, b_name]].dropna()
    r = stats.paired_tests(both[a_name].to_numpy(), both[b_name].to_numpy(), seed=seed)
    return {"workload": workload, "a": a_name, "b": b_name, "n": r.n, "mean_diff": r.mean_diff,
            "diff_ci_low": r.diff_ci[0], "diff_ci_high": r.diff_ci[1], "t": r.t, "p_t": r.p_t,
            "w": r.w, "p_w": r.p_w, "min_p_w": r.min_p_w, "cohen_d": r.cohen_d,
            "cliffs_delta": r.cliffs_delta, "note": r.note}


def _with_holm(rows: list[dict]) -> pd.DataFrame:
    """Pairwise rows of one family with Holm-adjusted p for both tests."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["p_t_holm"] = stats.holm(df["p_t"])
    df["p_w_holm"] = stats.holm(df["p_w"])
    return df


def summary_and_vs_best(res: Results, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-workload summary (one row per strategy, ranked) and the comparisons with each workload's best.

    Summary columns: workload, rank, strategy, generation, n, mean, sd, ci_low, ci_high (95% BCa
    bootstrap of the mean), best_epoch_mean, best_epoch_sd (the paper's optimistic metric),
    tuned_config (JSON), trials_run, trials_planned, diverged (seed runs), tune_diverged, vs_best
    ("best", "tied", "worse" or "untested"), p_t_holm_vs_best. The vs-best table has one row per
    non-best strategy: a = the best, b = it, differences a - b, Holm over that workload's rows.
    """
    gen = generations(res)
    runs = res.seed_runs()
    tune = res.tune_runs()
    budget = res.budget.set_index(["workload", "strategy"])
    summaries, comparisons = [], []
    for workload in sorted(runs["workload"].unique()):
        wr = runs[runs["workload"] == workload]
        rows = []
        for strategy, g in wr.groupby("strategy", sort=True):
            acc = g[PRIMARY].dropna().to_numpy()
            best_ep = g[OPTIMISTIC].dropna().to_numpy()
            lo, hi = stats.bootstrap_ci(acc, seed=seed)
            b = budget.loc[(workload, strategy)] if (workload, strategy) in budget.index else None
            td = tune[(tune["workload"] == workload) & (tune["strategy"] == strategy)]
            rows.append({
                "workload": workload, "strategy": strategy, "generation": gen.get(strategy, "?"),
                "n": int(acc.size), "mean": float(np.mean(acc)) if acc.size else np.nan,
                "sd": float(np.std(acc, ddof=1)) if acc.size > 1 else np.nan,
                "ci_low": lo, "ci_high": hi,
                "best_epoch_mean": float(np.mean(best_ep)) if best_ep.size else np.nan,
                "best_epoch_sd": float(np.std(best_ep, ddof=1)) if best_ep.size > 1 else np.nan,
                "tuned_config": _tuned_config(g["hparams"]),
                "trials_run": int(b["trials_run"]) if b is not None else len(td),
                "trials_planned": int(b["trials_planned"]) if b is not None else np.nan,
                "diverged": int((g["status"] == "diverged").sum()),
                "tune_diverged": int((td["status"] == "diverged").sum()),
            })
        df = pd.DataFrame(rows)
        # Rank by mean; a tie in the mean keeps the alphabetical order, so the best is well defined.
        df = df.sort_values(["mean", "strategy"], ascending=[False, True], kind="stable").reset_index(drop=True)
        df.insert(1, "rank", np.arange(1, len(df) + 1))
        best = df.loc[0, "strategy"]
        m = seed_matrix(res, workload)
        vs = _with_holm([_pair_rows(workload, best, s, m, seed) for s in df["strategy"][1:]])
        p_holm = dict(zip(vs["b"], vs["p_t_holm"], strict=True)) if not vs.empty else {}
        df["p_t_holm_vs_best"] = [p_holm.get(s, np.nan) for s in df["strategy"]]
        df["vs_best"] = [
            "best" if s == best else "untested" if not np.isfinite(p) else "tied" if p >= stats.ALPHA else "worse"
            for s, p in zip(df["strategy"], df["p_t_holm_vs_best"], strict=True)
        ]
        summaries.append(df)
        comparisons.append(vs)
    return pd.concat(summaries, ignore_index=True), pd.concat(comparisons, ignore_index=True)


def pairwise_all(res: Results, *, seed: int = 0) -> pd.DataFrame:
    """Every pair of strategies within each workload (a before b alphabetically), Holm over the workload's pairs."""
    out = []
    for workload in sorted(res.seed_runs()["workload"].unique()):
        m = seed_matrix(res, workload)
        rows = [_pair_rows(workload, a, b, m, seed) for a, b in combinations(sorted(m.columns), 2)]
        out.append(_with_holm(rows))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


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


def run_matrix(res: Results, strategy: str, workloads: list[str]) -> np.ndarray:
    """`(n_runs x n_workloads)` final test accuracies of one strategy, NaN where a seed is missing."""
    runs = res.seed_runs()
    runs = runs[runs["strategy"] == strategy]
    wide = runs.pivot_table(index="seed", columns="workload", values=PRIMARY, aggfunc="mean")
    return wide.reindex(columns=workloads).sort_index().to_numpy(dtype=float)


def iqm_and_profiles(res: Results, strategies: list[str], workloads: list[str], *, seed: int = 0,
                     taus: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interquartile mean with stratified-bootstrap CI per strategy, and performance profiles.

    Scores are raw final test accuracies (already on one [0, 1] scale), runs = seeds, tasks =
    workloads. Profiles are evaluated at `taus` (default 0, 0.01, ..., 1).
    """
    taus = np.linspace(0.0, 1.0, 101) if taus is None else np.asarray(taus, dtype=float)
    iqm_rows, prof_rows = [], []
    for s in strategies:
        scores = run_matrix(res, s, workloads)
        point, lo, hi = stats.iqm_stratified_ci(scores, seed=seed)
        iqm_rows.append({"strategy": s, "iqm": point, "ci_low": lo, "ci_high": hi,
                         "runs": int(np.isfinite(scores).sum())})
        prof, plo, phi = stats.performance_profile(scores, taus, seed=seed)
        prof_rows += [{"strategy": s, "tau": t, "fraction": f, "ci_low": a, "ci_high": b}
                      for t, f, a, b in zip(taus, prof, plo, phi, strict=True)]
    iqm = pd.DataFrame(iqm_rows).sort_values(["iqm", "strategy"], ascending=[False, True], kind="stable")
    return iqm.reset_index(drop=True), pd.DataFrame(prof_rows)


def convergence(res: Results, thresholds: list[float]) -> pd.DataFrame:
    """Epochs and seconds for seed-stage runs to first reach each test-accuracy threshold (paper's Table 2).

    One row per (workload, strategy, threshold): reached (runs that got there), n (runs),
    epochs_mean and seconds_mean over the runs that reached it (seconds = summed epoch times up to
    and including that epoch), and total_seconds_mean (whole run, all seeds).
    """
    runs = res.seed_runs()[["trial_id", "workload", "strategy", "wall_seconds"]]
    ep = res.epochs[res.epochs["trial_id"].isin(runs["trial_id"])].sort_values(["trial_id", "epoch"])
    ep = ep.assign(elapsed=ep.groupby("trial_id")["seconds"].cumsum())
    rows = []
    for (workload, strategy), g in runs.groupby(["workload", "strategy"], sort=True):
        curves = ep[ep["trial_id"].isin(g["trial_id"])]
        for thr in thresholds:
            hit = curves[curves["test_accuracy"] >= thr].groupby("trial_id").first()
            rows.append({"workload": workload, "strategy": strategy, "threshold": thr,
                         "reached": len(hit), "n": len(g),
                         "epochs_mean": float(hit["epoch"].mean()) if len(hit) else np.nan,
                         "seconds_mean": float(hit["elapsed"].mean()) if len(hit) else np.nan,
                         "total_seconds_mean": float(g["wall_seconds"].mean())})
    return pd.DataFrame(rows)


def tune_metric(res: Results, workload: str, strategy: str) -> str:
    """The trials column the pair's tune trials were ranked by: its budget row's ``selection``."""
    row = res.budget[(res.budget["workload"] == workload) & (res.budget["strategy"] == strategy)]
    return TUNE_METRICS[row["selection"].iloc[0] if len(row) else "final"]


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
                        "diverged": int((g["status"] == "diverged").sum())})
    errored = res.trials[(res.trials["stage"] == "tune") & (res.trials["status"] == "error")]
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


def config_text(hparams_json: str, digits: int = 3) -> str:
    """A compact `name=value` rendering of a JSON hyperparameter object for a table cell."""
    if not hparams_json:
        return ""
    try:
        hp = json.loads(hparams_json)
    except ValueError:
        return hparams_json
    parts = []
    for k in sorted(hp):
        v = hp[k]
        parts.append(f"{k}={v:.{digits}g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)
