"""Statistics for the report: pure functions over documented array shapes.

Every function takes plain arrays (shapes in its docstring) and, where it resamples, a `seed`, so
the same Parquet gives the same report. The tests and intervals come from scipy, statsmodels and
scikit-posthocs; only the few rliable metrics (interquartile mean with a stratified bootstrap,
performance profiles) are written out here, following rliable's definitions, because rliable
itself pulls in `arch`, `absl-py` and `seaborn` for a dozen lines of numpy.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.stats
from scipy.special import comb

#: Two-sided significance level used throughout the report.
ALPHA = 0.05
#: Bootstrap resamples for confidence intervals (scipy's default).
N_RESAMPLES = 9999


def _finite(x) -> np.ndarray:
    """A 1-D float array with NaNs dropped (a run without a measured accuracy is no data point)."""
    x = np.asarray(x, dtype=float).ravel()
    return x[np.isfinite(x)]


def t_interval(x, *, confidence: float = 0.95) -> tuple[float, float]:
    """Student t confidence interval of the mean of `x`, shape `(n_runs,)`: mean +- t_{n-1} * SD / sqrt(n).

    The honest interval for a handful of seeds: it widens with the t quantile as n shrinks, where a
    bootstrap of 3-5 values cannot see the tails and comes out far too narrow. Fewer than two finite
    values have no interval: `(nan, nan)`. Identical values give the point interval `(x, x)`.
    """
    x = _finite(x)
    if x.size < 2:
        return (math.nan, math.nan)
    mean = float(np.mean(x))
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, df=x.size - 1) * np.std(x, ddof=1) / math.sqrt(x.size))
    return (mean - half, mean + half)


def bootstrap_ci(
    x,
    *,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    method: str = "BCa",
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of `x`, shape `(n_runs,)`.

    Uses `scipy.stats.bootstrap` (BCa by default) with a generator seeded by `seed`. Fewer than two
    finite values have no interval: `(nan, nan)`. Identical values (zero spread) have the point
    interval `(x, x)`, which scipy's BCa cannot compute.
    """
    x = _finite(x)
    if x.size < 2:
        return (math.nan, math.nan)
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    res = scipy.stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method=method,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact Wilcoxon signed-rank test can give with `n` pairs.

    All `n` non-zero differences with the same sign is the most extreme of the `2**n` equally likely
    sign patterns, and two-sided doubles it: `2 / 2**n` (0.0625 for n = 5, so five seeds can never
    reach p < 0.05).
    """
    return min(1.0, 2.0 / 2.0**n) if n > 0 else 1.0


def cliffs_delta(a, b) -> float:
    """Cliff's delta of samples `a` `(n_a,)` and `b` `(n_b,)`: P(a > b) - P(a < b) over all pairs.

    In [-1, 1]; 1 when every value of `a` exceeds every value of `b`. Ignores the pairing on purpose:
    it describes how far apart the two distributions of runs are.
    """
    a, b = _finite(a), _finite(b)
    if a.size == 0 or b.size == 0:
        return math.nan
    diff = a[:, None] - b[None, :]
    return float((np.sum(diff > 0) - np.sum(diff < 0)) / diff.size)


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of strategy A against strategy B on one workload (A - B).

    `t`, `p_t`: paired t-test (scipy.stats.ttest_rel). `w`, `p_w`: Wilcoxon signed-rank
    (scipy.stats.wilcoxon, zero differences discarded, exact for small n). `cohen_d`: Cohen's d_z,
    mean difference over the standard deviation of the differences. `cliffs_delta`: see
    `cliffs_delta`. `diff_ci`: bootstrap CI of the mean difference. `min_p_w`: smallest p the exact
    Wilcoxon test could give with this many non-zero differences. `note`: plain words for anything
    that makes a number undefined or a test unable to reach significance.
    """

    n: int
    mean_diff: float
    diff_ci: tuple[float, float]
    t: float
    p_t: float
    w: float
    p_w: float
    min_p_w: float
    cohen_d: float
    cliffs_delta: float
    note: str


def paired_tests(a, b, *, seed: int = 0, n_resamples: int = N_RESAMPLES) -> PairedResult:
    """Paired t-test, Wilcoxon signed-rank, effect sizes and a bootstrap CI for `a - b`.

    `a` and `b` have shape `(n_pairs,)`, element i of each from the same seed. Pairs with a NaN on
    either side are dropped. With fewer than two pairs no test is run and `note` says so instead.
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have equal length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    nan = math.nan
    if n < 2:
        mean_diff = float(a[0] - b[0]) if n == 1 else nan
        return PairedResult(n, mean_diff, (nan, nan), nan, nan, nan, nan, min_wilcoxon_p(n), nan,
                            cliffs_delta(a, b), f"n = {n} paired seed(s): too few for any test or interval")
    d = a - b
    notes = []
    nonzero = int(np.count_nonzero(d))
    min_p_w = min_wilcoxon_p(nonzero)
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        # Every difference is the same number: the t statistic divides by zero and d_z is infinite.
        t = p_t = cohen_d = nan
        notes.append("all paired differences are equal: t-test and Cohen's d undefined")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            tt = scipy.stats.ttest_rel(a, b)
        t, p_t = float(tt.statistic), float(tt.pvalue)
        cohen_d = float(np.mean(d) / sd)
    if nonzero == 0:
        w, p_w = nan, nan
        notes.append("all paired differences are zero: Wilcoxon undefined")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            wr = scipy.stats.wilcoxon(a, b, zero_method="wilcox")
        w, p_w = float(wr.statistic), float(wr.pvalue)
        if min_p_w > ALPHA:
            notes.append(f"Wilcoxon with {nonzero} non-zero pairs cannot reach p < {ALPHA} "
                         f"(smallest possible p = {min_p_w:.3g})")
    return PairedResult(n, float(np.mean(d)), bootstrap_ci(d, seed=seed, n_resamples=n_resamples), t, p_t,
                        w, p_w, min_p_w, cohen_d, cliffs_delta(a, b), "; ".join(notes))


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values of a family `(n_tests,)`, via statsmodels' `multipletests(method='holm')`.

    NaN entries (tests that could not be run) are not part of the family and stay NaN.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return out


def average_ranks(scores) -> np.ndarray:
    """Mean rank per strategy of `scores` `(n_workloads x n_strategies)`; rank 1 = highest score, ties averaged."""
    scores = np.asarray(scores, dtype=float)
    return scipy.stats.rankdata(-scores, axis=1).mean(axis=0)


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of average ranks for `k` strategies on `n` workloads (Demsar 2006).

    `CD = q_alpha * sqrt(k (k + 1) / (6 n))`, with `q_alpha` the studentized range quantile over
    sqrt(2) (2.343 for k = 3 at alpha 0.05, Demsar's Table 5).
    """
    q = scipy.stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over workloads and the Nemenyi post-hoc (see `friedman_nemenyi`)."""

    n_workloads: int
    n_strategies: int
    avg_ranks: np.ndarray
    statistic: float
    p: float
    cd: float
    nemenyi_p: np.ndarray
    note: str


def friedman_nemenyi(scores, alpha: float = ALPHA) -> FriedmanResult:
    """Friedman chi-square test and Nemenyi post-hoc p-values for `scores` `(n_workloads x n_strategies)`.

    Each row is one workload (a block), each column one strategy; higher is better. Uses
    `scipy.stats.friedmanchisquare` and `scikit_posthocs.posthoc_nemenyi_friedman`; the latter's
    `(k x k)` p-value matrix is returned as `nemenyi_p`. Needs at least 2 workloads and 3 strategies;
    otherwise the statistics are NaN and `note` says why.
    """
    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    ranks = average_ranks(scores) if n else np.full(k, np.nan)
    if n < 2 or k < 3:
        return FriedmanResult(n, k, ranks, math.nan, math.nan, math.nan, np.full((k, k), np.nan),
                              f"Friedman test needs >= 2 workloads and >= 3 strategies (have {n} and {k})")
    import scikit_posthocs

    stat, p = scipy.stats.friedmanchisquare(*scores.T)
    nem = scikit_posthocs.posthoc_nemenyi_friedman(scores).to_numpy(dtype=float)
    note = ""
    if n < 5:
        note = (f"only {n} workloads: the Friedman chi-square approximation and the Nemenyi test have "
                "little power; read the ranks as descriptive")
    return FriedmanResult(n, k, ranks, float(stat), float(p), nemenyi_cd(k, n, alpha), nem, note)


def _column_values(scores) -> list[np.ndarray]:
    """The finite runs of each task of a `(n_runs x n_tasks)` array (NaN marks a missing run)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (n_runs x n_tasks), got shape {scores.shape}")
    cols = [_finite(scores[:, j]) for j in range(scores.shape[1])]
    if any(c.size == 0 for c in cols):
        raise ValueError("every task needs at least one finite run")
    return cols


def _stratified_resamples(cols: list[np.ndarray], n_resamples: int, seed: int) -> list[np.ndarray]:
    """Per task, `(n_resamples x n_runs_of_task)` resampled runs: runs are drawn within their own task."""
    rng = np.random.default_rng(seed)
    return [c[rng.integers(0, c.size, size=(n_resamples, c.size))] for c in cols]


def iqm(scores) -> float:
    """Interquartile mean of all runs of all tasks, `scores` `(n_runs x n_tasks)`, NaN = missing run.

    rliable's `aggregate_iqm`: the 25%-trimmed mean of the pooled scores (scipy.stats.trim_mean).
    """
    return float(scipy.stats.trim_mean(np.concatenate(_column_values(scores)), 0.25))


def iqm_stratified_ci(
    scores, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """IQM of `scores` `(n_runs x n_tasks)` and its stratified-bootstrap percentile CI: `(iqm, low, high)`.

    Stratified as in rliable (Agarwal et al. 2021, `get_interval_estimates`): each resample draws
    runs with replacement within each task, so every task keeps its weight.
    """
    cols = _column_values(scores)
    pooled = np.concatenate(_stratified_resamples(cols, n_resamples, seed), axis=1)
    boot = scipy.stats.trim_mean(pooled, 0.25, axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return iqm(scores), float(low), float(high)


def performance_profile(
    scores, taus, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score distribution (performance profile) of `scores` `(n_runs x n_tasks)` at thresholds `taus` `(m,)`.

    rliable's `run_score_distributions`: for each tau, the fraction of runs scoring above tau within
    each task, averaged over tasks. Returns `(profile, low, high)`, each `(m,)`, the bounds from the
    same stratified bootstrap as `iqm_stratified_ci`.
    """
    cols = _column_values(scores)
    taus = np.asarray(taus, dtype=float).ravel()

    def profile(task_runs: list[np.ndarray]) -> np.ndarray:
        # (..., n_runs) per task -> (..., m) fraction above each tau, then the mean over tasks.
        return np.mean([np.mean(r[..., None] > taus, axis=-2) for r in task_runs], axis=0)

    point = profile(cols)
    boot = profile(_stratified_resamples(cols, n_resamples, seed))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    return point, low, high


def expected_max(values, k: int, *, replace: bool = False) -> float:
    """Expected best of `k` trials drawn from the observed trial scores `values` `(n_trials,)`.

    With `v_(1) <= ... <= v_(N)` the sorted scores:
    - without replacement (default; k = N gives the observed maximum):
      `E = sum_i v_(i) * C(i - 1, k - 1) / C(N, k)`, the probability that the i-th smallest is the
      largest of a random k-subset;
    - with replacement, the estimator of Dodge et al. 2019 ("Show Your Work", eq. 1 with the
      empirical CDF): `E = sum_i v_(i) * ((i / N)**k - ((i - 1) / N)**k)`.
    Trials from a sequential sampler (TPE) are not exchangeable, so this is the expectation under
    random order, a summary of the budget's value beside the actual best-so-far curve.
    """
    v = np.sort(_finite(values))
    n = v.size
    if n == 0 or k < 1 or (k > n and not replace):
        raise ValueError(f"k must be in 1..{n} for {n} finite trial values without replacement, got {k}")
    i = np.arange(1, n + 1)
    if replace:
        w = (i / n) ** k - ((i - 1) / n) ** k
    else:
        w = comb(i - 1, k - 1) / comb(n, k)
    return float(np.sum(w * v))
