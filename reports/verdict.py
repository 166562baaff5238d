"""The verdict: what each workload's comparisons show, each claim no stronger than its test.

Pure functions of the report's tables (no I/O), so a simulation can call `workload_verdict` on many
simulated sweeps. The rules, stated in the report in the same words:

- leader(s): the highest mean final test accuracy (equal means share the lead);
- shown worse: the paired t-test is significant after Holm over ALL pairs of the workload, a family
  that does not depend on which strategy the data put on top, so the chance that any strategy of a
  workload is wrongly called worse is at most 5% (the family-wise error Holm controls);
- post hoc: significant only against the observed best (Holm over the comparisons with it); the best
  was picked from the same runs, so this is a hint, never a finding;
- shown equivalent: the TOST of a pair (leader, other) within the margin is significant after Holm
  over all pairs;
- inconclusive: tested, neither worse nor equivalent; with the MDD of those comparisons (the true
  difference the all-pairs test would detect with 80% power);
- untested: fewer than two paired seeds or no spread, so no test was possible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lrstats import stats
from vocab.contracts import FINISHED


@dataclass(frozen=True)
class Leader:
    strategy: str
    n: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class WorkloadVerdict:
    """One workload's verdict (see the module docstring for each list's rule).

    ``worse`` maps each strategy shown worse to the strategies shown better than it; ``mdd`` holds the
    all-pairs MDD (fraction) of each inconclusive strategy against the first leader, ``all_mdd`` and
    ``seeds_for_margin`` the MDD and the seeds needed for the margin of every comparison with it (all
    at the all-pairs Holm level, the verdict's family).
    """

    workload: str
    strategies: int
    pairs: int
    leaders: tuple[Leader, ...]
    worse: dict[str, tuple[str, ...]] = field(default_factory=dict)
    post_hoc_worse: tuple[str, ...] = ()
    equivalent: tuple[str, ...] = ()
    inconclusive: tuple[str, ...] = ()
    untested: tuple[str, ...] = ()
    mdd: dict[str, float] = field(default_factory=dict)
    margin: float = 0.005
    seeds_for_margin: dict[str, float] = field(default_factory=dict)

    def median_seeds_for_margin(self) -> int | None:
        """Median over the comparisons with the first leader of the seeds that would detect the margin
        at the all-pairs level (None when no comparison had spread)."""
        need = np.array([x for x in self.seeds_for_margin.values() if np.isfinite(x)])
        return int(np.ceil(np.median(need))) if need.size else None

    def median_mdd(self) -> float:
        """Median all-pairs MDD (fraction) of the comparisons with the first leader; NaN without any."""
        values = np.array([x for x in self.all_mdd.values() if np.isfinite(x)])
        return float(np.median(values)) if values.size else float("nan")

    all_mdd: dict[str, float] = field(default_factory=dict)


def workload_verdict(summary: pd.DataFrame, all_pairs: pd.DataFrame, vs_best: pd.DataFrame | None,
                     margin: float) -> WorkloadVerdict:
    """The verdict on one workload.

    ``summary``: that workload's rows of `tables.summary_and_vs_best` (strategy, n, mean, ci_low,
    ci_high); ``all_pairs``: its rows of `tables.pairwise_all` (a, b, mean_diff = a - b, p_t_holm,
    p_tost_holm, mdd, seeds_for_margin); ``vs_best``: its comparisons with the observed best (b, outcome), or None.
    """
    workload = str(summary["workload"].iloc[0]) if "workload" in summary else ""
    means = summary.set_index("strategy")["mean"].astype(float)
    top = means.round(12).max()
    leaders = tuple(Leader(r.strategy, int(r.n), float(r.mean), float(r.ci_low), float(r.ci_high))
                    for r in summary.sort_values("strategy").itertuples() if round(float(r.mean), 12) == top)
    leader_names = {lead.strategy for lead in leaders}

    better_than: dict[str, set[str]] = {}
    equivalent, tested = set(), set()
    mdd: dict[str, float] = {}
    need: dict[str, float] = {}
    first = leaders[0].strategy
    for r in all_pairs.itertuples():
        if np.isfinite(r.p_t_holm) and r.p_t_holm < stats.ALPHA and r.mean_diff != 0:
            loser, winner = (r.b, r.a) if r.mean_diff > 0 else (r.a, r.b)
            better_than.setdefault(loser, set()).add(winner)
        pair = {r.a, r.b}
        if pair & leader_names:
            other = (pair - leader_names) or None
            if other is None:
                continue
            (name,) = other
            if np.isfinite(r.p_t_holm):
                tested.add(name)
            if np.isfinite(r.p_tost_holm) and r.p_tost_holm < stats.ALPHA:
                equivalent.add(name)
            if first in pair:
                mdd[name] = float(r.mdd)
                need[name] = float(r.seeds_for_margin)
    worse = {s: tuple(sorted(w)) for s, w in sorted(better_than.items()) if s not in leader_names}
    post_hoc = ()
    if vs_best is not None and len(vs_best):
        post_hoc = tuple(sorted(set(vs_best.loc[vs_best["outcome"] == "worse", "b"]) - set(worse)))
    equivalent -= set(worse)
    others = sorted(set(means.index) - leader_names)
    inconclusive = tuple(s for s in others if s in tested and s not in worse and s not in equivalent)
    untested = tuple(s for s in others if s not in tested and s not in worse)
    pairs = len(all_pairs)
    return WorkloadVerdict(workload, len(means), pairs, leaders, worse, post_hoc, tuple(sorted(equivalent)),
                           inconclusive, untested, {s: mdd[s] for s in inconclusive if s in mdd}, margin, need,
                           mdd)


def any_called_worse(verdict: WorkloadVerdict) -> bool:
    """Whether the verdict calls any strategy worse (the claim the all-pairs family controls)."""
    return bool(verdict.worse)


# ---- the seed stage's own claims: selection (KN) and, for a fixed design, MCB ---------------------------


@dataclass(frozen=True)
class SelectionVerdict:
    """One workload's selection-design outcome, replayed from its seed runs (``lrstats.replay``).

    ``settings``: the sweep's ``SelectionSettings``; ``decision``: KN's, None when no strategy had a
    seed run; ``errored``: strategies left out because a seed run errored (strategy -> seed);
    ``not_run``: strategies of the workload with no seed run (every tune trial failed).
    """

    workload: str
    strategies: int
    settings: object
    decision: object | None
    errored: dict[str, int] = field(default_factory=dict)
    not_run: tuple[str, ...] = ()


def _paired_scores(seed_runs: pd.DataFrame) -> dict[str, dict[int, float | None]]:
    """strategy -> seed -> final test accuracy in percent, from one workload's seed-stage trials rows."""
    scores: dict[str, dict[int, float | None]] = {}
    for r in seed_runs.itertuples():
        value = r.test_accuracy_final
        ok = r.status in FINISHED and value is not None and np.isfinite(value)
        scores.setdefault(r.strategy, {})[int(r.seed)] = 100.0 * float(value) if ok else None
    return scores


def selection_verdict(workload: str, seed_runs: pd.DataFrame, strategies: list[str],
                      settings_json: str) -> SelectionVerdict:
    """Replay the selection design of one workload from its seed-stage trials rows (all statuses)."""
    import json

    from lrstats.replay import replay
    from lrstats.selection import SelectionSettings

    raw = json.loads(settings_json)
    settings = SelectionSettings(raw["indifference"], raw["confidence"], raw["first_seeds"], raw["max_seeds"],
                                 raw["batch"])
    scores = _paired_scores(seed_runs)
    rows = [(s, seed, v) for s, by_seed in scores.items() for seed, v in by_seed.items()]
    result = replay(rows, settings, scores)
    return SelectionVerdict(workload, len(strategies), settings, result.decision, result.errored,
                            tuple(sorted(set(strategies) - set(scores))))


def mcb_rows(seed_runs: pd.DataFrame, confidence: float = 0.95) -> list:
    """Multiple comparisons with the best (``lrstats.selection.mcb``, in percent) over the seeds every
    strategy of one workload shares; empty when fewer than two such seeds."""
    from lrstats.selection import mcb

    scores = _paired_scores(seed_runs)
    common = set.intersection(*({s for s, v in by.items() if v is not None} for by in scores.values())) \
        if scores else set()
    if len(common) < 2 and len(scores) > 1:
        return []
    return mcb({name: [by[s] for s in sorted(common)] for name, by in scores.items()}, confidence)
