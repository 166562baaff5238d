"""The sweep report's sections: each builds its blocks, CSV tables and figures from `reports.tables`.

Sections only arrange and word what `reports.tables` and `reports.stats` computed; numbers are printed
through `reports.formatting` and laid out in `reports.document` blocks. `reports.render.build_report`
puts them in order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports import stats, tables
from reports.analysis import MIN_WORKLOADS, Analysis
from reports.document import Section
from reports.formatting import ci, config, num, pct, pval, seeds
from reports.load import Results


def selection_words(res: Results) -> str:
    """How the sweep(s) picked each pair's configuration, from the budget table's ``selection``."""
    rules = sorted(set(res.budget["selection"]))
    return "; ".join(f"selection `{r}`: by `{tables.TUNE_METRICS[r]}`" for r in rules)


def header(out_dir: str, data: Analysis) -> Section:
    """Title, what was read, and the method in words."""
    res, thresholds, seed, margin = data.res, data.thresholds, data.seed, data.margin
    sec = Section(out_dir)
    sec.h(1, "lrsweep report")
    sweeps = ", ".join(f"`{d}`" for d in res.sweep_dirs)
    ids = ", ".join(f"`{s}`" for s in sorted(set(res.trials["sweep_id"])))
    sec.p(f"Sweep directories: {sweeps}. Sweep ids: {ids}. Spec hash(es): "
          + ", ".join(f"`{h}`" for h in res.spec_hashes) + ".")
    sec.p("**Primary metric**: final-epoch test accuracy of the seed-stage runs (the tuned configuration "
          "retrained on the full training split, one run per seed), in percent with one decimal. "
          "Runs with status ok or diverged count (a diverged run counts with its measured accuracy and is "
          "also listed under *diverged*); errored runs do not. The paper's optimistic metric, the best "
          "test accuracy over epochs, is shown in its own labelled column and is never used to rank. "
          f"Tuning chose configurations on the validation split only ({selection_words(res)}).")
    sec.p("**Statistics**: per strategy, the mean and SD over seeds and the 95% Student t interval of the mean "
          "(mean +- t(n-1) SD / sqrt(n)), the honest interval for a handful of seeds. Within a workload, strategies "
          "are compared paired by seed (runs with the same `seed` value): a paired t-test with its paired t "
          "interval of the mean difference (they agree: the interval excludes 0 exactly when p < 0.05), a "
          "Wilcoxon signed-rank test, and the two one-sided tests (TOST) of equivalence within "
          f"+-{100 * margin:g} pp (`--margin`). Each family of comparisons is Holm-corrected; effect sizes are "
          f"Cohen's d_z and Cliff's delta. Significance level {stats.ALPHA}, two-sided. Against the workload's best, "
          "a strategy is **worse** when the Holm-corrected paired t-test is significant, **equivalent** when the "
          "Holm-corrected TOST is (the difference is shown to lie within the margin), and **inconclusive** when "
          "neither is: the seeds cannot tell whether it is worse or as good. *Inconclusive* is not *the same*. "
          "The best is picked after the fact from the same runs, so the comparisons with it are post hoc; the "
          "Holm p over all pairs of the workload (`csv/pairwise_all.csv`, and the last p column of each comparison "
          "table) does not depend on that choice. The minimal detectable difference (MDD) is the true difference "
          f"the paired t-test would detect with {stats.POWER:.0%} power at the strictest level Holm applies in its "
          "family (0.05 / number of comparisons), given the observed SD of the differences; *seeds for margin* is "
          "the number of seeds that would detect a difference of the margin. Cross-workload aggregates use "
          "normalised scores (0 = chance, the majority-class rate of the test split; 1 = the workload's best mean) "
          f"with stratified bootstrap CIs (2000 resamples, seed {seed}). Convergence thresholds: "
          + ", ".join(f"{100 * t:g}%" for t in thresholds) + ".")
    if res.mixed:
        sec.h(2, "Warning: mixed results (--allow-mixed)")
        sec.p("These results were combined although they differ; comparisons across the differing parts "
              "are not fair-budget comparisons:")
        sec.ul(res.mixed)
    if res.warnings:
        sec.h(2, "Warnings")
        sec.ul(res.warnings)
    return sec


def _lr_fraction(lo: float, hi: float) -> str:
    """The final-LR / peak fraction of a pair's seed runs: one number, or the range when runs differ."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


def workload_sections(out_dir: str, data: Analysis) -> Section:
    """Per workload: the ranked summary table, the power statement and the comparisons with the best."""
    summary, vs_best, margin = data.summary, data.vs_best, data.margin
    sec = Section(out_dir)
    sec.h(2, "Results per workload")
    sec.p("Ranked by mean final test accuracy. **best** marks the highest mean. Against the best: *worse* = "
          "Holm-corrected paired t-test significant; *equivalent* = Holm-corrected TOST significant, the "
          f"difference lies within +-{100 * margin:g} pp; *inconclusive* = neither, these seeds cannot tell; "
          "*untested* = fewer than two paired seeds or identical differences, so no test was possible. MDD = "
          "minimal detectable difference against the best (pp, see the header). Final LR / peak = the top layer "
          "group's LR after the last epoch over its peak LR, per seed run (a cyclic schedule far above 0 ended "
          "mid-cycle). Trials = tuning trials run / planned; diverged = diverged seed runs / seed runs.")
    for workload, s in summary.groupby("workload", sort=True):
        sec.h(3, f"{workload} ({s['regime'].iloc[0]})")
        if s["n"].max() < 2:
            sec.p(f"**Only one seed per strategy on {workload}**: no standard deviation, confidence interval "
                  "or significance test is possible; the numbers below are single runs and the ranking is "
                  "not evidence of a difference.")
        rows = []
        for r in s.itertuples():
            name = f"**{r.strategy}**" if r.outcome == "best" else r.strategy
            rows.append({
                "rank": r.rank, "strategy": name, "gen": r.generation, "n": r.n, "mean %": pct(r.mean),
                "SD": pct(r.sd), "95% CI (t)": ci(r.ci_low, r.ci_high),
                "best-epoch % (paper, optimistic)": pct(r.best_epoch_mean),
                "vs best": r.outcome, "Holm p (t)": pval(r.p_t_holm_vs_best),
                "Holm p (TOST)": pval(r.p_tost_holm_vs_best), "MDD (pp)": num(100 * r.mdd_vs_best, 2),
                f"seeds for {100 * margin:g} pp": seeds(r.seeds_for_margin, stats.MAX_SEEDS),
                "final LR / peak": _lr_fraction(r.lr_fraction_min, r.lr_fraction_max),
                "trials": f"{r.trials_run}/{r.trials_planned}", "diverged": f"{r.diverged}/{r.n}",
                "tuned configuration": config(r.tuned_config),
            })
        sec.table(pd.DataFrame(rows))
        v = vs_best[vs_best["workload"] == workload] if not vs_best.empty else vs_best
        if not v.empty:
            sec.p(tables.power_statement(v, margin))

        if v.empty:
            continue
        sec.h(4, f"{workload}: paired comparisons with the best ({s.iloc[0]['strategy']})")
        sec.p(f"Differences are best minus other, in percentage points, over the n seeds both ran; the interval "
              f"is the paired t interval. Holm correction over these {len(v)} comparisons, separately for each "
              "test; *Holm p (t), all pairs* is the same t-test within all pairs of the workload. d_z = mean "
              "difference / SD of the differences. The exact two-sided Wilcoxon test cannot give p below 2/2^n "
              "(0.0625 for n = 5); such rows say so.")
        rows = []
        for r in v.itertuples():
            rows.append({
                "comparison": f"{r.a} - {r.b}", "n": r.n, "diff (pp)": num(100 * r.mean_diff, 2),
                "95% CI (pp)": "n/a" if not np.isfinite(r.diff_ci_low)
                else f"[{100 * r.diff_ci_low:.2f}, {100 * r.diff_ci_high:.2f}]",
                "t": num(r.t), "p (t)": pval(r.p_t), "Holm p (t)": pval(r.p_t_holm),
                "W": num(r.w, 1), "p (W)": pval(r.p_w), "Holm p (W)": pval(r.p_w_holm),
                "Holm p (TOST)": pval(r.p_tost_holm), "outcome": r.outcome,
                "MDD (pp)": num(100 * r.mdd, 2),
                f"seeds for {100 * margin:g} pp": seeds(r.seeds_for_margin, stats.MAX_SEEDS),
                "d_z": num(r.cohen_d), "Cliff's delta": num(r.cliffs_delta),
                "Holm p (t), all pairs": pval(r.p_t_holm_all), "note": r.note,
            })
        sec.table(pd.DataFrame(rows))
    sec.p("All pairs within each workload (Holm over that workload's pairs) are in `csv/pairwise_all.csv`; each "
          "seed run's final LR fraction is in `csv/final_lr.csv`.")
    return sec


def across_section(out_dir: str, data: Analysis) -> tuple[Section, pd.DataFrame]:
    """The cross-workload section, and the average ranks the generations section reads."""
    sec = Section(out_dir)
    sec.h(2, "Across workloads")
    a = data.across
    ranks, fr, nemenyi, dropped, by_regime = a.ranks, a.friedman, a.nemenyi, a.dropped, a.by_regime
    sec.csvs.update(ranks=ranks, nemenyi=nemenyi.reset_index(names="strategy"), friedman=by_regime)
    if dropped:
        sec.p("Left out of the cross-workload analysis for missing a workload: " + ", ".join(dropped) + ".")
    table = ranks.rename(columns={"avg_rank": "average rank", "generation": "gen"})
    sec.table(table.assign(**{c: table[c].map(lambda x: num(x, 2)) for c in table.columns[2:]}))
    if np.isfinite(fr.p):
        sec.p(f"Friedman test (scipy.stats.friedmanchisquare) over {fr.n_workloads} workloads and "
              f"{fr.n_strategies} strategies: chi2 = {fr.statistic:.2f}, df = {fr.n_strategies - 1}, "
              f"p = {pval(fr.p)}. Nemenyi post-hoc (scikit-posthocs) critical difference at 0.05: "
              f"**{fr.cd:.2f} ranks for {fr.n_strategies} strategies on {fr.n_workloads} workloads** (average ranks "
              f"run from 1 to {fr.n_strategies}); strategies whose average ranks differ by less are joined in the "
              "diagram, which means not separated, not equal. " + (fr.note + "." if fr.note else ""))
    else:
        sec.p(f"No Friedman test: {fr.note}. The average ranks above only order the means; they are no "
              "evidence that one strategy is better than another.")
    sec.p("The same test over all workloads and within each regime (scratch: trained from scratch; finetune: "
          "a pretrained model fine-tuned):")
    sec.table(pd.DataFrame({"group": by_regime["group"], "workloads": by_regime["workloads"],
                            "strategies": by_regime["n_strategies"], "chi2": by_regime["chi2"].map(num),
                            "p": by_regime["p"].map(pval), "Nemenyi CD (ranks)": by_regime["nemenyi_cd"].map(num),
                            "note": by_regime["note"]}))
    runs, skipped, workloads = a.normalised, a.skipped, a.workloads
    if skipped:
        sec.p("Not normalisable (no chance level recorded, or no strategy above it), so left out of the "
              "aggregates below: " + ", ".join(skipped) + ".")
    if a.iqm is not None:
        iqm = a.iqm
        sec.csvs["iqm"], sec.csvs["performance_profiles"] = iqm, a.profiles
        sec.csvs["normalised"] = runs[["workload", "strategy", "seed", "trial_id", tables.PRIMARY, "chance_accuracy",
                                   "normalised"]].sort_values(["workload", "strategy", "seed"])
        sec.h(3, "Normalised IQM and performance profiles")
        sec.p("Scores are normalised per workload: (accuracy - chance) / (best mean - chance), chance being the "
              "majority-class rate of the test split, so 0 = chance and 1 = the workload's best strategy mean, "
              "and every workload counts the same. Normalised IQM = per workload, the interquartile mean of the "
              "strategy's seed runs (25% trimmed each side; nothing is trimmed from 3 runs), then the mean over "
              "workloads. Unlike rliable's IQM of all runs pooled, it cannot trim a whole workload away, so a "
              "drop on any one workload lowers it. 95% percentile CI from 2000 stratified bootstrap resamples "
              "(runs resampled within each workload).")
        sec.table(pd.DataFrame({"strategy": iqm["strategy"], "normalised IQM": iqm["iqm"].map(lambda x: num(x, 3)),
                                "95% CI": [f"[{num(a, 3)}, {num(b, 3)}]"
                                           for a, b in zip(iqm["ci_low"], iqm["ci_high"], strict=True)],
                                "runs": iqm["runs"]}))
    else:
        sec.p(f"Normalised IQM and performance profiles need at least {MIN_WORKLOADS} normalisable workloads "
              f"(have {len(workloads)}).")
    return sec, ranks


def generation_section(out_dir: str, summary: pd.DataFrame, ranks: pd.DataFrame) -> Section:
    sec = Section(out_dir)
    sec.h(2, "Generations")
    g = tables.by_generation(summary, ranks)
    sec.csvs["generations"] = g
    sec.p("The paper's generations (1 to 5, and SOTA). Per workload, the generation's best strategy and its "
          "mean final test accuracy; mean average rank over the generation's strategies.")
    out = pd.DataFrame({"generation": g["generation"], "strategies": g["strategies"],
                        "mean average rank": g["mean_avg_rank"].map(num)})
    for w in sorted(summary["workload"].unique()):
        out[w] = [f"{b} {pct(m)}" if isinstance(b, str) else "n/a"
                  for b, m in zip(g.get(f"{w}_best", []), g.get(f"{w}_mean", []), strict=True)]
    sec.table(out)
    return sec


def convergence_section(out_dir: str, data: Analysis) -> Section:
    """Epochs and seconds to each test-accuracy threshold (the paper's Table 2)."""
    sec = Section(out_dir)
    sec.h(2, "Convergence")
    conv = data.convergence
    sec.csvs["convergence"] = conv
    sec.p("Epochs and seconds until a seed run's test accuracy first reaches each threshold, mean over the "
          "seeds that reached it (k/n shown when not all did); total = mean wall time of a whole run. "
          "The form of the paper's Table 2.")
    for workload, c in conv.groupby("workload", sort=True):
        sec.h(3, workload)
        rows = []
        for strategy, g in c.groupby("strategy", sort=True):
            row = {"strategy": strategy}
            for r in g.itertuples():
                cell = "not reached" if r.reached == 0 else f"{r.epochs_mean:.1f} ep, {r.seconds_mean:.1f} s"
                if 0 < r.reached < r.n:
                    cell += f" ({r.reached}/{r.n})"
                row[f"{100 * r.threshold:g}%"] = cell
            row["total (s)"] = f"{g['total_seconds_mean'].iloc[0]:.1f}"
            rows.append(row)
        sec.table(pd.DataFrame(rows))
    return sec


def budget_section(out_dir: str, data: Analysis) -> Section:
    """Best-so-far and expected-max validation accuracy against tuning trials, per pair."""
    res = data.res
    sec = Section(out_dir)
    sec.h(2, "Tuning budget")
    curves, summary = data.budget_curves, data.budget_summary
    sec.csvs["budget_curves"], sec.csvs["budget_summary"] = curves, summary
    metrics = ", ".join(f"`{m}`" for m in sorted(summary["metric"].unique())) if not summary.empty else "-"
    sec.p(f"Best validation accuracy so far ({metrics}, the score the sweep selected by) against tuning trials, "
          "in trial order, "
          "and the expected best of k trials drawn at random without replacement from the trials run "
          "(after Dodge et al. 2019). A best found only in the last trials, or an expected-max curve still "
          "rising at the end, suggests the budget was not enough.")
    for workload, s in summary.groupby("workload", sort=True):
        sec.h(3, workload)
        c = curves[curves["workload"] == workload]
        planned = res.budget.set_index(["workload", "strategy"])["trials_planned"]
        rows = []
        for r in s.itertuples():
            em = c[c["strategy"] == r.strategy].set_index("trials")["expected_max"]
            half = max(1, r.trials // 2)
            rows.append({"strategy": r.strategy,
                         "trials run / planned": f"{r.trials}/{planned.get((workload, r.strategy), '?')}",
                         "best val %": pct(r.best_val), "best at trial": r.best_at_trial,
                         "E[max] 1 trial %": pct(em.get(1, math.nan)),
                         f"E[max] {half} trials %": pct(em.get(half, math.nan)),
                         "diverged": r.diverged, "errored": r.errored})
        sec.table(pd.DataFrame(rows))
    return sec
