"""Tuning curves: a strategy's expected best validation accuracy after n tuning trials, with simultaneous bands.

One tuning study of T trials picks the best of them; how good that best is depends on T. Drawing n
configurations at random from a strategy's search distribution and keeping the best, the expected
validation score of that best is the *expected tuning curve* E[max of n draws] (Dodge et al. 2019).
From N independent draws already run it is estimated without bias for n <= N by the mean of the
maximum over every n-subset (Tang et al. 2020; opda's ``u_tuning_curve``): at n = 1 the draws' mean,
at n = N their maximum. Lourie et al. 2024 (the ``opda`` package) give bands for the whole curve at
once: an exact simultaneous band for the scores' CDF (Learned-Miller and DeStefano's, from the order
statistics; Kolmogorov-Smirnov's above `LD_MAX_DRAWS` draws), mapped through the expected maximum,
which is monotone in the CDF, so the curve lies in its band at every n together whenever the CDF lies
in its own. A mean needs a bounded support:
accuracy lies in [0, 1], the bounds used.

Which trials are draws: only those a sampler proposes without looking at any score. Trial 0 of every
study is the strategy's canonical configuration, not a draw, and is left out. ``random`` and ``qmc``:
every other trial (QMC's scrambled Sobol points are each uniform over the space, but one study's points
are spread evenly rather than independent; the estimate is fair, the bands assume independence).
``tpe``: only its random start-up (Optuna's ``TPESampler`` ``n_startup_trials``, 10 by default and left
at it by ``sweeps.search.searcher.SAMPLERS``: trial i sees at most i earlier trials, so trials 1..9 are
random); later TPE trials are chosen from earlier scores and are no sample of one distribution. With
several tuning studies per pair (the trials table's ``study`` column; absent means one study) the
draws of all studies are pooled: each study draws afresh with its own sampler seed.

"Still rising at the budget" (`rising`): with b draws per study at the budget (its trials minus the
canonical one), the estimated gain of the budget's last doubling, E[best of b] - E[best of b // 2],
exceeds a stated size (the report uses its equivalence margin, 0.5 pp by default). It is an estimate;
``shown`` adds whether the band's lower edge at b lies above the estimate at b // 2, the rise being
then larger than the curve's own uncertainty at the budget.

Statistics only: pure functions over arrays and the results tables; `reports.sections` words them and
`reports.plots.tuning_curves` draws them.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports import checks, tables
from reports.load import Results

#: Confidence of the simultaneous bands: Lourie et al.'s own choice in opda's examples. At 95% a band
#: from the 4 to 10 draws a sweep affords bounds almost nothing.
CONFIDENCE = 0.80
#: The support of a validation accuracy: the bounds a band on an expected value needs.
LOW, HIGH = 0.0, 1.0
#: opda's band method: Learned-Miller-DeStefano with equal-tailed pointwise intervals, exact for a
#: continuous score, tighter at the ends (where a best lies) than Kolmogorov-Smirnov's, and almost as
#: tight as the highest-density variant at a tenth of its cost. Its critical value is simulated (100,000
#: samples of N order statistics: 0.15 s at 9 draws, 6 s at 100), so above `LD_MAX_DRAWS` draws the band
#: is Kolmogorov-Smirnov's, also exact for a continuous score and computed at once.
METHOD, LARGE_METHOD, LD_MAX_DRAWS = "ld_equal_tailed", "ks", 60
#: Samplers whose every trial after the canonical one is a draw from the search distribution.
INDEPENDENT = ("random", "qmc")

CURVE_COLUMNS = ["workload", "strategy", "n", "expected", "low", "high"]
SUMMARY_COLUMNS = ["workload", "strategy", "sampler", "metric", "studies", "trials_per_study", "draws",
                   "budget_draws", "expected_1", "expected_budget", "low_budget", "high_budget", "half",
                   "expected_half", "gain", "gain_next", "rising", "shown", "draws_note", "note"]


def draw_limit(sampler: str) -> int | None:
    """The trial indices of a study that are independent draws are 1 .. limit - 1: None for a sampler
    whose trials are all draws (random, qmc), TPE's random start-up (`checks.RANDOM_PHASE`), and 0
    for a sampler with no such phase (no trial is a draw)."""
    if sampler in INDEPENDENT:
        return None
    return checks.RANDOM_PHASE.get(sampler, 0)


@functools.cache
def _generator(n: int, confidence: float) -> np.random.Generator:
    # opda simulates each band's critical value once per (n, confidence, generator) and caches it; one
    # generator per (n, confidence), seeded from those alone, makes every report's bands the same
    # whatever was computed before in the process, and computes each once.
    return np.random.default_rng([n, round(confidence * 1_000_000)])


def curve(scores, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The expected tuning curve of independent draws ``scores`` `(N,)` (accuracies in [0, 1]) at n = 1..N.

    Columns: n; expected, the unbiased estimate of E[best of n draws] (without replacement: the mean
    at n = 1, the maximum at n = N); low and high, the simultaneous ``confidence`` band (opda: the
    expected maximum under the CDF band's upper and lower edges, support [0, 1]; `METHOD`, or
    `LARGE_METHOD` above `LD_MAX_DRAWS` draws). The band is exact for the CDF of a continuous score and
    conservative for the curve; with ties, usual in accuracies over a few hundred validation rows, it
    stayed conservative in simulation (tests/test_tuning_curves.py).
    """
    # opda imports scipy.stats (about a second): only the worker that computes the curves pays for it.
    from opda.nonparametric import EmpiricalDistribution

    ys = np.asarray(scores, dtype=float)
    if ys.ndim != 1 or ys.size == 0 or not np.isfinite(ys).all():
        raise ValueError(f"scores must be a non-empty 1-D array of finite values, got {ys!r}")
    if ys.min() < LOW or ys.max() > HIGH:
        raise ValueError(f"scores must lie in [{LOW}, {HIGH}], got {ys.min()}..{ys.max()}")
    ns = np.arange(1, ys.size + 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicates detected", RuntimeWarning)  # ties: see the docstring
        cdf_low, point, cdf_high = EmpiricalDistribution.confidence_bands(
            ys, confidence, a=LOW, b=HIGH, generator=_generator(ys.size, confidence), n_jobs=1,
            method=METHOD if ys.size <= LD_MAX_DRAWS else LARGE_METHOD)
    # The CDF's upper edge is the stochastically smaller distribution: it gives the curve's lower edge.
    return pd.DataFrame({"n": ns, "expected": point.u_tuning_curve(ns),
                         "low": cdf_high.average_tuning_curve(ns), "high": cdf_low.average_tuning_curve(ns)})


@dataclass(frozen=True)
class Rise:
    """How a curve ends at the budget: ``half`` = budget // 2 draws, ``gain`` = E[best of budget] -
    E[best of half], ``gain_next`` = E[best of 2 budget] - E[best of budget] (NaN with fewer than 2 x
    budget draws), ``rising`` = gain > the stated size, ``shown`` = rising and the band's lower edge at
    the budget above the estimate at half."""

    half: int
    gain: float
    gain_next: float
    rising: bool
    shown: bool


def rising(c: pd.DataFrame, budget: int, size: float) -> Rise | None:
    """Whether curve ``c`` (`curve`: rows n = 1..N in order) is still rising at ``budget`` draws: the estimated
    gain of the last doubling, E[best of budget] - E[best of budget // 2], exceeds ``size`` (a fraction). None
    where the curve does not reach the budget or the budget has no doubling (fewer than 2 draws)."""
    e, low = c["expected"].to_numpy(dtype=float), c["low"].to_numpy(dtype=float)
    if budget < 2 or budget > e.size:
        return None
    half = budget // 2
    gain = float(e[budget - 1] - e[half - 1])
    gain_next = float(e[2 * budget - 1] - e[budget - 1]) if 2 * budget <= e.size else math.nan
    up = gain > size
    return Rise(half, gain, gain_next, up, bool(up and low[budget - 1] > e[half - 1]))


def pair_draws(tune: pd.DataFrame, metric: str, limit: int | None) -> np.ndarray:
    """The scores (``metric``) of one pair's tune trials that are draws: trial_index >= 1 and, with a
    ``limit`` (`draw_limit`), below it, in every study. A diverged trial without a score counts at the
    bottom of the support (it would never be the one chosen)."""
    index = tune["trial_index"].to_numpy(dtype=int)
    keep = (index >= 1) & (index < limit if limit is not None else True)
    v = pd.to_numeric(tune[metric], errors="coerce").to_numpy(dtype=float)[keep]
    return np.clip(np.where(np.isfinite(v), v, LOW), LOW, HIGH)


def studies_of(budget_row: dict, tune: pd.DataFrame) -> int:
    """The pair's tuning studies: the budget table's ``studies``; where the budget lacks it, the distinct
    ``study`` values of the pair's tune trials; 1 for results written before studies existed."""
    s = budget_row.get("studies")
    if s is not None and pd.notna(s) and int(s) >= 1:
        return int(s)
    return max(1, int(tune["study"].nunique())) if "study" in tune else 1


def _no_curve(sampler: str, limit: int | None, trials: int) -> str:
    """Why a pair whose sampler or budget gives no draws has no curve, in one line."""
    if trials <= 0:
        return "no tuning trial was run (the configurations were fixed in advance)"
    if limit == 0:
        return (f"sampler `{sampler}` chooses every trial from earlier scores, so no trial is an independent draw "
                "from one distribution")
    if trials <= 1:
        return "only the canonical configuration (trial 0) was tried: no trial was drawn from the search space"
    return "no drawn trial finished with a score"


def _draws_note(sampler: str, limit: int | None, trials: int, studies: int) -> str:
    """Which trials the curve is drawn from, in words."""
    per = f"of each of {studies} studies, pooled" if studies > 1 else "of the study"
    if limit is None:
        return f"trials 1-{trials - 1} {per} ({sampler}: every trial but the canonical one is a draw)"
    last = min(trials, limit) - 1
    if trials <= limit:
        return (f"trials 1-{last} {per} (the whole budget lay in {sampler}'s random start-up of {limit} trials, "
                "trial 0 being the canonical one)")
    return (f"trials 1-{last} {per} only: {sampler}'s random start-up ({limit} trials with the canonical trial 0); "
            f"its trials {limit}-{trials - 1} are chosen from earlier scores and are no draws, so the curve does "
            "not reach the budget")


def tuning_curves(res: Results, size: float, confidence: float = CONFIDENCE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every pair's tuning curve (`curve`) and its summary, from the tune trials already run.

    ``size``: the gain of the budget's last doubling (fraction) above which a curve is `rising`.
    Curves: `CURVE_COLUMNS`, n = 1..draws. Summary: one row per pair of the budget table (`SUMMARY_COLUMNS`):
    sampler, the score ranked by (`tables.tune_metric`), studies, trials per study, draws (pooled),
    budget_draws (draws per study at the budget: its trials but the canonical one), the curve at 1 draw,
    at the budget (with band) and at half the budget, NaN where the curve does not reach the budget (TPE
    past its start-up: the curve is then random search's, and nothing is said about the budget),
    `Rise`'s fields, draws_note (which trials were used) and note (why no curve, else empty). The draws
    of every study are pooled (``trial_index`` counts within a study, so no ``study`` column is needed).
    """
    tune = res.tune_runs()
    # One pass over the few columns needed: filtering the wide trials frame per pair cost ~60 ms a pair.
    scores = [c for c in tables.TUNE_METRICS.values() if c in tune]
    columns = ["trial_index", *scores, *(["study"] if "study" in tune else [])]
    pairs = {k: g for k, g in tune[["workload", "strategy", *columns]].groupby(["workload", "strategy"])}
    empty = pd.DataFrame(columns=columns)
    curves, summary = [], []
    for b in res.budget.sort_values(["workload", "strategy"]).to_dict("records"):
        workload, strategy, sampler = b["workload"], b["strategy"], str(b["sampler"])
        t = pairs.get((workload, strategy), empty)
        studies = studies_of(b, t)
        trials = int(b["trials_planned"]) // studies  # the budget plans S x T trials for S studies of T
        limit = draw_limit(sampler)
        # As `tables.tune_metric` reads it; a reproduction (selection and sampler `none`) tunes nothing.
        metric = tables.TUNE_METRICS.get(b.get("selection") or "final", tables.TUNE_METRICS["final"])
        ys = pair_draws(t, metric, limit) if limit != 0 else np.array([])
        out = dict.fromkeys(SUMMARY_COLUMNS, math.nan) | {
            "workload": workload, "strategy": strategy, "sampler": sampler, "metric": metric, "studies": studies,
            "trials_per_study": trials, "draws": int(ys.size), "rising": False, "shown": False,
            "draws_note": "", "note": ""}
        if ys.size == 0:
            summary.append(out | {"note": _no_curve(sampler, limit, trials)})
            continue
        c = curve(ys, confidence)
        e, lo, hi = (c[k].to_numpy() for k in ("expected", "low", "high"))
        curves.append(pd.DataFrame({"workload": workload, "strategy": strategy, "n": c["n"].to_numpy(),
                                    "expected": e, "low": lo, "high": hi}))
        budget = trials - 1
        out.update(budget_draws=budget, expected_1=float(e[0]), draws_note=_draws_note(sampler, limit, trials, studies))
        # Past TPE's start-up the curve is random search's, not the budget's: nothing is said at the budget.
        if (limit is None or trials <= limit) and 1 <= budget <= e.size:
            out.update(expected_budget=float(e[budget - 1]), low_budget=float(lo[budget - 1]),
                       high_budget=float(hi[budget - 1]))
            r = rising(c, budget, size)
            if r is not None:
                out.update(half=r.half, expected_half=float(e[r.half - 1]), gain=r.gain, gain_next=r.gain_next,
                           rising=r.rising, shown=r.shown)
        summary.append(out)
    curves_df = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    return curves_df, pd.DataFrame(summary, columns=SUMMARY_COLUMNS)


__all__ = ["CONFIDENCE", "CURVE_COLUMNS", "HIGH", "INDEPENDENT", "LARGE_METHOD", "LD_MAX_DRAWS", "LOW", "METHOD",
           "Rise", "SUMMARY_COLUMNS", "curve", "draw_limit", "pair_draws", "rising", "studies_of", "tuning_curves"]
