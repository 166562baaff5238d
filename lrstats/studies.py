"""Verdicts whose unit of replication is a whole tuning study: the statistics of a sweep with several studies.

A sweep with ``budget.studies`` = S runs, for every (workload, strategy) pair, S independent tuning
studies with the same trial budget, and retrains each study's chosen configuration with N seeds. Study j
uses the same sampler seed and train/validation split for every strategy of a workload (common random
numbers at the study level), and seeds ``1000 j + s``; so study-level scores are paired across strategies
by study index, as seed scores are paired by seed. A strategy's score is then its expected test accuracy
over the tuning, the seeds and (with predictions) the test rows, and every claim here is about that.

Pure functions (numpy, scipy; the adapters from a trials table, `study_scores` and `study_seed_scores`,
are `reports.tables`'), docs/SELECTION.md ("Study-level replicates") and docs/REPORT.md ("Where the
variance comes from"):

- `group_scores`: the replicate score of (strategy, study), the mean final test accuracy in pp over that
  study's finished seed runs; `group_seed_scores`: the seed runs' scores by study.
- `study_decide`, `study_guarantee`: Kim & Nelson's KN (`lrstats.selection.decide`) with the study as the
  replicate; `study_mcb`: the MCB subset over study-level scores ("could be the best, over tuning and
  seeds"); `study_mcb_rows`: the same widened by the test rows' sampling error (predictions present);
  `study_claims`: what a workload's verdict may state, and nothing it cannot back.
- `variance_split`: one strategy's variance split into tuning, seeds and test rows, each with an
  interval, and an interval for the expected score that covers all three; `paired_split` the same for
  the paired difference of two strategies.
- `study_draw`, `study_cost`, `pilot_study_model`: KN at study level on synthetic scores whose tuning and
  seed noise are drawn separately, for what a study-level guarantee costs before it is paid for.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lrstats import distributions as dist
from lrstats.selection import (
    Decision,
    McbRow,
    SeedCost,
    SelectionSettings,
    _cost,
    decide,
    guarantee,
    mcb,
    mcb_from_widths,
    simulate_kn,
)
from lrstats.two_level import two_level

#: Seeds of study j are 1000 j + s (the engine's contract), so a seed number names its study.
STUDY_SEED_BLOCK = 1000

# --- scores -------------------------------------------------------------------------------------------------


def group_scores(strategies: Sequence[str], studies: Sequence[int],
                 scores: Sequence[float]) -> dict[str, dict[int, float]]:
    """Per strategy, per study: the mean of ``scores`` (one per seed run, pp) over that study's runs.

    The three sequences are parallel (one entry per finished seed run); non-finite scores are left out,
    and a study left with none has no replicate score.
    """
    x = np.asarray(scores, dtype=float)
    out: dict[str, dict[int, list[float]]] = {}
    for name, study, value in zip(strategies, studies, x, strict=True):
        if np.isfinite(value):
            out.setdefault(str(name), {}).setdefault(int(study), []).append(float(value))
    return {name: {j: float(np.mean(v)) for j, v in sorted(by.items())} for name, by in sorted(out.items())}


def group_seed_scores(strategies: Sequence[str], studies: Sequence[int], scores: Sequence[float],
                      seeds: Sequence[int]) -> dict[str, dict[int, list[float]]]:
    """Per strategy, per study: its seed runs' scores (pp) in seed order, for `variance_split`.

    The four sequences are parallel (one entry per finished seed run); non-finite scores are left out.
    """
    out: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for name, j, x, s in zip(strategies, studies, np.asarray(scores, dtype=float), seeds, strict=True):
        if np.isfinite(x):
            out.setdefault(str(name), {}).setdefault(int(j), []).append((int(s), float(x)))
    return {n: {j: [x for _, x in sorted(v)] for j, v in sorted(by.items())} for n, by in sorted(out.items())}


def study_correct(correct_by_seed: Mapping[str, Mapping[int, np.ndarray]],
                  study_of: Mapping[tuple[str, int], int] | None = None) -> dict[str, dict[int, np.ndarray]]:
    """Per strategy, per study: its seed runs' per-row correctness as an array (seeds of the study, rows).

    ``correct_by_seed[strategy][seed]`` is one run's 0/1 vector (as `reports.two_level.correct_matrices`
    gives, a Series indexed by seed); ``study_of[(strategy, seed)]`` its study (the trials table's
    ``study``); without it, seed // 1000 (the engine's seed numbering).
    """
    out: dict[str, dict[int, np.ndarray]] = {}
    for name in sorted(correct_by_seed):
        runs = correct_by_seed[name]
        by: dict[int, list] = {}
        for seed in sorted(int(s) for s in runs.keys()):
            j = study_of.get((name, seed), 0) if study_of is not None else seed // STUDY_SEED_BLOCK
            by.setdefault(int(j), []).append(np.asarray(runs[seed], dtype=np.int8))
        out[name] = {j: np.stack(v) for j, v in sorted(by.items())}
    return out


def replicates(scores: Mapping[str, Mapping[int, float]]) -> dict[str, list[float]]:
    """Study-level scores as lists by study index (0, 1, ...), each cut at its first study without a score:
    the form `lrstats.selection` reads (``scores[name][j]`` the replicate j, paired across strategies)."""
    out = {}
    for name, by in scores.items():
        row = []
        for j in range(max(by, default=-1) + 1):
            v = by.get(j, math.nan)
            if not np.isfinite(v):
                break
            row.append(float(v))
        out[name] = row
    return out


def _common_studies(scores: Mapping[str, Mapping[int, float]], first: int | None) -> list[int]:
    common = set.intersection(*(set(j for j, v in by.items() if np.isfinite(v)) for by in scores.values()))
    return sorted(j for j in common if first is None or j < first)


# --- KN and MCB with the study as the replicate ------------------------------------------------------------


def study_decide(scores: Mapping[str, Mapping[int, float]], settings: SelectionSettings) -> Decision:
    """KN (`lrstats.selection.decide`) over study-level replicates: settings' ``first_seeds`` is the number
    of first-stage studies n0, ``batch`` the studies added per round, ``max_seeds`` the cap on studies.

    Valid as KN is (Kim & Nelson 2001): the study scores of one study index are correlated across
    strategies (common studies, common seeds), independent across studies, and assumed normal; the
    guarantee is then about expected accuracy over the tuning and the seeds. Its ``reason`` counts studies.
    """
    return decide(replicates(scores), settings, unit="studies")


def study_guarantee(k: int, settings: SelectionSettings, *, capped: bool = False, unit: str = "pp") -> str:
    """KN's guarantee at study level, in words a reader can check: about each strategy as tuned by the
    protocol (expected over tuning studies and seeds, on this test split), not about one configuration."""
    if capped:
        return (f"stopped by the cap of {settings.max_seeds} tuning studies before the procedure ended: the "
                "selection carries no guarantee")
    if k == 1:
        return guarantee(k, settings, unit=unit)
    zone, conf = f"{settings.indifference:g} {unit}", f"{100 * settings.confidence:g}%"
    return (f"if the best of these {k} strategies, as tuned by this protocol, leads every other by at least {zone} "
            f"in expected final test accuracy over tuning studies and seeds (on this test split; a study's score "
            f"is the mean of its seed runs), it is the one selected with probability at least {conf} (Kim & "
            f"Nelson's KN with the tuning study as the replicate); when several lie within {zone} of the best, the "
            f"selected one is not guaranteed to be within {zone} of it")


def study_mcb(scores: Mapping[str, Mapping[int, float]], confidence: float = 0.95,
              first: int | None = None) -> list[McbRow]:
    """MCB (`lrstats.selection.mcb`, Bonferroni-paired widths) over study-level scores, best first:
    the subset that could be the best at ``confidence`` over tuning and seeds (not test rows).

    Only studies every strategy has are used, and only studies < ``first`` when given: after KN's
    adaptive stopping, pass n0 so the intervals use the studies fixed in advance (an MCB over studies
    chosen by the data is not exact). At least 2 common studies are needed (ValueError).
    """
    studies = _common_studies(scores, first)
    return mcb({n: [by[j] for j in studies] for n, by in scores.items()}, confidence)


def study_row_means(correct: Mapping[int, np.ndarray], studies: Sequence[int] | None = None) -> np.ndarray:
    """(studies, rows): each study's mean correctness per test row over its seed runs (``correct[j]`` is
    (seeds, rows)); the unit of replication of the two-level interval at study level."""
    keys = sorted(correct) if studies is None else list(studies)
    return np.stack([np.asarray(correct[j], dtype=float).mean(axis=0) for j in keys])


def study_mcb_rows(correct: Mapping[str, Mapping[int, np.ndarray]], confidence: float = 0.95,
                   first: int | None = None) -> list[McbRow]:
    """MCB over tuning, seeds AND test rows (pp), best first: `study_mcb` widened by the test sample.

    For every pair (i, l), the paired array z_i - z_l (studies x rows, `study_row_means`) gives the
    two-level variance var(study means) / S + (MS_rows - MS_residual) / (S R) (`lrstats.two_level`, with
    the study as the replicate: its row effects are shared by every study, so they do not average out
    over studies); w_il is the one-sided (1 - alpha / (k - 1)) half-width of its t interval
    (Satterthwaite df, never narrower than the studies-only t interval). Then Hsu's constrained intervals
    (`mcb_from_widths`). A strategy outside the subset is below the best over tuning, seeds and test rows.
    Common studies only (< ``first`` when given); every run must score the same rows.
    """
    names = sorted(correct)
    studies = _common_studies({n: {j: 0.0 for j in correct[n]} for n in names}, first)
    k, s = len(names), len(studies)
    z = {n: study_row_means(correct[n], studies) for n in names}
    means = np.array([100 * z[n].mean() for n in names]) if s else np.full(k, math.nan)
    if k == 1:
        return [McbRow(names[0], float(means[0]), math.nan, math.nan, True, s)]
    if s < 2:
        raise ValueError(f"correct: MCB needs at least 2 studies common to every strategy, got {s}")
    level = 1 - 2 * (1 - confidence) / (k - 1)  # two-sided level whose one-sided tail is alpha / (k - 1)
    w = np.zeros((k, k))
    for i in range(k):
        for m in range(i + 1, k):
            r = two_level(z[names[i]] - z[names[m]], confidence=level)
            half = 100 * (r.ci_high - r.mean) if np.isfinite(r.ci_high) else 0.0
            w[i, m] = w[m, i] = half
    return mcb_from_widths(names, means, w, s)


@dataclass(frozen=True)
class StudyClaims:
    """What one workload's verdict may state at study level (`study_claims`), and over which sources."""

    studies: int
    """Studies every strategy has (the replicates)."""
    decision: Decision | None
    """KN over studies (selection design), or None (fixed design)."""
    mcb: tuple[McbRow, ...]
    """The MCB rows the subset statement uses (over tuning and seeds, or also test rows; see ``covers``)."""
    covers: str
    """'tuning and seeds' or 'tuning, seeds and test rows' (predictions present)."""
    lines: tuple[str, ...]
    """The statements, one sentence each; nothing the design cannot back."""

    @property
    def could_be_best(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.mcb if r.could_be_best)

    @property
    def below_best(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.mcb if not r.could_be_best)


def study_claims(scores: Mapping[str, Mapping[int, float]], *, settings: SelectionSettings | None = None,
                 confidence: float = 0.95, correct: Mapping[str, Mapping[int, np.ndarray]] | None = None,
                 unit: str = "pp") -> StudyClaims:
    """The study-level verdict of one workload: what may be stated, over which sources of chance.

    - One study (or fewer than 2 common to every strategy): nothing about the tuning can be stated, and
      one line says so.
    - ``settings`` (selection design over studies): KN's selection with `study_guarantee` when it stopped
      uncapped; a capped or unfinished one names no winner with a guarantee.
    - Always (2+ common studies): the MCB subset that could be the best at ``confidence``, over tuning
      and seeds, or over tuning, seeds and test rows when ``correct`` (per-row correctness by study) is
      given: "the best is one of these" is the statement made when the studies cannot separate the
      leaders; a subset of one says that strategy is the best (or tied with it). After KN, the subset
      uses the n0 first-stage studies only (fixed in advance). A strategy outside it is "below the best".
    """
    names = sorted(scores)
    common = _common_studies(scores, None)
    if len(common) < 2 or len(names) < 2:
        reason = (f"{len(common)} tuning stud{'y' if len(common) == 1 else 'ies'} common to every strategy"
                  if len(names) > 1 else "one strategy")
        return StudyClaims(len(common), None, (), "seeds", (
            f"No claim covers the tuning: {reason}; the tuning's share of the variance cannot be estimated "
            "from one study, and every statement of this verdict holds the tuning fixed.",))
    decision = study_decide(scores, settings) if settings is not None else None
    first = settings.first_seeds if settings is not None else None
    if correct is not None and set(correct) >= set(names):
        rows = study_mcb_rows({n: correct[n] for n in names}, confidence, first)
        covers = "tuning, seeds and test rows"
    else:
        rows = study_mcb(scores, confidence, first)
        covers = "tuning and seeds"
    conf = f"{100 * confidence:g}%"
    lines = []
    if decision is not None:
        k = len(names)
        if not decision.stopped:
            lines.append(f"No selection yet: KN over tuning studies has not stopped ({decision.r} studies each "
                         f"so far; each contender needs {decision.seeds_wanted}).")
        elif decision.capped:
            lines.append(f"No strategy is selected with a guarantee: the cap of {settings.max_seeds} tuning studies "
                         f"stopped KN with {len(decision.contenders)} still in contention "
                         f"({', '.join(decision.contenders)}).")
        else:
            lines.append(f"Selected: {decision.selected} after {decision.r} tuning studies. "
                         f"Guarantee: {study_guarantee(k, settings, unit=unit)}.")
    used = rows[0].n if rows else 0
    could = [r.name for r in rows if r.could_be_best]
    below = [r.name for r in rows if not r.could_be_best]
    if len(could) == 1:
        lines.append(f"{could[0]} is the best (or tied with it) at {conf}, over {covers} (multiple comparisons "
                     f"with the best over {used} tuning studies).")
    else:
        lines.append(f"The best is one of {', '.join(could)} at {conf}, over {covers} (multiple comparisons with "
                     f"the best over {used} tuning studies); these studies cannot tell them apart, and none of "
                     "them is claimed to be the best.")
    if below:
        lines.append(f"Below the best at {conf}, over {covers}: {', '.join(below)}.")
    return StudyClaims(len(common), decision, tuple(rows), covers, tuple(lines))


# --- where the variance comes from ---------------------------------------------------------------------------

COMPONENTS = ("tuning", "seeds", "test rows")


@dataclass(frozen=True)
class Component:
    """One source's variance of a single run's score (pp^2): one tuning study, one seed, on a test split of
    this many rows. NaN where the design cannot estimate it."""

    name: str
    variance: float
    low: float
    high: float
    """The ``confidence`` interval of ``variance`` (its method: `variance_split`)."""
    of_mean: float
    """Its part of the variance of the reported mean (tuning / S, seeds / (S N), test rows as is)."""

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance) if np.isfinite(self.variance) else math.nan


@dataclass(frozen=True)
class VarianceSplit:
    """`variance_split`'s result: the mean (pp) with its interval, and the three components."""

    studies: int
    runs: int
    rows: int
    """Test rows (0 without predictions)."""
    mean: float
    ci_low: float
    ci_high: float
    df: float
    covers: str
    """The sources of chance the mean's interval covers, in words."""
    components: tuple[Component, ...]
    """tuning, seeds, test rows (always all three; NaN where not estimable)."""

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    @property
    def shares(self) -> dict[str, float]:
        """Each estimated component's share of their sum (of one run's variance); NaN ones are left out."""
        known = {c.name: max(c.variance, 0.0) for c in self.components if np.isfinite(c.variance)}
        total = sum(known.values())
        return {n: (v / total if total > 0 else math.nan) for n, v in known.items()}

    @property
    def dominant(self) -> str | None:
        """The component with the largest estimate (None when fewer than two are estimated)."""
        shares = self.shares
        return max(shares, key=shares.get) if len(shares) > 1 and all(np.isfinite(list(shares.values()))) else None

    @property
    def dominant_clear(self) -> bool:
        """The dominant component's interval lies wholly above every other's: the data show it dominates."""
        d = self.dominant
        if d is None:
            return False
        top = self.component(d)
        return all(top.low > c.high for c in self.components if c.name != d and np.isfinite(c.variance))


def mls_interval(ms1: float, df1: float, ms2: float, df2: float, c: float,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Interval for theta = c (E[MS1] - E[MS2]), a variance component as a difference of two independent mean
    squares (MS_i ~ E[MS_i] chi2_df_i / df_i): the modified large-sample (MLS) interval of Ting, Burdick,
    Graybill, Jeyaratnam & Lu (1990; Burdick & Graybill 1992, section 3.3), bounds floored at 0.

    With F_{a: n, m} the upper-a point of F(n, m) and a = (1 - confidence) / 2:
    G1 = 1 - 1/F_{a:df1,inf}, H1 = 1/F_{1-a:df1,inf} - 1, G2 = 1 - 1/F_{a:df2,inf}, H2 = 1/F_{1-a:df2,inf} - 1,
    G12 = ((F_{a:df1,df2} - 1)^2 - G1^2 F_{a:df1,df2}^2 - H2^2) / F_{a:df1,df2},
    H12 = ((1 - F_{1-a:df1,df2})^2 - H1^2 F_{1-a:df1,df2}^2 - G2^2) / F_{1-a:df1,df2};
    L = theta - c sqrt(G1^2 MS1^2 + H2^2 MS2^2 + G12 MS1 MS2), U = theta + c sqrt(H1^2 MS1^2 + G2^2 MS2^2 +
    H12 MS1 MS2). With MS2 = 0 it is the exact chi-square interval of c E[MS1]. Satterthwaite's interval
    for the same difference covers far less than stated when the component is small (Burdick & Graybill).
    """
    g1, h1, g2, h2, g12, h12 = _mls_constants(float(df1), float(df2), float(confidence))
    theta = c * (ms1 - ms2)
    low = theta - c * math.sqrt(max(0.0, g1**2 * ms1**2 + h2**2 * ms2**2 + g12 * ms1 * ms2))
    high = theta + c * math.sqrt(max(0.0, h1**2 * ms1**2 + g2**2 * ms2**2 + h12 * ms1 * ms2))
    return max(0.0, low), max(0.0, high)


@functools.lru_cache(maxsize=1024)
def _mls_constants(df1: float, df2: float, confidence: float) -> tuple[float, ...]:
    """G1, H1, G2, H2, G12, H12 of `mls_interval` (they depend on the degrees of freedom only)."""
    a = (1 - confidence) / 2
    f1_hi, f1_lo = dist.chi2_ppf([1 - a, a], df1) / df1
    f2_hi, f2_lo = dist.chi2_ppf([1 - a, a], df2) / df2
    f12_hi, f12_lo = dist.f_ppf([1 - a, a], df1, df2)
    g1, h1, g2, h2 = 1 - 1 / f1_hi, 1 / f1_lo - 1, 1 - 1 / f2_hi, 1 / f2_lo - 1
    g12 = ((f12_hi - 1) ** 2 - g1**2 * f12_hi**2 - h2**2) / f12_hi
    h12 = ((1 - f12_lo) ** 2 - h1**2 * f12_lo**2 - g2**2) / f12_lo
    return tuple(float(v) for v in (g1, h1, g2, h2, g12, h12))


@functools.lru_cache(maxsize=1024)
def _chi2_points(df: float, confidence: float) -> tuple[float, float]:
    a = (1 - confidence) / 2
    hi, lo = dist.chi2_ppf([1 - a, a], df)
    return float(hi), float(lo)


def chi2_interval(ms: float, df: float, confidence: float = 0.95) -> tuple[float, float]:
    """The exact interval of a variance from a mean square with ``df`` degrees of freedom (normal scores)."""
    hi, lo = _chi2_points(float(df), float(confidence))
    return df * ms / hi, df * ms / lo


def rows_component(z: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The test rows' variance of a run's score, (estimate, low, high), from z (units, rows): per-row
    correctness (a fraction, or a paired difference) of each replicate unit (a study's mean over its seed
    runs; a seed run when there is one study).

    Rows are crossed with the units, so (MS_rows - MS_residual) / U estimates the row-effect variance
    s_R^2 without bias (as in `lrstats.two_level`) and the component is s_R^2 / R: the part of every run's
    score that a new test split of R rows would redraw. It is the mean over rows of
    q_r = (c_r - m)^2 - sum_u e_ur^2 / (U (U - 1)) (c_r: row r's mean, e: the two-way residuals) times
    R / (R - 1); the rows are an i.i.d. sample of the task, so its interval is the central-limit one over
    rows, estimate +- z SD(q) sqrt(R) / (R - 1) / R, floored at 0. A chi-square interval would assume
    normal row effects, which correctness on a test split (most rows always right, a few always
    wrong) is far from.
    """
    z = np.asarray(z, dtype=float)
    u, r = z.shape
    if u < 2 or r < 2:
        return math.nan, math.nan, math.nan
    m = z.mean()
    c = z.mean(axis=0)
    e = z - z.mean(axis=1, keepdims=True) - c[None, :] + m
    q = (c - m) ** 2 - (e**2).sum(axis=0) / (u * (u - 1))
    est = q.sum() / (r - 1) / r
    half = float(dist.norm_ppf(0.5 + confidence / 2)) * q.std(ddof=1) * math.sqrt(r) / (r - 1) / r
    return float(est), max(0.0, float(est - half)), float(est + half)


def nested_mean_squares(scores: Sequence[Sequence[float]]) -> tuple[float, int, float, int, float]:
    """One-way nested ANOVA of seed scores within studies: (MS_between, df, MS_within, df, n_0).

    E[MS_within] = sigma2_seed, E[MS_between] = sigma2_seed + n_0 sigma2_tuning, with
    n_0 = (N - sum n_j^2 / N) / (S - 1) (N runs, n_j in study j; n_0 = n for equal studies). Studies
    without a finite score are dropped.
    """
    groups = [g[np.isfinite(g)] for g in (np.asarray(x, dtype=float) for x in scores)]
    groups = [g for g in groups if g.size]
    n = np.array([g.size for g in groups])
    s, total = len(groups), int(n.sum())
    means = np.array([g.mean() for g in groups])
    grand = float((n * means).sum() / total) if total else math.nan
    ss_w = float(sum(((g - g.mean()) ** 2).sum() for g in groups))
    df_b, df_w = s - 1, total - s
    ms_b = float((n * (means - grand) ** 2).sum() / df_b) if df_b > 0 else math.nan
    ms_w = ss_w / df_w if df_w > 0 else math.nan
    n0 = float((total - (n**2).sum() / total) / df_b) if df_b > 0 else math.nan
    return ms_b, df_b, ms_w, df_w, n0


def variance_split(scores: Sequence[Sequence[float]], correct: Sequence[np.ndarray] | None = None, *,
                   confidence: float = 0.95) -> VarianceSplit:
    """Where one strategy's score varies: tuning (between studies), seeds (within a study), test rows.

    ``scores[j]``: study j's seed runs' final test accuracies (pp); ``correct[j]`` (optional): the same
    runs' per-row correctness, (seeds, rows), 0/1. For a paired difference of two strategies, pass the
    differences (same studies, same seeds; correctness a - b): the split is then that of the difference.

    Model (a run's score on this test split): x_js = mu + rows + T_j + E_js, with the study effect T
    (variance tuning, on these rows), the seed effect E (variance seeds, on these rows: it includes the
    per-row churn between seeds) and the shared test-sample effect (variance test rows = s_R^2 / R).
    Methods (all moment estimators of the nested and crossed random-effects designs):
    - seeds: MS_within, exact chi-square interval on S (N - 1) d.f. (normal seed scores);
    - tuning: (MS_between - MS_within) / n_0, floored at 0, modified large-sample interval (`mls_interval`;
      normal study and seed effects; approximate for unequal studies);
    - test rows: `rows_component` on the studies' per-row means (on the seed runs with one study);
    - the mean: with predictions the two-level interval (`lrstats.two_level`) on the (studies x rows)
      means, so it covers tuning, seeds and test rows; without, the t interval over study means (tuning
      and seeds); with one study the tuning is held fixed and the interval says so.
    Each component is the variance of ONE run's score; ``of_mean`` its part in the variance of the mean.
    """
    groups = [np.asarray(x, dtype=float) for x in scores]
    keep = [i for i, g in enumerate(groups) if np.isfinite(g).any()]
    groups = [groups[i][np.isfinite(groups[i])] for i in keep]
    s = len(groups)
    runs = int(sum(g.size for g in groups))
    if s == 0:
        raise ValueError("variance_split: no finite score")
    ms_b, df_b, ms_w, df_w, n0 = nested_mean_squares(groups)
    study_means = np.array([g.mean() for g in groups])
    mean = float(study_means.mean())
    nan3 = (math.nan, math.nan, math.nan)
    seeds = (ms_w, *chi2_interval(ms_w, df_w, confidence)) if df_w > 0 else nan3
    tuning = ((max(0.0, (ms_b - ms_w) / n0), *mls_interval(ms_b, df_b, ms_w, df_w, 1 / n0, confidence))
              if s >= 2 and df_w > 0 else nan3)
    rows, r_count, interval = nan3, 0, None
    if correct is not None:
        arrays = [np.asarray(correct[i], dtype=float) for i in keep]
        r_count = arrays[0].shape[1]
        units = (np.stack([a.mean(axis=0) for a in arrays]) if s >= 2 else arrays[0])
        rows = tuple(1e4 * v for v in rows_component(units, confidence))
        tl = two_level(units, confidence=confidence)
        if np.isfinite(tl.ci_low):
            interval = (100 * tl.ci_low, 100 * tl.ci_high, tl.df)
    unit_means = study_means if s >= 2 else groups[0]
    if interval is None and unit_means.size >= 2:
        half = (float(dist.t_ppf(0.5 + confidence / 2, unit_means.size - 1))
                * unit_means.std(ddof=1) / math.sqrt(unit_means.size))
        interval = (mean - half, mean + half, float(unit_means.size - 1))
    low, high, df = interval if interval is not None else nan3
    sources = ("tuning, seeds" if s >= 2 else "seeds (the tuning held fixed: one study)")
    covers = sources + (" and test rows" if correct is not None and r_count else (
        " (test rows held fixed)" if s >= 2 else ""))
    parts = (tuning[0] / s if s >= 2 else math.nan, seeds[0] / runs if df_w > 0 else math.nan, rows[0])
    comps = tuple(Component(name, float(v[0]), float(v[1]), float(v[2]), float(p))
                  for name, v, p in zip(COMPONENTS, (tuning, seeds, rows), parts, strict=True))
    return VarianceSplit(s, runs, r_count, mean, float(low), float(high), float(df), covers, comps)


def paired_split(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]],
                 a_correct: Sequence[np.ndarray] | None = None, b_correct: Sequence[np.ndarray] | None = None, *,
                 confidence: float = 0.95) -> VarianceSplit:
    """`variance_split` of the paired difference a - b (pp): ``a[j]`` and ``b[j]`` study j's seed scores in
    the same seed order (common studies, common seeds), and their per-row correctness likewise. Common
    studies and seeds cancel what the strategies share, so the difference's tuning and seed variances are
    what separates them; its interval is the difference's over the sources listed in ``covers``."""
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
        raise ValueError("paired_split: a and b need the same studies and the same seeds in each")
    diff = [np.asarray(x, dtype=float) - np.asarray(y, dtype=float) for x, y in zip(a, b, strict=True)]
    rows = None
    if a_correct is not None and b_correct is not None:
        rows = [np.asarray(x, dtype=np.int8) - np.asarray(y, dtype=np.int8)
                for x, y in zip(a_correct, b_correct, strict=True)]
    return variance_split(diff, rows, confidence=confidence)


# --- simulation and cost ------------------------------------------------------------------------------------


def equicorrelated(sd, rho: float, k: int) -> np.ndarray:
    """(k, k) covariance with SDs ``sd`` (scalar or (k,)) and one correlation ``rho`` between every pair."""
    sd = np.broadcast_to(np.asarray(sd, dtype=float), (k,))
    return sd[:, None] * ((1 - rho) * np.eye(k) + rho) * sd[None, :]


def study_draw(means, cov_tuning, cov_seed, seeds_per_study: int, rng: np.random.Generator):
    """A `lrstats.selection.Draw` of study-level scores: study j of strategy i scores
    mean_i + T_ij + mean_s E_ijs, the tuning effect T (k-vector per study, covariance ``cov_tuning``: common
    studies correlate it across strategies) and ``seeds_per_study`` seed effects E (covariance
    ``cov_seed``: common seeds) drawn separately. Shape (len(rows), k, end - start)."""
    means = np.asarray(means, dtype=float)
    k = means.size
    chol_t, chol_e = np.linalg.cholesky(np.asarray(cov_tuning, float)), np.linalg.cholesky(np.asarray(cov_seed, float))

    def draw(rows: np.ndarray, start: int, end: int) -> np.ndarray:
        t = rng.standard_normal((len(rows), end - start, k)) @ chol_t.T
        e = (rng.standard_normal((len(rows), end - start, seeds_per_study, k)) @ chol_e.T).mean(axis=2)
        return np.swapaxes(means + t + e, 1, 2)

    return draw


def least_favourable(k: int, delta: float) -> np.ndarray:
    """Means of KN's least-favourable configuration: one strategy exactly ``delta`` ahead, the rest tied."""
    means = np.zeros(k)
    means[k // 2] = delta
    return means


@dataclass(frozen=True)
class StudyCost:
    """KN at study level over simulated sweeps: studies in all (over every strategy) and their seed runs."""

    studies: SeedCost
    seeds_per_study: int
    h2: float
    """KN's h^2 for these k, n0 (studies) and confidence."""

    @property
    def seed_runs(self) -> float:
        """Expected seed runs in all (studies x seeds per study)."""
        return self.studies.expected * self.seeds_per_study


def study_cost(k: int, settings: SelectionSettings, sd_tuning, sd_seed, seeds_per_study: int, *,
               means=None, rho_tuning: float = 0.5, rho_seed: float = 0.5, reps: int = 2000,
               rng: np.random.Generator | None = None) -> StudyCost:
    """Expected studies (and seed runs) KN needs at study level: ``settings`` in studies (first_seeds = n0
    studies, batch = studies per round, max_seeds = the cap), tuning and seed SDs in pp (scalars or one per
    strategy), correlations across strategies from common studies and common seeds, ``means`` (default:
    the least-favourable configuration for the zone). For `lrsweep plan`: what the guarantee costs
    before anyone pays for it; each study also costs its T tuning trials."""
    from lrstats.selection import kn_constants

    rng = np.random.default_rng(0) if rng is None else rng
    means = least_favourable(k, settings.indifference) if means is None else np.asarray(means, dtype=float)
    draw = study_draw(means, equicorrelated(sd_tuning, rho_tuning, k), equicorrelated(sd_seed, rho_seed, k),
                      seeds_per_study, rng)
    sim = simulate_kn(k, settings, reps, draw)
    return StudyCost(_cost(sim.total, settings, k, sim.capped), seeds_per_study,
                     kn_constants(k, settings.first_seeds, settings.confidence)[1])


def pilot_study_model(seed_scores: Mapping[str, Mapping[int, Sequence[float]]]) -> tuple[list[str], np.ndarray,
                                                                                             np.ndarray, np.ndarray]:
    """From a pilot with 2+ studies: names, means (k,), tuning SDs and seed SDs (pp) per strategy, for
    `study_cost`. Few studies estimate the tuning SD roughly (2 studies: 1 d.f.); a tuning SD of 0 is
    raised to a tenth of the pooled one (of the pooled seed SD when every one is 0), so the model is not
    certain of what it cannot know and its covariance stays positive definite."""
    names = sorted(seed_scores)
    means, tau, sigma = [], [], []
    for n in names:
        groups = [seed_scores[n][j] for j in sorted(seed_scores[n])]
        ms_b, _, ms_w, _, n0 = nested_mean_squares(groups)
        means.append(float(np.mean([np.mean(g) for g in groups])))
        tau.append(math.sqrt(max(0.0, (ms_b - ms_w) / n0)) if np.isfinite(ms_b) else math.nan)
        sigma.append(math.sqrt(ms_w) if np.isfinite(ms_w) else math.nan)
    tau, sigma = np.array(tau), np.array(sigma)
    if not (np.isfinite(tau).all() and np.isfinite(sigma).all()):  # one seed per study: nothing splits them
        raise ValueError("a pilot for study-level costs needs at least 2 studies with 2+ seeds for every strategy")
    pooled = tau if np.any(tau > 0) else sigma  # no tuning variance seen at all: a tenth of the seeds'
    tau = np.maximum(tau, 0.1 * math.sqrt(np.mean(pooled**2)))
    return names, np.array(means), tau, sigma


def pilot_study_cost(seed_scores: Mapping[str, Mapping[int, Sequence[float]]], settings: SelectionSettings,
                     seeds_per_study: int, *, reps: int = 400, rng: np.random.Generator | None = None) -> StudyCost:
    """`study_cost` with a pilot's means, tuning and seed SDs (`pilot_study_model`) as the truth, and one
    correlation for common studies and common seeds: the mean pairwise correlation of the pilot's study
    scores (`lrstats.selection.pilot_covariance`, clipped to [0, 0.95]). For `lrsweep plan --from DIR`."""
    from lrstats.selection import pilot_covariance

    names, means, tau, sigma = pilot_study_model(seed_scores)
    study_means = {n: [float(np.mean(seed_scores[n][j])) for j in sorted(seed_scores[n])] for n in names}
    rho = pilot_covariance(study_means)[3]
    return study_cost(len(names), settings, tau, sigma, seeds_per_study, means=means, rho_tuning=rho, rho_seed=rho,
                      reps=reps, rng=rng)
