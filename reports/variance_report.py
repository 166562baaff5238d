"""The report's "Where the variance comes from" section: per workload with 2+ tuning studies, each
strategy's score variance split into tuning, seeds and test rows (`lrstats.studies.variance_split`),
as a table and a stacked-bar figure; for a one-study sweep one line saying why there is none.

Numbers are computed here once (`variance_table`) and the figure draws that table (`variance_bars`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lrstats.studies import COMPONENTS, study_correct, variance_split
from reports.document import Section
from reports.load import Results
from reports.tables import study_seed_scores
from reports.two_level import correct_matrices

COLUMNS = {"tuning": "tuning", "seeds": "seeds", "test rows": "rows"}


def studies_of(res: Results, workload: str) -> int:
    """The number of tuning studies among ``workload``'s seed runs (1 for tables written before studies)."""
    runs = res.seed_runs()
    runs = runs[runs["workload"] == workload]
    return int(runs["study"].fillna(0).nunique()) if "study" in runs and len(runs) else 1


def variance_table(res: Results, workload: str, confidence: float = 0.95) -> pd.DataFrame:
    """One row per strategy of ``workload``: the expected score (pp) with its interval and what it covers,
    and per component (tuning, seeds, rows) the variance of one run's score (pp^2) with its interval, its
    share, and which component dominates (``dominant_clear``: its interval lies above every other's)."""
    runs = res.seed_runs()
    runs = runs[runs["workload"] == workload]
    scores = study_seed_scores(runs)
    correct = {}
    if res.predictions is not None and not res.predictions.empty:
        try:
            by_seed = correct_matrices(res.predictions, workload)
        except ValueError:  # runs on different test rows: the rows' share is not estimated
            by_seed = {}
        study = runs["study"].fillna(0).astype(int) if "study" in runs else pd.Series(0, index=runs.index)
        study_of = {(s, int(seed)): int(j) for s, seed, j in zip(runs["strategy"], runs["seed"], study, strict=True)}
        seeds_of = {s: set(int(x) for x in g) for s, g in runs.groupby("strategy")["seed"]}
        by_seed = {s: v for s, v in by_seed.items() if set(int(x) for x in v.index) == seeds_of.get(s)}
        correct = study_correct({s: {int(k): v[k] for k in v.index} for s, v in by_seed.items()}, study_of)
    rows = []
    for strategy, by in sorted(scores.items()):
        studies = sorted(by)
        pred = correct.get(strategy)
        if pred is not None and sorted(pred) == studies:
            split = variance_split([100 * pred[j].mean(axis=1) for j in studies], [pred[j] for j in studies],
                                   confidence=confidence)
        else:
            split = variance_split([by[j] for j in studies], confidence=confidence)
        row = {"workload": workload, "strategy": strategy, "studies": split.studies, "runs": split.runs,
               "rows": split.rows, "mean": split.mean, "ci_low": split.ci_low, "ci_high": split.ci_high,
               "covers": split.covers}
        shares = split.shares
        for comp in split.components:
            key = COLUMNS[comp.name]
            row.update({f"{key}_var": comp.variance, f"{key}_low": comp.low, f"{key}_high": comp.high,
                        f"{key}_share": shares.get(comp.name, math.nan)})
        row.update({"dominant": split.dominant or "", "dominant_clear": split.dominant_clear})
        rows.append(row)
    return pd.DataFrame(rows)


def _sd(var: float, low: float, high: float) -> str:
    """A component as an SD in pp with the interval of that SD (square roots of the variance's bounds)."""
    if not np.isfinite(var):
        return "n/a"
    return f"{math.sqrt(max(var, 0)):.2f} ({math.sqrt(max(low, 0)):.2f}-{math.sqrt(max(high, 0)):.2f})"


def _share(x: float) -> str:
    return f"{100 * x:.0f}%" if np.isfinite(x) else "n/a"


def variance_section(out_dir: str, res: Results, workloads: list[str], confidence: float = 0.95) -> Section:
    """The section: per workload with 2+ studies the table and the figure; else one line."""
    sec = Section(out_dir)
    sec.h(2, "Where the variance comes from")
    frames = []
    many = [w for w in workloads if studies_of(res, w) >= 2]
    if not many:
        sec.p("One tuning study per pair: the tuning's share of the variance cannot be estimated from one study "
              "(it takes 2 or more: `budget.studies`), and every interval in this report holds the tuning fixed.")
        return sec
    sec.p("How much of a strategy's score moves with the tuning (another tuning study: between studies), the "
          "seeds (another seed of the same study's configuration) and the test rows (another test split of the "
          "same size; from the per-row predictions). Each component is the variance of ONE run's score (one "
          "study, one seed), shown as an SD in pp with its 95% interval: seeds by the exact chi-square interval, "
          "tuning by the modified large-sample interval for a difference of mean squares (Ting et al. 1990), "
          "test rows by the central-limit interval over rows (docs/REPORT.md). The expected score's interval "
          "covers the sources listed. Dominates: the largest share; '(clear)' when its interval lies above every "
          "other's.")
    for workload in workloads:
        if workload not in many:
            sec.p(f"**{workload}**: one tuning study, so the tuning's share of the variance cannot be estimated.")
            continue
        t = variance_table(res, workload, confidence)
        frames.append(t)
        sec.h(3, f"{workload}: where the variance comes from")
        shown = pd.DataFrame({
            "strategy": t["strategy"], "studies, runs": [f"{s}, {r}" for s, r in zip(t["studies"], t["runs"],
                                                                                        strict=True)],
            "expected score (95%)": [f"{m:.1f} ({lo:.1f} to {hi:.1f})" if np.isfinite(lo) else f"{m:.1f}"
                                     for m, lo, hi in zip(t["mean"], t["ci_low"], t["ci_high"], strict=True)],
            "over": t["covers"],
            **{f"{name} SD, pp (95%)": [_sd(*v) for v in zip(t[f"{k}_var"], t[f"{k}_low"], t[f"{k}_high"],
                                                               strict=True)]
               for name, k in COLUMNS.items()},
            "shares (tuning / seeds / rows)": [" / ".join(_share(r[f"{k}_share"]) for k in COLUMNS.values())
                                               for _, r in t.iterrows()],
            "dominates": [d + (" (clear)" if c else "") if d else "n/a"
                          for d, c in zip(t["dominant"], t["dominant_clear"], strict=True)],
        })
        sec.table(shown)
        sec.figure("reports.variance_plots.variance_bars", (t, workload), f"variance_{workload}",
                   f"{workload}: each strategy's variance of one run's score split into tuning (between studies), "
                   "seeds (within a study) and test rows (from the predictions), in pp^2, stacked; the numbers are "
                   "the shares. Point estimates; the table gives each component's 95% interval.")
    if frames:
        sec.csvs["variance_split"] = pd.concat(frames, ignore_index=True)
    return sec


__all__ = ["COMPONENTS", "studies_of", "variance_section", "variance_table"]
