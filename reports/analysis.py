"""Everything the report computes, computed once: the `Analysis` every section and figure reads.

Sections (`reports.sections`) and figures (`reports.figures`) only arrange and draw these tables;
none of them recomputes a statistic, so a number cannot differ between a table and a plot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from reports import tables, two_level
from reports.load import Results
from reports.tuning_curves import tuning_curves
from reports.verdict import SelectionVerdict, WorkloadVerdict, mcb_rows, selection_verdict, workload_verdict
from vocab.contracts import SEED


@dataclass(frozen=True, eq=False)
class Across:
    """The cross-workload tables: average ``ranks`` with the ``friedman`` result (`stats.FriedmanResult`)
    and the ``nemenyi`` p matrix (`tables.across_workloads`), the strategies ``dropped`` for missing a
    workload, ``by_regime`` (`tables.friedman_by_regime`), the ``normalised`` seed runs and the workloads
    ``skipped`` as not normalisable (`tables.normalised_scores`), the ``workloads`` that were normalised,
    and the normalised ``iqm`` and performance ``profiles`` (`tables.iqm_and_profiles`), None with fewer
    than `MIN_WORKLOADS` normalisable workloads."""

    ranks: pd.DataFrame
    friedman: object
    nemenyi: pd.DataFrame
    dropped: list[str]
    by_regime: pd.DataFrame
    normalised: pd.DataFrame
    skipped: list[str]
    workloads: list[str]
    iqm: pd.DataFrame | None
    profiles: pd.DataFrame | None


#: Default convergence thresholds: shares of the workload's best mean final test accuracy. An absolute
#: threshold such as 90% says nothing on a workload whose best run ends at 86%.
RELATIVE_THRESHOLDS = (0.9, 0.95, 0.99)
#: Normalisable workloads needed before the report aggregates normalised scores across workloads.
MIN_WORKLOADS = 3


@dataclass(frozen=True, eq=False)
class Analysis:
    """The results and the tables computed from them (see `reports.tables` for each table's columns).

    ``res``: the loaded results; ``summary`` and ``vs_best``: `tables.summary_and_vs_best`;
    ``all_pairs``: `tables.pairwise_all`; ``fractions``: `tables.final_lr_fractions`; ``curves``:
    `tables.learning_curves`; ``margin``: the TOST equivalence margin (fraction); ``seed``: the
    bootstrap seed; ``thresholds``: the convergence thresholds (fractions: of the best mean when
    ``thresholds_relative``, else absolute accuracies); ``across``: `Across`;
    ``budget_curves`` and ``budget_summary``: `tables.budget_curves`; ``convergence``: `tables.convergence`;
    ``verdicts``: per workload its `reports.verdict.WorkloadVerdict`; ``two_level``: the leader's accuracy
    and every pair's difference over seeds and test rows (`reports.two_level.sweep_table`), empty
    without a ``predictions`` table.
    """

    res: Results
    summary: pd.DataFrame
    vs_best: pd.DataFrame
    all_pairs: pd.DataFrame
    fractions: pd.DataFrame
    curves: pd.DataFrame
    margin: float
    seed: int
    thresholds: tuple[float, ...]
    thresholds_relative: bool
    across: Across
    budget_curves: pd.DataFrame
    budget_summary: pd.DataFrame
    convergence: pd.DataFrame
    verdicts: dict[str, WorkloadVerdict]
    selections: dict[str, SelectionVerdict] = field(default_factory=dict)
    """Per workload of a selection-design sweep, what its procedure decided (`reports.verdict.selection_verdict`)."""
    mcb: dict[str, list] = field(default_factory=dict)
    """Per workload of a fixed design, Hsu's multiple comparisons with the best (`reports.verdict.mcb_rows`)."""
    studies: dict[str, object] = field(default_factory=dict)
    """Per workload of a sweep with several tuning studies, what may be claimed over them
    (`lrstats.studies.study_claims`: the subset that could be the best over tuning, seeds and, with
    predictions, test rows)."""
    two_level: pd.DataFrame = field(default_factory=pd.DataFrame)
    tuning_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Each pair's expected best validation score against independent tuning draws, with bands
    (`reports.tuning_curves.tuning_curves`); ``tuning_summary``: one row per pair, rising or why no curve."""
    tuning_summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def workloads(self) -> list[str]:
        return sorted(self.summary["workload"].unique())


def seed_tables(res: Results, margin: float) -> dict[str, pd.DataFrame]:
    """`Analysis`'s all_pairs, fractions, summary and vs_best: the tables most figures are drawn from, which
    `analyse` computes first (`summary_tables`, then `pair_tables`; the report starts drawing after each)."""
    return pair_tables(res, margin, summary_tables(res))


def summary_tables(res: Results) -> dict[str, pd.DataFrame]:
    """The LR fractions and the ranked summary without its comparisons with the best (`tables.summary_table`):
    no paired test is needed for them, and most figures are drawn from them and the results alone."""
    fractions = tables.final_lr_fractions(res)
    return {"fractions": fractions, "summary": tables.summary_table(res, fractions=fractions)}


def pair_tables(res: Results, margin: float, first: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """`summary_tables` (``first``) completed with the paired comparisons: all_pairs, vs_best, and the
    summary's columns against the best."""
    all_pairs = tables.pairwise_all(res, margin=margin)
    summary, vs_best = tables.with_vs_best(first["summary"], res, all_pairs, margin=margin)
    return first | {"all_pairs": all_pairs, "summary": summary, "vs_best": vs_best}


def curve_tables(res: Results, margin: float) -> dict[str, pd.DataFrame]:
    """`Analysis`'s budget_curves, budget_summary, tuning_curves and tuning_summary, which `analyse` computes next."""
    budget_curves, budget_summary = tables.budget_curves(res)
    curves, curves_summary = tuning_curves(res, size=margin)
    return {"budget_curves": budget_curves, "budget_summary": budget_summary, "tuning_curves": curves,
            "tuning_summary": curves_summary}


def analyse(res: Results, *, margin: float, seed: int, thresholds: tuple[float, ...] | None,
            first: dict[str, pd.DataFrame] | None = None,
            curves: Callable[[], dict[str, pd.DataFrame]] | None = None) -> Analysis:
    """Compute the report's shared tables from loaded results. ``thresholds`` None: convergence to
    `RELATIVE_THRESHOLDS` of each workload's best mean final accuracy; else absolute accuracies.
    ``first``: `seed_tables` of the same results and margin, when already computed; ``curves``: returns
    their `curve_tables`, called once everything else is computed (a worker may be computing them
    meanwhile); None: computed here."""
    first = dict(first or {})
    first = first if "summary" in first else first | seed_tables(res, margin)
    all_pairs, fractions, summary, vs_best = (first[k] for k in ("all_pairs", "fractions", "summary", "vs_best"))
    relative = thresholds is None
    levels = tuple(RELATIVE_THRESHOLDS if relative else thresholds)
    best = summary.groupby("workload")["mean"].max().to_dict() if relative else None
    verdict = verdicts(summary, all_pairs, vs_best, margin)
    leaders = {w: v.leaders[0].strategy for w, v in verdict.items()}
    selections, mcb = seed_stage_claims(res)
    learning, across_workloads = tables.learning_curves(res), across(res, summary, seed)
    convergence, studies = tables.convergence(res, list(levels), best), study_stage_claims(res)
    rows = two_level.sweep_table(res.predictions, leaders, margin=margin)
    c = curves() if curves is not None else curve_tables(res, margin)
    return Analysis(res, summary, vs_best, all_pairs, fractions, learning, margin, seed, levels, relative,
                    across_workloads, c["budget_curves"], c["budget_summary"], convergence, verdict, selections, mcb,
                    studies, rows, c["tuning_curves"], c["tuning_summary"])


def seed_stage_claims(res: Results) -> tuple[dict[str, SelectionVerdict], dict[str, list]]:
    """Per workload, its selection design's outcome, or (a fixed design) its MCB intervals."""
    selections, mcb = {}, {}
    trials, budget, replicates = res.trials, res.budget, res.replicates()
    for workload, b in budget.groupby("workload", sort=True):
        runs = trials[(trials["workload"] == workload) & (trials["stage"] == SEED)]
        design = b["seed_design"].dropna().unique() if "seed_design" in b else []
        if list(design) == ["selection"]:
            selections[workload] = selection_verdict(workload, runs, sorted(b["strategy"]),
                                                     b["selection_settings"].iloc[0])
        elif list(design) == ["study_selection"]:
            continue  # its claims are KN's over studies and the MCB over its first stage (`study_stage_claims`)
        elif len(runs):  # over studies when there are several: the subset then covers the tuning too
            mcb[workload] = mcb_rows(replicates[replicates["workload"] == workload])
    return selections, mcb


def study_stage_claims(res: Results) -> dict[str, object]:
    """Per workload of a sweep with several tuning studies, `lrstats.studies.study_claims` over its studies,
    widened by the test rows where the sweep kept predictions; empty for a one-study sweep."""
    if not res.studies:
        return {}
    from lrstats.studies import study_claims, study_correct
    from reports.tables import study_scores

    runs, preds, out = res.seed_runs(), res.predictions, {}
    settings = study_selection_settings(res.budget)
    for workload in sorted(runs["workload"].unique()):
        correct = None
        if preds is not None and len(preds) and workload in set(preds["workload"]):
            p = preds[preds["workload"] == workload]
            study_of = {(r.strategy, int(r.seed)): int(r.study) if pd.notna(r.study) else 0 for r in p.itertuples()}
            by_seed = two_level.correct_matrices(p, workload)  # one vector per seed run
            correct = study_correct({s: dict(v.items()) for s, v in by_seed.items()}, study_of)
        out[workload] = study_claims(study_scores(runs[runs["workload"] == workload]), correct=correct,
                                     settings=settings.get(workload))
    return out


def study_selection_settings(budget: pd.DataFrame) -> dict[str, object]:
    """Per workload run under the selection design over studies (``budget.studies: auto``), its settings as
    ``lrstats.selection.SelectionSettings`` in studies; the others are absent."""
    from lrstats.selection import SelectionSettings

    out = {}
    if "seed_design" not in budget:
        return out
    for workload, b in budget[budget["seed_design"] == "study_selection"].groupby("workload", sort=True):
        raw = json.loads(b["selection_settings"].iloc[0])
        out[workload] = SelectionSettings(raw["indifference"], raw["confidence"], raw["first_studies"],
                                          raw["max_studies"], raw["batch"])
    return out


def verdicts(summary: pd.DataFrame, all_pairs: pd.DataFrame, vs_best: pd.DataFrame,
             margin: float) -> dict[str, WorkloadVerdict]:
    """Each workload's verdict from its rows of the three tables."""
    out = {}
    for workload, s in summary.groupby("workload", sort=True):
        pairs = all_pairs[all_pairs["workload"] == workload] if len(all_pairs) else all_pairs
        vs = vs_best[vs_best["workload"] == workload] if len(vs_best) else None
        out[workload] = workload_verdict(s, pairs, vs, margin)
    return out


def across(res: Results, summary: pd.DataFrame, seed: int) -> Across:
    """The cross-workload tables (see `Across`)."""
    ranks, fr, nemenyi, dropped = tables.across_workloads(summary, tables.generations(res))
    runs, skipped = tables.normalised_scores(res, summary)
    workloads = sorted(set(summary["workload"]) - set(skipped))
    iqm = profiles = None
    if len(workloads) >= MIN_WORKLOADS and len(ranks):
        iqm, profiles = tables.iqm_and_profiles(runs, list(ranks["strategy"]), workloads, seed=seed)
    return Across(ranks, fr, nemenyi, dropped, tables.friedman_by_regime(summary), runs, skipped, workloads,
                  iqm, profiles)
