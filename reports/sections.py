"""The sweep report's sections: each builds its blocks, CSV tables and figures from `reports.tables`.

Sections only arrange and word what `reports.tables` and `lrstats.stats` computed; numbers are printed
through `reports.formatting` and laid out in `reports.document` blocks. `reports.render.build_report`
puts them in order.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from lrstats import stats
from reports import checks, edges, tables, two_level
from reports import tuning_curves as tuning
from reports.analysis import MIN_WORKLOADS, Analysis
from reports.document import Section
from reports.formatting import ci, config, interval, mean_ci, num, pct, pp, pval, seeds, value
from reports.load import Results
from reports.seed_claims import (
    mcb_line,
    selection_lines,
    selection_rows,
    selection_warnings,
    study_selection_lines,
    study_selection_rows,
    study_selection_warnings,
)
from reports.verdict import WorkloadVerdict


def selection_words(res: Results) -> str:
    """How the sweep(s) picked each pair's configuration, from the budget table's ``selection``."""
    rules = sorted(set(res.budget["selection"]))
    return "; ".join(f"selection `{r}`: by `{tables.TUNE_METRICS[r]}`" for r in rules)


def header(out_dir: str, data: Analysis) -> Section:
    """The title and, in one line, what was read."""
    res = data.res
    sec = Section(out_dir)
    sec.h(1, "lrsweep report")
    sweeps_ = ", ".join(f"`{d}`" for d in res.sweep_dirs)
    ids = ", ".join(f"`{s}`" for s in sorted(set(res.trials["sweep_id"])))
    sec.p(f"Sweep {ids} from {sweeps_}. Accuracies are final-epoch test accuracy of the seed runs, in percent; "
          "the method is described at the end.")
    return sec


def method_section(out_dir: str, data: Analysis) -> Section:
    """The method in words: metric, tests, families, power, normalisation."""
    res, seed, margin = data.res, data.seed, data.margin
    sec = Section(out_dir)
    sec.h(2, "Method")
    sec.p("**Primary metric**: final-epoch test accuracy of the seed-stage runs (the tuned configuration "
          "retrained on the full training split, one run per seed), in percent with one decimal. "
          "Runs with status ok or diverged count (a diverged run counts with its measured accuracy and is "
          "also counted as diverged); errored runs do not. The paper's optimistic metric, the best "
          "test accuracy over epochs, is shown in its own labelled column and is never used to rank. "
          f"Tuning chose configurations on the validation split only ({selection_words(res)}).")
    sec.p("**Statistics**: per strategy, the mean and SD over seeds and the 95% Student t interval of the mean "
          "(mean +- t(n-1) SD / sqrt(n)), the honest interval for a handful of seeds. Within a workload, strategies "
          "are compared paired by seed (runs with the same `seed` value): a paired t-test with its paired t "
          "interval of the mean difference (they agree: the interval excludes 0 exactly when p < 0.05), and the "
          f"two one-sided tests (TOST) of equivalence within +-{100 * margin:g} pp (`--margin`). The exact Wilcoxon "
          f"signed-rank test (conditional on tied ranks; the normal approximation above {stats.WILCOXON_EXACT_MAX} "
          f"pairs) is shown only where the number of seeds lets it reach p < {stats.ALPHA} (6 or more). "
          f"Significance level {stats.ALPHA}, two-sided, Holm-corrected within each family. "
          "**The verdict uses the family of all pairs of a workload**: it does not depend on which strategy the "
          "data put on top, so the chance of calling any strategy worse when none is stays at most 5%. The "
          "comparisons with the observed best are a second family; the best is picked after the fact from the "
          "same runs, so a result there alone is labelled post hoc. Worse = Holm-corrected paired t-test "
          "significant; equivalent = Holm-corrected TOST significant (the difference is shown to lie within the "
          "margin); inconclusive = neither: the seeds cannot tell whether it is worse or as good, which is not "
          "the same as equal. Ties in the mean share the average of their ranks. Effect sizes are the paired "
          "differences in pp with their t intervals; standardised effects (d_z) and unpaired ones (Cliff's "
          "delta) are not shown. The minimal detectable difference (MDD) is the true difference "
          f"the paired t-test would detect with {stats.POWER:.0%} power at the strictest level Holm applies in its "
          "family (0.05 / number of comparisons), given the observed SD of the differences; seeds for margin is "
          "the number of seeds that would detect a difference of the margin. Cross-workload aggregates use "
          "normalised scores (0 = chance, the majority-class rate of the test split; 1 = the workload's best mean) "
          f"with stratified bootstrap CIs (2000 resamples, seed {seed}). " + _threshold_words(data))
    return sec


def _threshold_words(data: Analysis) -> str:
    if data.thresholds_relative:
        return ("Convergence: epochs until a run first reaches " + ", ".join(f"{100 * t:g}%" for t in data.thresholds)
                + " of its workload's best mean final accuracy.")
    return "Convergence thresholds (test accuracy): " + ", ".join(f"{100 * t:g}%" for t in data.thresholds) + "."


def _lr_fraction(lo: float, hi: float, restarted: int = 0) -> str:
    """The last step's LR / peak over a pair's seed runs: one number, or the range when runs differ."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    text = f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"
    return text + (" (restart)" if restarted else "")


def _mean_sd(mean: float, sd: float) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.2f}" + (f" +- {sd:.2f}" if np.isfinite(sd) else "")


def workload_sections(out_dir: str, data: Analysis) -> Section:
    """Per workload: the ranked summary table, the power statement and the comparisons with the best."""
    summary, vs_best, margin = data.summary, data.vs_best, data.margin
    sec = Section(out_dir)
    sec.h(2, "Results per workload")
    sec.p("Ranked by mean final test accuracy (equal means share a rank). vs best = the comparison with the "
          "observed best (post hoc, see the verdict for the all-pairs claims): worse = Holm-corrected paired t-test "
          f"significant; equivalent = Holm-corrected TOST significant, the difference lies within +-{100 * margin:g} "
          "pp; inconclusive = neither, these seeds cannot tell; untested = fewer than two paired seeds or "
          "identical differences. Holm p (all pairs) = the same t-test within all pairs of the workload, the "
          "family the verdict uses. MDD = minimal detectable difference against the best (pp). LR at last step / "
          "peak = the top layer group's LR in the run's last step over its peak LR (restart: the schedule "
          "restarted inside the last epoch). s / run = wall seconds per seed run (mean +- SD); grad evals / run = "
          "gradient evaluations per seed run (SAM-style updates count two per step). Trials = tuning trials run / "
          "planned; diverged = diverged seed runs / seed runs.")
    for workload, s in summary.groupby("workload", sort=True):
        sec.h(3, f"{workload} ({s['regime'].iloc[0]})")
        if s["n"].max() < 2:
            sec.p(f"**Only one seed per strategy on {workload}**: no standard deviation, confidence interval "
                  "or significance test is possible; the numbers below are single runs and the ranking is "
                  "not evidence of a difference.")
        v = vs_best[vs_best["workload"] == workload] if not vs_best.empty else vs_best
        p_all = dict(zip(v["b"], v["p_t_holm_all"], strict=True)) if len(v) else {}
        rows = []
        for r in s.itertuples():
            name = f"**{r.strategy}**" if r.outcome == "best" else r.strategy
            rows.append({
                "rank": f"{r.rank:g}", "strategy": name, "gen": r.generation, "n": r.n, "mean %": pct(r.mean),
                "SD": pct(r.sd), "95% CI (t)": ci(r.ci_low, r.ci_high),
                "best-epoch % (paper, optimistic)": pct(r.best_epoch_mean),
                "vs best (post hoc)": r.outcome, "Holm p (t)": pval(r.p_t_holm_vs_best),
                "Holm p (all pairs)": pval(p_all.get(r.strategy, math.nan)),
                "Holm p (TOST)": pval(r.p_tost_holm_vs_best), "MDD (pp)": pp(r.mdd_vs_best),
                f"seeds for {100 * margin:g} pp": seeds(r.seeds_for_margin, stats.MAX_SEEDS),
                "LR at last step / peak": _lr_fraction(r.lr_fraction_min, r.lr_fraction_max, r.lr_restarted),
                "s / run": _mean_sd(r.wall_mean, r.wall_sd), "grad evals / run": num(r.grad_evals_mean, 0),
                "trials": f"{r.trials_run}/{r.trials_planned}", "diverged": f"{r.diverged}/{r.n}",
                "tuned configuration": config(r.tuned_config),
            })
        sec.table(pd.DataFrame(rows))
        if not v.empty:
            adaptive = (" These figures are about the paired t-tests of this section, run after the fact on the seeds "
                        "the selection design gave each strategy; the selection itself needs no such number of "
                        "seeds, and its guarantee is in the verdict." if workload in data.selections else "")
            if _study_selection(data, workload) is not None:
                adaptive = (" These figures are about the paired t-tests of this section, run after the fact on the "
                            "studies the selection design over studies gave each strategy; the selection itself "
                            "needs no such number, and its guarantee is in the verdict.")
            sec.p(tables.power_statement(v, margin) + adaptive)
        split = test_split_text(data, workload)
        if split:
            sec.p(split)
        over_rows = two_level_rows(data, workload)
        if over_rows is not None:
            sec.h(4, f"{workload}: over seeds and test rows")
            sec.p("From each seed run's predictions per test row (`predictions` table): the leader's accuracy and "
                  "each difference leader - other, paired by seed and by test row, with the 95% interval over seeds "
                  "alone (the test rows held fixed, as above) and over seeds and test rows (a fresh test sample "
                  "drawn too; two-way random-effects variance, Welch-Satterthwaite t). Rows' share = the part of "
                  "the variance the test sample adds. Holm p = the two-level t-test, Holm over all pairs of the "
                  "workload (the verdict's family). Claim: whether the verdict's claim about the pair survives.")
            sec.table(over_rows)

        if v.empty:
            continue
        sec.h(4, f"{workload}: paired comparisons with the best ({s.iloc[0]['strategy']})")
        wilcoxon = bool((v["min_p_w"] <= stats.ALPHA).any())
        sec.p(f"Differences are best minus other, in percentage points, over the n seeds both ran; the interval "
              f"is the paired t interval. Holm correction over these {len(v)} comparisons (post hoc: the best was "
              "picked from the same runs); Holm p (t), all pairs is the same t-test within all pairs of the "
              "workload, the family the verdict uses. "
              + ("" if wilcoxon else f"No Wilcoxon column: with {int(v['n'].max())} seeds the exact signed-rank "
                 f"test cannot give p below {num(float(v['min_p_w'].min()), 3)}, so it could never reach "
                 f"{stats.ALPHA}."))
        rows = []
        for r in v.itertuples():
            row = {"comparison": f"{r.a} - {r.b}", "n": r.n, "diff (pp)": pp(r.mean_diff),
                   "95% CI (pp)": interval(r.diff_ci_low, r.diff_ci_high, digits=2),
                   "t": num(r.t), "p (t)": pval(r.p_t), "Holm p (t)": pval(r.p_t_holm)}
            if wilcoxon:
                reach = r.min_p_w <= stats.ALPHA
                row.update({"W": num(r.w, 1) if reach else "-", "Holm p (W)": pval(r.p_w_holm) if reach else "-"})
            row.update({"Holm p (TOST)": pval(r.p_tost_holm), "outcome": r.outcome, "MDD (pp)": pp(r.mdd),
                        f"seeds for {100 * margin:g} pp": seeds(r.seeds_for_margin, stats.MAX_SEEDS),
                        "Holm p (t), all pairs": pval(r.p_t_holm_all)})
            rows.append(row)
        sec.table(pd.DataFrame(rows))
    sec.p("All pairs within each workload (Holm over that workload's pairs) are in `csv/pairwise_all.csv`; each "
          "seed run's final LR fraction is in `csv/final_lr.csv`.")
    return sec


def claimed(data: Analysis, workload: str) -> WorkloadVerdict:
    """The workload's verdict with the claims the design that was run makes: a fixed design's (shown worse,
    shown equivalent: the all-pairs tests); under the selection design each elimination is the claim that
    the strategy trails the one it fell behind, and the t-tests, run after the fact, claim nothing."""
    v = data.verdicts[workload]
    over_studies = _study_selection(data, workload)
    if workload not in data.selections and over_studies is None:
        return v
    d = over_studies.decision if over_studies is not None else data.selections[workload].decision
    behind = {name: (by,) for r in (d.rounds if d else ()) for name, by in r.eliminated.items()}
    return replace(v, worse=behind, equivalent=())


def _study_selection(data: Analysis, workload: str):
    """The workload's ``StudyClaims`` when it ran the selection design over studies (else None)."""
    claims = data.studies.get(workload)
    return claims if claims is not None and claims.decision is not None else None


def two_level_rows(data: Analysis, workload: str) -> pd.DataFrame | None:
    """The workload's rows of `Analysis.two_level` as printed: the leader, then its comparisons; None
    without predictions."""
    t = data.two_level
    if t.empty or workload not in set(t["workload"]):
        return None
    t = t[t["workload"] == workload]
    v = claimed(data, workload)
    leader = t.iloc[0]["a"]
    rows = []
    for r in t[(t["a"] == leader)].itertuples():
        name = f"**{leader}**" if not r.b else f"{r.a} - {r.b}"
        rows.append({"strategy / comparison": name, "seeds": r.seeds, "rows": r.rows,
                     "accuracy % / diff (pp)": pp(r.mean),
                     "95% CI, seeds only": interval(r.seed_ci_low, r.seed_ci_high, digits=2),
                     "95% CI, seeds and test rows": interval(r.ci_low, r.ci_high, digits=2),
                     "rows' share": num(r.rows_share), "Holm p (all pairs)": pval(r.p_holm) if r.b else "",
                     "claim": _claim(v, leader, r, "eliminated" if workload in data.selections else "worse")})
    return pd.DataFrame(rows)


def _claim(v: WorkloadVerdict, leader: str, r, behind: str = "worse") -> str:
    """The verdict's claim about (leader, other), ``behind`` naming a claim that other trails the leader
    (a fixed design's "worse", the selection's "eliminated"), and whether it survives the test sample."""
    if not r.b:
        return ""
    if leader in v.worse.get(r.b, ()):
        return f"{behind}: " + two_level.claim_words("worse", r.p_holm)
    if r.b in v.equivalent:
        return "equivalent: " + two_level.claim_words("equivalent", r.p_tost_holm)
    return "no claim over seeds"


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
    if data.thresholds_relative:
        sec.p("Epochs and seconds until a seed run's test accuracy first reaches each share of its workload's "
              "best strategy mean final accuracy (so 99% = within 1% of the best final result), mean over the "
              "seeds that reached it (k/n shown when not all did); total = mean wall time of a whole run. "
              "`--thresholds` sets absolute accuracies instead (the paper's Table 2).")
    else:
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
                label = f"{100 * r.threshold:g}% of best" if data.thresholds_relative else f"{100 * r.threshold:g}%"
                row[f"{label} ({pct(r.level)}%)" if data.thresholds_relative else label] = cell
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


def tuning_curves_section(out_dir: str, data: Analysis) -> Section:
    """Per workload, each strategy's tuning curve at 1 draw, at half the budget and at the budget, whether it
    is still rising there, and in one line why a pair has no curve (`reports.tuning_curves`)."""
    sec = Section(out_dir)
    sec.h(2, "Tuning curves")
    curves, summary = data.tuning_curves, data.tuning_summary
    sec.csvs["tuning_curves"], sec.csvs["tuning_curves_summary"] = curves, summary
    m = f"{100 * data.margin:g} pp"
    conf = f"{tuning.CONFIDENCE:.0%}"
    sec.p("The expected best validation accuracy (the score the sweep selected by) of n configurations drawn "
          "independently from a strategy's search space, estimated from the tune trials already run: at n = 1 the "
          "draws' mean, at n = N (all of them) their best, in between the mean best over every n-subset (Tang et "
          f"al. 2020). The band is simultaneous at {conf} (Lourie et al. 2024, the opda package): with that "
          "probability the true curve lies inside it at every n at once, if the draws are independent. Its upper "
          "edge nears 100% unless there are many draws (a few draws cannot exclude that a small share of the "
          "space scores near 100%, and an expected best weighs that share): the lower edge is the informative "
          "one, the curve is at least that high. Trial 0 "
          "(the canonical configuration) is not a draw and is left out; so are TPE's trials after its random "
          "start-up, which are chosen from earlier scores. Budget b = the draws per study at the budget (its trials "
          f"minus trial 0). **Rising**: the estimated gain of the budget's last doubling, E[best of b] - E[best of "
          f"b // 2], exceeds {m} (the equivalence margin); shown = the band's lower edge at b also lies above the "
          "estimate at b // 2. A curve still rising at b says more trials would likely have raised that "
          "strategy's tuned score, so its rank may be one of budgets, not of strategies. Figures: "
          "`tuning_curves_<workload>`; the curves in `csv/tuning_curves.csv`.")
    if summary.empty:
        sec.p("No budget rows: no tuning curve.")
        return sec
    for workload, s in summary.groupby("workload", sort=True):
        sec.h(3, workload)
        drawn = s[s["note"] == ""]
        notes = s[s["note"] != ""]
        if not drawn.empty:
            sources = sorted(set(drawn["draws_note"]))
            sec.p("Draws: " + "; ".join(sources) + ".")
            budgets = sorted({int(x) for x in drawn["budget_draws"]})
            # One budget per workload unless --allow-mixed combined others: then b is a column of its own.
            b = budgets[0] if len(budgets) == 1 else None
            half = f"{b // 2}" if b is not None and b >= 2 else "b // 2"
            at_b = f"b = {b}" if b is not None else "b"
            nxt = np.isfinite(pd.to_numeric(drawn["gain_next"], errors="coerce")).any()
            rows = []
            for r in drawn.itertuples():
                row = {"strategy": r.strategy, "draws": r.draws} | ({} if b is not None else {"b": r.budget_draws})
                row |= {"E[best] 1 draw %": pct(r.expected_1), f"E[best] {half} draws %": pct(r.expected_half),
                        f"E[best] {at_b} draws % [{conf} band]": mean_ci(r.expected_budget, r.low_budget,
                                                                          r.high_budget),
                        "gain of last doubling (pp)": pp(r.gain),
                        "rising": ("yes, shown" if r.shown else "yes") if r.rising else
                        ("no" if np.isfinite(r.gain) else "n/a")}
                if nxt:
                    row[f"gain from b to {2 * b} (pp)" if b is not None else "gain from b to 2b (pp)"] = pp(r.gain_next)
                rows.append(row)
            sec.table(pd.DataFrame(rows))
        for why, g in notes.groupby("note", sort=True):
            sec.p(f"No tuning curve for {_names(g['strategy'])}: {why}.")
    return sec


def tuning_warning_lines(data: Analysis) -> list[str]:
    """One warning per workload naming each strategy whose tuning curve is still rising at the budget."""
    s = data.tuning_summary
    if s.empty:
        return []
    lines = []
    for workload, g in s[s["rising"].astype(bool)].groupby("workload", sort=True):
        b = sorted({int(x) for x in g["budget_draws"]})
        each = "; ".join(f"{r.strategy} +{pp(r.gain)} pp from {int(r.half)} to {int(r.budget_draws)} draws"
                         + (f" (the {tuning.CONFIDENCE:.0%} band's lower edge at {int(r.budget_draws)} is above "
                            f"the estimate at {int(r.half)})" if r.shown else "")
                         for r in g.sort_values("gain", ascending=False).itertuples())
        lines.append(f"{workload}: tuning curves still rising at the budget of {'/'.join(map(str, b))} draws per "
                     f"study (estimated gain of the last doubling above the {100 * data.margin:g} pp margin; "
                     f"section Tuning curves): {each}. More trials would likely raise these strategies' tuned "
                     "scores, so their ranks at this budget may not hold at a larger one.")
    return lines





# ---- the first screen: verdict, protocol, warnings --------------------------------------------

def _names(items) -> str:
    return ", ".join(items)


def _leaders_text(v: WorkloadVerdict, adaptive: bool = False, unit: str = "seeds") -> str:
    lead = v.leaders
    what = "; ".join(f"**{x.strategy}** {mean_ci(x.mean, x.ci_low, x.ci_high)} %" for x in lead)
    n = f"{lead[0].n} {unit}" if len({x.n for x in lead}) == 1 else f"{unit} differ"
    tie = " (equal means share the lead)" if len(lead) > 1 else ""
    kind = f"t interval; {unit} chosen adaptively: not an exact 95% interval" if adaptive else "95% t interval"
    return f"Highest mean final test accuracy{tie}: {what} (mean [{kind}], {n})."


def studies_line(res) -> str | None:
    """What a multi-study sweep's claims are over (None for one study): the study, so each covers the tuning."""
    if not res.studies:
        return None
    b = res.budget
    studies = "/".join(str(int(x)) for x in sorted(b["studies"].dropna().unique()))
    per = res.replicates()["n_seeds"]
    seeds_ = str(int(per.min())) if per.min() == per.max() else f"{int(per.min())}-{int(per.max())}"
    adaptive = "seed_design" in b and (b["seed_design"] == "study_selection").any()
    given = (f"independent studies of the same budget, {studies} of them as the selection design over studies gave "
             "more to the strategies still in contention" if adaptive else
             f"{studies} independent studies of the same budget")
    return (f"**Unit of replication: the tuning study.** Every strategy was tuned in {given} "
            "(study j: the same sampler seed and validation split for every strategy), and each "
            f"study's chosen configuration was retrained with {seeds_} seeds; a strategy's score in a study is the "
            "mean of those seeds. Every mean, interval, test and subset below is over studies, so each claim covers "
            "the tuning's chance as well as the seeds': it is about the strategies as tuned by this protocol, not "
            "about one configuration. The test rows are held fixed unless a line says otherwise.")


def verdict_lines(v: WorkloadVerdict, seeds_needed: int | None, mcb: str | None = None,
                  unit: str = "seeds") -> list[str]:
    """The plain-words claims on one workload, each no stronger than its test; ``mcb`` (the subset that
    could be the best, `reports.seed_claims.mcb_line`) takes the place of the post hoc hint."""
    others = v.strategies - len(v.leaders)
    m = f"{100 * v.margin:g} pp"
    lines = []
    if v.worse:
        shown = "; ".join(f"{s} (below {_names(w)})" for s, w in v.worse.items())
        lines.append(f"**Shown worse** ({len(v.worse)} of {others}; paired t-test, Holm over all {v.pairs} pairs, a "
                     f"family that does not depend on which strategy came out on top): {shown}.")
    else:
        lines.append(f"**None shown worse**: no paired t-test is significant after Holm over all {v.pairs} pairs.")
    if mcb:
        lines.append(mcb)
    elif v.post_hoc_worse:
        lines.append(f"Post hoc only, significant against the observed best but not over all pairs (the best was "
                     f"picked from these same runs, so this is a hint, not a finding): {_names(v.post_hoc_worse)}.")
    if v.equivalent:
        lines.append(f"**Shown equivalent** to the leader within +-{m} (TOST, Holm over all pairs): "
                     f"{_names(v.equivalent)}.")
    else:
        lines.append(f"None shown equivalent to the leader within +-{m} (TOST, Holm over all pairs).")
    if v.inconclusive:
        mdd = np.array([x for x in v.mdd.values() if np.isfinite(x)])
        # The verdict's family is all pairs, so its MDD is at Holm's strictest all-pairs level; the
        # tables' MDD against the best is at the smaller family's level and is lower.
        level = f"0.05/{v.pairs}"
        need = (f" They would have to differ from the leader by about {pp(float(np.median(mdd)))} pp (median "
                f"minimal detectable difference at the all-pairs level {level}, {pp(mdd.min())}-{pp(mdd.max())} "
                f"pp) for these {unit} to show it with 80% power" if mdd.size else "")
        more = f"; showing +-{m} at that level would take about {seeds_needed} {unit}" if seeds_needed else ""
        which = f"**Inconclusive**: {len(v.inconclusive)} of {others} ({_names(v.inconclusive)})"
        lines.append(f"{which}: neither shown worse nor shown equivalent; not the same as equal.{need}{more}."
                     if need else f"{which}: neither shown worse nor shown equivalent; not the same as equal.")
    if v.untested:
        lines.append(f"Untested (fewer than two paired {unit} or no spread): {_names(v.untested)}.")
    return lines


def over_rows(v: WorkloadVerdict, table: pd.DataFrame, over_seeds,
              unit: str = "seeds") -> tuple[list[str], pd.DataFrame | None]:
    """The verdict's claims on one workload checked against the test sample's variance (`reports.two_level`):
    a line on the leader and a table with one row per claim (strategy, behind whom, on how many seeds, what
    the seeds showed, whether it holds over seeds and test rows, and that test's Holm p). ``over_seeds(claim)``
    words the seed-level evidence of a `two_level.Claim` under the design that was run. Nothing for a sweep
    without predictions; no table when the verdict makes no claim. ``unit``: what the replicates are, seeds
    or tuning studies (then each claim is checked over tuning, seeds and test rows)."""
    if table.empty or v.workload not in set(table["workload"]):
        return [], None
    t = table[table["workload"] == v.workload]
    lead = t.iloc[0]
    claims = two_level.verdict_claim_rows(v.worse, v.equivalent, lead["a"], t)
    seeds_only = interval(lead["seed_ci_low"], lead["seed_ci_high"])
    over = "seeds" if unit == "seeds" else "studies (tuning and seeds)"
    text = (f"**Over {over} and test rows** (per-row predictions): {lead['a']} {pct(lead['mean'])} % "
            f"{interval(lead['ci_low'], lead['ci_high'])} (95%; {unit} only {seeds_only})")
    if not claims:
        return [text + "; the verdict makes no claim to check."], None
    rows = pd.DataFrame([{
        "strategy": c.strategy,
        "behind": c.other if c.kind == "worse" else f"(within +-{100 * v.margin:g} pp of {c.other})",
        unit: c.seeds, f"over {unit}": over_seeds(c),
        f"over {unit} and test rows": "**holds**" if c.holds else "does not survive",
        f"p ({unit} and rows)": pval(c.p_holm)} for c in sorted(claims, key=lambda c: (-c.seeds, c.strategy, c.other))])
    return [text + ". Each claim of the verdict, checked against the test sample's variance (p: the same test "
            f"over {unit} and test rows, Holm over all pairs of the workload):"], rows


def _fixed_evidence(all_pairs: pd.DataFrame, workload: str):
    """The fixed design's seed-level evidence of a claim: its all-pairs Holm p (t-test or TOST)."""
    w = all_pairs[all_pairs["workload"] == workload] if len(all_pairs) else all_pairs
    p = {frozenset((a, b)): (t, tost) for a, b, t, tost in zip(w.get("a", []), w.get("b", []), w.get("p_t_holm", []),
                                                               w.get("p_tost_holm", []), strict=True)}

    def words(c: two_level.Claim) -> str:
        t, tost = p.get(frozenset((c.strategy, c.other)), (math.nan, math.nan))
        return f"shown worse (Holm p {pval(t)})" if c.kind == "worse" else f"shown equivalent (Holm p {pval(tost)})"

    return words


def verdict_section(out_dir: str, data: Analysis) -> Section:
    """Per workload the verdict, then across workloads the normalised aggregate or why there is none."""
    sec = Section(out_dir)
    sec.h(2, "Verdict")
    verdicts = [data.verdicts[w] for w in data.workloads]
    unit = "studies" if data.res.studies else "seeds"
    if (line := studies_line(data.res)) is not None:
        sec.p(line)
    for v in verdicts:
        over_studies = _study_selection(data, v.workload)
        sec.p(f"**{v.workload}** ({v.strategies} strategies). "
              + _leaders_text(v, v.workload in data.selections or over_studies is not None, unit))
        if over_studies is not None:  # KN over studies: its claims, and no test run after the fact
            lines, claims = over_rows(claimed(data, v.workload), data.two_level, lambda c: "eliminated (KN)")
            sec.ul(study_selection_lines(over_studies) + lines)
        elif v.workload in data.selections:
            lines, claims = over_rows(claimed(data, v.workload), data.two_level, lambda c: "eliminated (KN)")
            sec.ul(selection_lines(data.selections[v.workload]) + lines)
        else:
            study = data.studies.get(v.workload)  # over studies: the subset over tuning, seeds (and test rows)
            best = " ".join(f"**{line}**" if i == 0 else line for i, line in enumerate(study.lines)) if study \
                else mcb_line(data.mcb.get(v.workload, []), unit=unit)
            lines, claims = over_rows(v, data.two_level, _fixed_evidence(data.all_pairs, v.workload), unit)
            sec.ul(verdict_lines(v, v.median_seeds_for_margin(), best, unit) + lines)
        if claims is not None:
            sec.table(claims)
    if not data.two_level.empty:
        sec.csvs["two_level"] = data.two_level
    selected = [row for sv in data.selections.values() for row in selection_rows(sv)]
    studied = {w for w in data.workloads if _study_selection(data, w) is not None}
    selected += [row for w in sorted(studied) for row in study_selection_rows(w, data.studies[w])]
    sec.csvs["verdict"] = pd.DataFrame(selected + [
        {"workload": v.workload, "strategy": s, "verdict": kind, "detail": detail}
         for v in verdicts
         for kind, items in (("leader", {x.strategy: "" for x in v.leaders}),
                             ("worse", {k: "below " + " ".join(w) for k, w in v.worse.items()}),
                             ("post hoc worse", dict.fromkeys(v.post_hoc_worse, "")),
                             ("equivalent", dict.fromkeys(v.equivalent, "")),
                             ("inconclusive", {k: f"mdd {v.mdd.get(k, np.nan):.6g}" for k in v.inconclusive}),
                             ("untested", dict.fromkeys(v.untested, "")))
         for s, detail in items.items() if v.workload not in data.selections and v.workload not in studied],
        columns=["workload", "strategy", "verdict", "detail"])
    a = data.across
    if a.iqm is not None:
        top = a.iqm.iloc[0]
        sec.p(f"**Across {len(a.workloads)} workloads** (scores normalised per workload, 0 = chance, 1 = that "
              f"workload's best mean): highest normalised IQM **{top['strategy']}** {num(top['iqm'], 3)} "
              f"[{num(top['ci_low'], 3)}, {num(top['ci_high'], 3)}] (95% stratified bootstrap). "
              + (f"Friedman test over workloads p = {pval(a.friedman.p)}." if np.isfinite(a.friedman.p) else ""))
    else:
        n = len(data.workloads)
        why = (f"only {n} workload, so nothing here says how these strategies compare on any other task"
               if n == 1 else f"{len(a.workloads)} normalisable workload(s) of {n}; the aggregate needs "
               f"{MIN_WORKLOADS}")
        skipped = f" (not normalisable: {_names(a.skipped)})" if a.skipped else ""
        sec.p(f"**Across workloads**: no claim: {why}{skipped}.")
    return sec


def _versions(res: Results) -> str:
    found: dict[str, set[str]] = {}
    for text in res.trials["versions"].dropna().unique():
        try:
            for k, v in json.loads(text).items():
                found.setdefault(k, set()).add(str(v))
        except ValueError:
            continue
    return ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(found.items())) or "not recorded"


def _workload_epochs(name: str) -> int | None:
    """The workload's own (paper) epochs from its torch-free declaration; None for an unregistered plugin."""
    try:
        from trainables.workload import get_workload

        return int(get_workload(name).default_epochs)
    except Exception:  # noqa: BLE001  (a plugin not loaded here, or a declaration without the field)
        return None


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def calibration_lines(budget: pd.DataFrame) -> list[str]:
    """The calibrated ranges beside the default ones, the procedure, and its cost apart from the tuning
    budget (budget columns ``calibration`` and ``default_search_space``); none without calibration."""
    if "calibration" not in budget:
        return []
    rows = [(r.workload, r.strategy, json.loads(r.calibration)) for r in budget.itertuples()
            if isinstance(r.calibration, str) and r.calibration]
    if not rows:
        return []
    first = rows[0][2]
    ranges = "; ".join(f"{w}/{s} [{value(c['low'])}, {value(c['high'])}] (default [{value(c['default_low'])}, "
                       f"{value(c['default_high'])}])" for w, s, c in rows)
    epochs = [c.get("epochs") for _, _, c in rows]
    passes = (f"{sum(epochs):.2f} epochs, " if all(isinstance(e, int | float) for e in epochs) else "")
    cost = (f"{sum(c['steps'] for _, _, c in rows)} steps = {passes}"
            f"{sum(c['grad_evals'] for _, _, c in rows):,} gradient evaluations, "
            f"{_duration(sum(c['seconds'] for _, _, c in rows))} summed over the tests")
    return [f"Calibrated {first['hparam']} ranges (an LR range test per pair before tuning, the same for every "
            f"pair: up to {first.get('steps_planned', first['steps'])} steps from {value(first['min_lr'])} to "
            f"{value(first['max_lr'])}, seed {first['seed']}; searched from the steepest descent of the smoothed "
            f"loss to its minimum, widened to hold the canonical value): {ranges}. Cost, apart from the "
            f"tuning budget: {cost}."]


def protocol_section(out_dir: str, data: Analysis) -> Section:
    """What was run: budget, sampler, seeds, selection, device, time, compute, versions."""
    res = data.res
    sec = Section(out_dir)
    sec.h(2, "Protocol")
    items = []
    for workload, b in res.budget.groupby("workload", sort=True):
        own = _workload_epochs(workload)
        epochs = "/".join(str(int(e)) for e in sorted(b["epochs"].unique()))
        against = f" (the workload's own length: {own})" if own else ""
        trials = "/".join(str(int(t)) for t in sorted(b["trials_planned"].unique()))
        studies = sorted(b["studies"].dropna().unique()) if "studies" in b else []
        several = bool(studies) and max(studies) > 1  # the equal budget is studies x trials
        over_studies, st = _study_selection(data, workload), {}
        if over_studies is not None:  # trials and seeds planned are the first stage's: per study, then the studies
            st = json.loads(b["selection_settings"].iloc[0])
            trials = (f"{'/'.join(str(int(s)) for s in studies)} independent studies x "
                      f"{int(b['trials_planned'].iloc[0]) // st['first_studies']}")
        elif several:
            trials = f"{trials} ({'/'.join(str(int(s)) for s in studies)} independent studies of equal size)"
        seeds_ = "/".join(str(int(t)) for t in sorted(b["seeds_planned"].unique()))
        pairs = sorted(set(zip(b["sampler"], b["sampler_seed"], strict=True)))
        samplers = ", ".join(f"{s} (seed {int(d)}" + (" + j in study j" if several else "") + ")" for s, d in pairs)
        units = set(b["budget_unit"].dropna()) if "budget_unit" in b else set()
        length = (f"the gradient evaluations of {epochs} epochs (budget.unit gradient_evaluations: the same passes "
                  "for every trial, so a strategy of two passes per step, SAM, trains half the steps)"
                  if units == {"gradient_evaluations"} else f"{epochs} epochs")
        retrained = f"retrained with {seeds_} seeds" + (" (each study's chosen configuration its share of them)"
                                                        if several else "")
        if st:
            retrained = (f"retrained with {int(b['seeds_planned'].iloc[0]) // st['first_studies']} seeds per study; "
                         "the studies came from the selection design over studies (Kim & Nelson's procedure with "
                         f"the tuning study as the replicate, docs/SELECTION.md): studies 0..{st['first_studies'] - 1}"
                         f" for every strategy, then {st['batch']} more at a time for those still in contention, "
                         f"indifference zone {st['indifference']:g} pp, confidence {st['confidence']:.0%}, at most "
                         f"{st['max_studies']} studies per strategy")
        if workload in data.selections:
            st = data.selections[workload].settings
            retrained = (f"retrained under the selection design (Kim & Nelson's procedure, docs/SELECTION.md): "
                         f"seeds 0..{st.first_seeds - 1} for every strategy, then {st.batch} more at a time for "
                         f"those still in contention, indifference zone {st.indifference:g} pp, confidence "
                         f"{st.confidence:.0%}, at most {st.max_seeds or 'unlimited'} seeds per strategy")
        items.append(f"{workload}: {len(b)} strategies; {trials} tuning trials per strategy (trial 0 = the "
                     f"canonical configuration) of {length}{against}; sampler {samplers}; then the chosen "
                     f"configuration {retrained} on the full training split, scored on test.")
    phase = checks.random_phase(res.budget)
    for sampler, trials, startup in phase:
        items.append(f"Sampler phase: {sampler} draws its first {startup} trials at random (Optuna's "
                     f"n_startup_trials default); with {trials} trials the whole search was random search.")
    items.append(f"Selection: {selection_words(res)} (validation split only; the test split chooses nothing).")
    runs = res.trials
    devices = ", ".join(sorted(set(runs["device"].dropna()))) or "not recorded"
    wall = float(pd.to_numeric(runs["wall_seconds"], errors="coerce").sum())
    compute = [f"device {devices}", f"run time {_duration(wall)} summed over {len(runs)} runs (tuning and seeds; "
               "runs in parallel overlap, so the elapsed time was shorter)"]
    for column, words in (("grad_evals", "gradient evaluations"), ("step_seconds", "seconds in optimizer steps")):
        if column in runs and runs[column].notna().any():
            total = float(pd.to_numeric(runs[column], errors="coerce").sum())
            compute.append(f"{total:,.0f} {words} in all" if column == "grad_evals" else f"{total:,.0f} {words}")
    if "grad_evals" not in runs or runs["grad_evals"].isna().all():
        compute.append("gradient evaluations not recorded by this sweep")
    items.append("Compute: " + "; ".join(compute) + ".")
    items += calibration_lines(res.budget)
    items += [f"Extended: {line}." for line in res.extensions]
    items.append(f"Versions: {_versions(res)}. Spec hash(es): " + ", ".join(f"`{h}`" for h in res.spec_hashes) + ".")
    sec.ul(items)
    return sec


def edge_words(r) -> str:
    """One row of `checks.edge_optima` as a warning: the trend, its test, and whose range it was."""
    where = ("the range calibrated by the pair's LR range test" if r.calibrated
             else f"its {r.scale} search range")
    return (f"{r.workload}/{r.strategy}: the validation score still rises toward the {r.bound} bound of "
            f"{r.hparam} ({where} [{value(r.low)}, {value(r.high)}]; tuned {value(r.value)}): Kendall's tau "
            f"{r.tau:.2f} over the {r.n_near} trials in the half toward it, p = {r.p:.2g} <= {r.level:.3g} "
            f"({100 * edges.LEVEL:g}% per pair over its edges): a wider range would likely have moved the optimum.")


def warnings_section(out_dir: str, data: Analysis) -> Section:
    """The report's own warnings about what this protocol could not show."""
    res = data.res
    sec = Section(out_dir)
    items = []
    found = checks.edge_optima(res, checks.search_bounds(res))
    sec.csvs["edge_optima"] = found
    items += [edge_words(r) for r in found.itertuples()]
    collapsed = checks.collapsed_trials(res)
    sec.csvs["collapsed_trials"] = collapsed
    tune = res.tune_runs()
    diverged = int((tune["status"] == "diverged").sum())
    if len(collapsed):
        listing = "; ".join(f"{r.workload}/{r.strategy} " + (f"study {r.study} " if res.studies else "")
                            + f"trial {r.trial_index} ({r.why})" for r in collapsed.itertuples())
        items.append(f"{len(collapsed)} of {len(tune)} tuning trials collapsed without diverging (final validation "
                     f"accuracy within {100 * checks.NEAR_CHANCE:g} pp of chance, or training loss no lower than "
                     f"after the first epoch); counted apart from the {diverged} diverged: {listing}.")
    for sampler, trials, startup in checks.random_phase(res.budget):
        per = "per study of each strategy" if res.studies else "per strategy"
        items.append(f"The budget ({trials} trials {per}) lies inside {sampler}'s {startup} random start-up "
                     "trials: tuning was random search, and a longer budget might rank the strategies differently.")
    for workload, v in data.verdicts.items():
        if (over_studies := _study_selection(data, workload)) is not None:  # as the selection design's, in studies
            b = res.budget[res.budget["workload"] == workload]
            items += study_selection_warnings(workload, over_studies, json.loads(
                b["selection_settings"].iloc[0])["max_studies"])
            continue
        if workload in data.selections:
            # The selection design's claim is its guarantee, which needs no number of seeds fixed in advance:
            # its warnings are about whether the procedure ended with that guarantee (seed_claims).
            items += selection_warnings(data.selections[workload])
            continue
        mdd = v.median_mdd()
        if np.isfinite(mdd) and mdd > data.margin:
            n = int(data.summary[data.summary["workload"] == workload]["n"].max())
            need = v.median_seeds_for_margin()
            unit = "studies" if res.studies else "seeds"
            items.append(f"{workload}: {n} {unit} are too few for the +-{100 * data.margin:g} pp margin: the median "
                         f"minimal detectable difference against the leader is {pp(mdd)} pp (all-pairs level); "
                         f"detecting {100 * data.margin:g} pp would take about "
                         f"{seeds(need, stats.MAX_SEEDS)} {unit}.")
    if len(data.workloads) == 1:
        items.append("One workload: no claim across workloads is possible (ranks, Friedman and normalised "
                     "aggregates need several).")
    items += tuning_warning_lines(data)
    items += [*res.warnings]
    if items:
        sec.h(2, "Warnings")
        sec.ul(items)
    if res.mixed:
        sec.h(2, "Warning: mixed results (--allow-mixed)")
        sec.p("These results were combined although they differ; comparisons across the differing parts "
              "are not fair-budget comparisons:")
        sec.ul(res.mixed)
    return sec


def test_split_text(data: Analysis, workload: str) -> str:
    """The test split's own sampling error on one workload, and what it means for a paired difference."""
    runs = data.res.seed_runs()
    runs = runs[runs["workload"] == workload]
    rows = checks.test_rows(runs[tables.PRIMARY])
    if rows is None:
        return ""
    s = data.summary[data.summary["workload"] == workload]
    top = float(s["mean"].max())
    se = checks.binomial_se(top, rows)
    sd = float(np.nanmedian(s["sd"].astype(float))) if s["sd"].notna().any() else math.nan
    return (f"**Test split**: every seed run is scored on the same {rows:,} test rows (inferred from the "
            f"accuracies' common denominator). At {pct(top)}% their binomial standard error is {pp(se)} pp"
            + (f", against a median seed SD of {pp(sd)} pp" if np.isfinite(sd) else "")
            + ": the intervals above describe seed-to-seed variation on these rows, and a fresh test sample would "
            "add about that much again. For two strategies scored on the same rows that error partly cancels: the "
            f"SE of their difference lies between 0 (identical predictions) and about {pp(math.sqrt(2) * se)} pp "
            f"(independent errors); {pp(1 / rows, 3)} pp is one example. "
            + ("The table over seeds and test rows below measures both from the recorded per-row predictions."
               if two_level_rows(data, workload) is not None else
               "Per-example predictions would be needed for a sharper paired statement (McNemar's test); the "
               "sweep does not record them."))
