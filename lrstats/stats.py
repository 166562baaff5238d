"""The report's tests, intervals, corrections and aggregates: pure functions over documented array shapes.

Every function takes plain arrays (shapes in its docstring) and, where it resamples, a `seed`, so
the same Parquet gives the same report. Per-pair intervals are Student t intervals, which stay
honest at 3-10 seeds; bootstraps are used only for aggregates over many runs and workloads. Tests
come from scipy (Nemenyi's post-hoc written out as scikit-posthocs computes it), their distributions from
`lrstats.distributions` (scipy.special's ufuncs, without scipy.stats' import and per-call cost); the power
of the paired t-test is computed from the noncentral t (the tests check it against statsmodels). The
aggregate over workloads and the performance profiles follow rliable's definitions (Agarwal et al.
2021), written out here because rliable pulls in `arch`, `absl-py` and `seaborn` for a dozen lines of
numpy.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import comb

from lrstats import distributions as dist

#: Two-sided significance level used throughout the report.
ALPHA = 0.05
#: Power at which the minimal detectable difference and the seeds needed are stated.
POWER = 0.8
#: Seeds-needed searches stop here and report "more than this".
MAX_SEEDS = 10_000


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
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    mean = float(np.mean(x))
    half = float(dist.t_ppf(0.5 + confidence / 2, x.size - 1) * np.std(x, ddof=1) / math.sqrt(x.size))
    return (mean - half, mean + half)


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided p-value the exact Wilcoxon signed-rank test can give with `n` pairs.

    All `n` non-zero differences with the same sign is the most extreme of the `2**n` equally likely
    sign patterns, and two-sided doubles it: `2 / 2**n` (0.0625 for n = 5, so five seeds can never
    reach p < 0.05).
    """
    return min(1.0, 2.0 / 2.0**n) if n > 0 else 1.0


#: Up to this many non-zero differences the signed-rank p-value is exact (every sign pattern counted);
#: above, the normal approximation, as scipy's ``wilcoxon`` does above 50.
WILCOXON_EXACT_MAX = 50


def signed_rank_test(d) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of the paired differences `d` `(n_pairs,)`: `(W, p)`.

    Zero differences are dropped (Wilcoxon's method) and the others ranked by size, equal sizes sharing
    their average rank; W = min(R+, R-), the smaller rank sum of one sign. Differences are compared to
    12 decimals, so two equal accuracy differences that subtraction left a rounding error apart tie
    (accuracies are fractions of test rows, and ties between seeds are common).

    With at most `WILCOXON_EXACT_MAX` non-zero differences, p is exact and conditional on the ranks:
    under the null each of the 2^n sign patterns is equally likely, and the distribution of R+ over them
    is counted by a subset-sum recursion over the ranks (doubled, so that average ranks are integers),
    p = min(1, 2 min(P(R+ <= r), P(R+ >= r))). Without ties this is the exact null distribution scipy's
    ``wilcoxon(method="exact")`` uses, and the same p; with ties it is the permutation test scipy's
    default falls back to up to 13 pairs (and exact beyond, where scipy approximates), counted in
    microseconds where scipy enumerates the 2^n patterns (0.37 s a pair at 10 seeds on the 2-core
    machine under load, the report's main cost before). Above, the normal approximation with the
    tie correction, z = (R+ - n(n+1)/4) / sqrt((n(n+1)(2n+1) - sum(t^3 - t)/2) / 24) over the tie
    groups' sizes t, without continuity correction: scipy's ``method="asymptotic"``. NaN without a
    non-zero difference.
    """
    d = np.round(_finite(d), 12)
    d = d[d != 0]
    n = int(d.size)
    if n == 0:
        return (math.nan, math.nan)
    ranks = dist.rankdata(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    w = min(r_plus, n * (n + 1) / 2 - r_plus)
    if n > WILCOXON_EXACT_MAX:
        _, ties = np.unique(np.abs(d), return_counts=True)
        var = (n * (n + 1) * (2 * n + 1) - float(np.sum(ties.astype(float) ** 3 - ties)) / 2) / 24
        z = (r_plus - n * (n + 1) / 4) / math.sqrt(var)
        return (w, float(min(1.0, 2 * dist.norm_sf(abs(z)))))
    doubled = np.rint(2 * ranks).astype(np.int64)  # average ranks are multiples of 1/2
    counts = np.zeros(int(doubled.sum()) + 1)
    counts[0] = 1.0  # counts[s]: sign patterns whose doubled R+ is s; exact in float64 up to 2^53 patterns
    for r in doubled:
        counts[r:] = counts[r:] + counts[:-r]
    t = int(round(2 * r_plus))
    total = 2.0**n
    low, high = counts[: t + 1].sum() / total, counts[t:].sum() / total
    return (w, float(min(1.0, 2 * min(low, high))))


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


def tost_p(d, margin: float) -> float:
    """Two one-sided t-tests (Schuirmann 1987) that the mean of the paired differences `d` `(n,)`
    lies inside `(-margin, margin)`: the larger of the p-values of H0 mean <= -margin and
    H0 mean >= margin. Small p = evidence of equivalence. NaN when n < 2 or the differences have
    no spread (the t statistics are undefined)."""
    d = _finite(d)
    if margin <= 0:
        raise ValueError(f"equivalence margin must be > 0, got {margin}")
    if d.size < 2:
        return math.nan
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        return math.nan
    se, df, mean = sd / math.sqrt(d.size), d.size - 1, float(np.mean(d))
    p_low = dist.t_sf((mean + margin) / se, df)
    p_high = dist.t_cdf((mean - margin) / se, df)
    return float(max(p_low, p_high))


def paired_t_power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired (one-sample) t-test with `n` pairs at level `alpha` when the
    true mean difference is `effect` standard deviations of the differences (noncentral t).

    P(T' > crit) + P(T' < -crit) with T' noncentral t(n - 1, effect sqrt(n)), both tails from
    `distributions.nct_sf` (scipy.stats.nct.sf's): the lower one as sf(crit) at -nc, by symmetry,
    because scipy's `cdf` returns NaN far in that tail. The lower tail is at most Phi(-|nc|) (T' < 0
    needs Z + nc < 0), which also bounds scipy's rounding noise there.
    """
    if n < 2:
        return math.nan
    return float(_power_curve(effect, np.array([n]), alpha)[0])


def _power_curve(effect: float, ns: np.ndarray, alpha: float) -> np.ndarray:
    """`paired_t_power` at every pair count of `ns` `(m,)`, each >= 2, in one vectorised call: the
    per-call overhead, not the arithmetic, is what a search over n pays for."""
    ns = np.asarray(ns, dtype=float)
    df = ns - 1
    crit = dist.t_ppf(1 - alpha / 2, df)
    nc = abs(effect) * np.sqrt(ns)
    upper = dist.nct_sf(crit, df, nc)
    lower = np.minimum(np.nan_to_num(dist.nct_sf(crit, df, -nc), nan=1.0), dist.norm_cdf(-nc))
    return np.asarray(upper + lower, dtype=float)


@functools.lru_cache(maxsize=256)
def _detectable_effect(n: int, alpha: float, power: float) -> float:
    """The standardised effect the paired t-test detects with probability `power`: it depends on n and
    alpha only, so a whole Holm family (same n, same level) solves it once."""
    from scipy.optimize import brentq  # scipy.optimize costs the report's start 0.2 s: only when needed

    high = 1.0
    while paired_t_power(high, n, alpha) < power:
        high *= 2
    return float(brentq(lambda e: paired_t_power(e, n, alpha) - power, 0.0, high, xtol=1e-12))


def min_detectable_difference(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference the two-sided paired t-test with `n` pairs detects with
    probability `power` at level `alpha`, when the differences have standard deviation `sd`.

    In the units of `sd`. NaN when n < 2 or sd is not a positive number. The SD is the one observed
    on the same few seeds, so this figure is itself uncertain.
    """
    if n < 2 or not (np.isfinite(sd) and sd > 0):
        return math.nan
    return _detectable_effect(int(n), float(alpha), float(power)) * float(sd)


#: Pair counts `seeds_needed` tries in one vectorised power call: the t-test needs about
#: z_{1-alpha/2}^2 / 2 pairs more than the normal approximation (Guenther 1981), 5 at alpha 0.05/17.
_SEARCH_WINDOW = 16


def seeds_needed(difference: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Fewest seeds (pairs) with which the two-sided paired t-test detects a true mean difference
    `difference` with probability `power` at level `alpha`, the differences having SD `sd`.

    None when sd is not a positive number; `MAX_SEEDS + 1` when even `MAX_SEEDS` seeds are not enough.
    The search starts at the normal approximation ((z_{1-alpha/2} + z_power) / effect)^2, which the t-test
    needs at least, and takes the first n from there whose power reaches `power` (power rises with n),
    trying `_SEARCH_WINDOW` values of n per vectorised call; below the start only if the start already does.
    """
    if not (np.isfinite(sd) and sd > 0 and difference > 0):
        return None
    effect = difference / sd
    z = dist.norm_ppf(1 - alpha / 2) + dist.norm_ppf(power)
    start = max(2, math.floor((z / effect) ** 2))
    if start > MAX_SEEDS:
        return MAX_SEEDS + 1
    low = start
    while True:
        ns = np.arange(low, min(low + _SEARCH_WINDOW, MAX_SEEDS + 1))
        reached = _power_curve(effect, ns, alpha) >= power
        if reached.any():
            n = int(ns[int(np.argmax(reached))])
            break
        if ns[-1] >= MAX_SEEDS:
            return MAX_SEEDS + 1
        low = int(ns[-1]) + 1
    if n == start:
        while n > 2 and paired_t_power(effect, n - 1, alpha) >= power:
            n -= 1
    return n


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of strategy A against strategy B on one workload (A - B).

    `mean_diff`, `sd_diff`: mean and SD of the differences. `diff_ci`: paired t interval of the mean
    difference (it excludes 0 exactly when `p_t` < 1 - confidence). `t`, `p_t`: paired t-test
    (`distributions.ttest_rel`, scipy.stats.ttest_rel's numbers). `w`, `p_w`: Wilcoxon signed-rank
    (`signed_rank_test`, zero differences discarded, exact for small n); `min_p_w`: the smallest p it
    could give with this many non-zero differences. `cohen_d`: Cohen's d_z, mean difference over the SD
    of the differences. `cliffs_delta`: see `cliffs_delta`. `p_tost`: `tost_p` at `margin`. `mdd`:
    `min_detectable_difference` at `power_alpha`; `seeds_for_margin`: `seeds_needed` for a difference of
    `margin` at `power_alpha`. `note`: plain words for anything that makes a number undefined or a test
    unable to reach significance.
    """

    n: int
    mean_diff: float
    sd_diff: float
    diff_ci: tuple[float, float]
    t: float
    p_t: float
    w: float
    p_w: float
    min_p_w: float
    cohen_d: float
    cliffs_delta: float
    margin: float
    p_tost: float
    power_alpha: float
    mdd: float
    seeds_for_margin: int | None
    note: str


def paired_tests(a, b, *, margin: float, power_alpha: float = ALPHA) -> PairedResult:
    """Paired t-test with its t interval, Wilcoxon, TOST equivalence at `margin`, effect sizes and power.

    `a` and `b` have shape `(n_pairs,)`, element i of each from the same seed. Pairs with a NaN on
    either side are dropped. `power_alpha` is the level at which the minimal detectable difference
    and the seeds needed are computed (the caller passes the strictest level its multiple-testing
    correction applies). With fewer than two pairs no test is run and `note` says so instead.
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
        return PairedResult(n, mean_diff, nan, (nan, nan), nan, nan, nan, nan, min_wilcoxon_p(n), nan,
                            cliffs_delta(a, b), margin, nan, power_alpha, nan, None,
                            f"n = {n} paired seed(s): too few for any test or interval")
    d = a - b
    notes = []
    nonzero = int(np.count_nonzero(np.round(d, 12)))  # as signed_rank_test counts them
    min_p_w = min_wilcoxon_p(nonzero)
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        # Every difference is the same number: the t statistic divides by zero and d_z is infinite.
        t = p_t = cohen_d = nan
        notes.append("all paired differences are equal: t-test, TOST and Cohen's d undefined")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t, p_t = dist.ttest_rel(a, b)
        cohen_d = float(np.mean(d) / sd)
    if nonzero == 0:
        w, p_w = nan, nan
        notes.append("all paired differences are zero: Wilcoxon undefined")
    else:
        w, p_w = signed_rank_test(d)
        if min_p_w > ALPHA:
            notes.append(f"Wilcoxon with {nonzero} non-zero pairs cannot reach p < {ALPHA} "
                         f"(smallest possible p = {min_p_w:.3g})")
    return PairedResult(n, float(np.mean(d)), sd, t_interval(d), t, p_t, w, p_w, min_p_w, cohen_d,
                        cliffs_delta(a, b), margin, tost_p(d, margin), power_alpha,
                        min_detectable_difference(n, sd, power_alpha), seeds_needed(margin, sd, power_alpha),
                        "; ".join(notes))


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values of a family `(n_tests,)`: the i-th smallest p times (m - i + 1), made
    monotone and capped at 1 (Holm 1979; equal to statsmodels' `multipletests(method='holm')`, which
    the tests check, and computed here because that call runs a full garbage collection every time).

    NaN entries (tests that could not be run) are not part of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        m = order.size
        out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    return out


def average_ranks(scores) -> np.ndarray:
    """Mean rank per strategy of `scores` `(n_workloads x n_strategies)`; rank 1 = highest score, ties averaged."""
    scores = np.asarray(scores, dtype=float)
    return dist.rankdata(-scores, axis=1).mean(axis=0)


def _nemenyi_q(k: int, alpha: float) -> float:
    from scipy.stats import studentized_range  # only a sweep over several workloads needs it

    return float(studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi critical difference of average ranks for `k` strategies on `n` workloads (Demsar 2006).

    `CD = q_alpha * sqrt(k (k + 1) / (6 n))`, with `q_alpha` the studentized range quantile over
    sqrt(2) (2.343 for k = 3 at alpha 0.05, Demsar's Table 5).
    """
    return _nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def workloads_for_cd(k: int, cd: float, alpha: float = ALPHA) -> int:
    """Fewest workloads at which the Nemenyi critical difference of `k` strategies is at most `cd` ranks."""
    return math.ceil(_nemenyi_q(k, alpha) ** 2 * k * (k + 1) / (6.0 * cd**2) - 1e-9)


def nemenyi_p(scores) -> np.ndarray:
    """Nemenyi's post-hoc p-values `(k x k)` for `scores` `(n_blocks x k_groups)` (Demsar 2006): the
    studentized range of the mean-rank difference, |R_i - R_j| / sqrt(k (k + 1) / (6 n)) * sqrt(2), with
    k groups and infinite df; 1 on the diagonal. The formula of scikit-posthocs'
    `posthoc_nemenyi_friedman` on an array (tests/test_stats.py checks the two agree), without its pandas.
    """
    from scipy.stats import studentized_range  # only a sweep over several workloads needs it

    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    mean_ranks = dist.rankdata(scores, axis=1).mean(axis=0)
    upper = np.triu_indices(k, 1)
    q = np.abs(mean_ranks[upper[0]] - mean_ranks[upper[1]]) / np.sqrt(k * (k + 1.0) / (6.0 * n))
    p = np.zeros((k, k))
    p[upper] = studentized_range.sf(q * np.sqrt(2.0), k, np.inf)
    p = p + p.T
    np.fill_diagonal(p, 1.0)
    return p


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
    `scipy.stats.friedmanchisquare` and `nemenyi_p` (scikit-posthocs' `posthoc_nemenyi_friedman`); its
    `(k x k)` p-value matrix is returned as `nemenyi_p`. Needs at least 2 workloads and 3 strategies;
    otherwise the statistics are NaN and `note` says why.
    """
    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    ranks = average_ranks(scores) if n else np.full(k, np.nan)
    if n < 2 or k < 3:
        return FriedmanResult(n, k, ranks, math.nan, math.nan, math.nan, np.full((k, k), np.nan),
                              f"Friedman test needs >= 2 workloads and >= 3 strategies (have {n} and {k})")
    from scipy.stats import friedmanchisquare  # only a sweep over several workloads gets here

    stat, p = friedmanchisquare(*scores.T)
    nem = nemenyi_p(scores)
    cd = nemenyi_cd(k, n, alpha)
    notes = []
    if n < 5:
        notes.append(f"only {n} workloads: the Friedman chi-square approximation and the Nemenyi test have "
                     "little power; read the ranks as descriptive")
    if cd >= (k - 1) / 2 and cd > 1:
        notes.append(f"{n} workloads are too few to separate most of these {k} strategies: the critical difference "
                     f"is {cd:.1f} ranks of a possible {k - 1}, so two strategies are told apart only when one "
                     "ranks far above the other on nearly every workload; a pair the test does not separate is "
                     "not shown to be equal. Separating strategies one average rank apart would take about "
                     f"{workloads_for_cd(k, 1.0, alpha)} workloads")
    return FriedmanResult(n, k, ranks, float(stat), float(p), cd, nem, "; ".join(notes))


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


def task_iqm(scores) -> float:
    """Mean over tasks of each task's interquartile mean, `scores` `(n_runs x n_tasks)`, NaN = missing run.

    Per task, the 25%-trimmed mean of its runs (`distributions.trim_mean`, scipy.stats.trim_mean's: with
    3 runs nothing is cut, with 5 the lowest and the highest); then the plain mean over tasks, so every task weighs the
    same. rliable pools all runs of all tasks before trimming; with a handful of tasks that can cut
    away a whole task, so that a task getting worse leaves the aggregate unchanged or even raises it.
    """
    return float(np.mean([dist.trim_mean(c, 0.25) for c in _column_values(scores)]))


def task_iqm_ci(
    scores, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """`task_iqm` of `scores` `(n_runs x n_tasks)` and its stratified-bootstrap percentile CI: `(point, low, high)`.

    Stratified as in rliable (`get_interval_estimates`): each resample draws runs with replacement
    within each task, so every task keeps its weight.
    """
    cols = _column_values(scores)
    boot = np.mean([dist.trim_mean(r, 0.25, axis=1) for r in _stratified_resamples(cols, n_resamples, seed)],
                   axis=0)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return task_iqm(scores), float(low), float(high)


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
