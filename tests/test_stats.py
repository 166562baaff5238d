"""lrstats.stats on tiny arrays whose answers are known by hand or from the libraries' documentation."""

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from lrstats import stats


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, SD 1, t(2, 0.975) = 4.302653 -> 2 +- 4.302653 / sqrt(3) = 2 +- 2.484138.
    lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    assert (lo, hi) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)
    assert stats.t_interval([0.7, 0.7, 0.7]) == (0.7, 0.7)
    assert all(math.isnan(v) for v in stats.t_interval([0.7, np.nan]))


def test_paired_t_by_hand():
    # d = a - b = [1, 1, 2, 2, 2]: mean 1.6, SD sqrt(0.3), t = 1.6 / (sqrt(0.3) / sqrt(5)) = 6.5320.
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    r = stats.paired_tests(a, b, margin=0.5)
    assert r.n == 5
    assert r.mean_diff == pytest.approx(1.6)
    assert r.sd_diff == pytest.approx(math.sqrt(0.3))
    assert r.t == pytest.approx(1.6 / (math.sqrt(0.3) / math.sqrt(5)), rel=1e-9)
    assert r.t == pytest.approx(6.5320, abs=1e-4)
    assert r.p_t == pytest.approx(2 * scipy.stats.t.sf(r.t, df=4), rel=1e-9)
    assert r.cohen_d == pytest.approx(1.6 / math.sqrt(0.3))
    # Paired t interval: 1.6 +- t(4, 0.975) * sqrt(0.3 / 5) = 1.6 +- 2.7764451 * 0.2449490.
    assert r.diff_ci == pytest.approx((1.6 - 0.680087, 1.6 + 0.680087), abs=1e-6)


def test_paired_interval_agrees_with_the_t_test():
    rng = np.random.default_rng(4)
    for _ in range(50):
        a, b = rng.normal(0.8, 0.01, 4), rng.normal(0.8, 0.01, 4)
        r = stats.paired_tests(a, b, margin=0.005)
        assert (r.diff_ci[0] > 0 or r.diff_ci[1] < 0) == (r.p_t < 0.05)


def test_tost_by_hand_and_against_statsmodels():
    # d = [0.1, 0.2, 0.3]: mean 0.2, SE 0.1 / sqrt(3); margin 0.5. With 2 degrees of freedom the t CDF is
    # 1/2 + t / (2 sqrt(t^2 + 2)). Upper test: t = -0.3 / SE = -3 sqrt(3), p = 1/2 - 3 sqrt(3) / (2 sqrt(29));
    # lower test: t = 0.7 / SE = 7 sqrt(3), p = 1/2 - 7 sqrt(3) / (2 sqrt(149)); TOST p = the larger.
    d = np.array([0.1, 0.2, 0.3])
    upper = 0.5 - 3 * math.sqrt(3) / (2 * math.sqrt(29))
    lower = 0.5 - 7 * math.sqrt(3) / (2 * math.sqrt(149))
    assert stats.tost_p(d, 0.5) == pytest.approx(max(upper, lower), rel=1e-9)
    assert stats.tost_p(d, 0.5) == pytest.approx(0.017549, abs=1e-6)
    a = np.array([0.80, 0.82, 0.81, 0.83])
    b = np.array([0.805, 0.818, 0.808, 0.826])
    assert stats.tost_p(a - b, 0.005) == pytest.approx(ttost_paired(a, b, -0.005, 0.005)[0], rel=1e-9)
    assert math.isnan(stats.tost_p([0.1, 0.1], 0.5))
    with pytest.raises(ValueError, match="margin must be > 0"):
        stats.tost_p(d, 0.0)


@pytest.mark.parametrize("n, alpha", [(3, 0.05), (5, 0.05), (10, 0.01), (5, 0.05 / 3), (20, 0.05 / 17)])
def test_min_detectable_difference_against_statsmodels(n, alpha):
    mdd = stats.min_detectable_difference(n, 0.02, alpha)
    assert mdd == pytest.approx(0.02 * TTestPower().solve_power(nobs=n, alpha=alpha, power=0.8), rel=1e-6)
    # At the MDD the paired t-test has 80% power, by statsmodels' power function.
    assert TTestPower().power(effect_size=mdd / 0.02, nobs=n, alpha=alpha) == pytest.approx(0.8, abs=1e-6)
    assert math.isnan(stats.min_detectable_difference(1, 0.02)) and math.isnan(stats.min_detectable_difference(3, 0))


def _power_by_integration(effect: float, n: int, alpha: float) -> float:
    """The reference: P(|T'| > crit), T' = (Z + nc) / sqrt(V / df), integrated over the chi-square density of V."""
    import scipy.integrate

    df, nc = n - 1, effect * math.sqrt(n)
    crit = scipy.stats.t.ppf(1 - alpha / 2, df)

    def given_v(v):
        s = crit * math.sqrt(v / df)
        return scipy.stats.chi2.pdf(v, df) * (scipy.stats.norm.sf(s - nc) + scipy.stats.norm.cdf(-s - nc))

    return scipy.integrate.quad(given_v, 0, np.inf, limit=200)[0]


@pytest.mark.parametrize("n, alpha, effect", [(3, 0.05, 2.0), (5, 0.01, 1.5), (2, 0.05, 10.0), (3, 0.05 / 17, 9.0),
                                              (3, 0.05 / 17, 40.0), (10, 0.05 / 17, 1.2), (4, 0.05 / 153, 30.0)])
def test_power_from_scipy_nct_equals_the_integral_far_in_the_tail(n, alpha, effect):
    # 3 seeds at a Holm level for 17 comparisons: scipy's nct.cdf returns NaN in the lower tail near
    # the answer; the power read from sf at +-nc still equals the integral.
    power = stats.paired_t_power(effect, n, alpha)
    assert np.isfinite(power)
    assert power == pytest.approx(_power_by_integration(effect, n, alpha), abs=1e-7)
    assert stats.paired_t_power(-effect, n, alpha) == power


def test_mdd_far_in_the_tail():
    mdd = stats.min_detectable_difference(3, 1.0, 0.05 / 17)
    assert stats.paired_t_power(mdd, 3, 0.05 / 17) == pytest.approx(0.8, abs=1e-6)
    assert mdd > stats.min_detectable_difference(3, 1.0, 0.05) > 3.0


@pytest.mark.parametrize("effect, alpha", [(0.5, 0.05), (1.0, 0.05), (0.5, 0.05 / 17), (2.5, 0.01)])
def test_seeds_needed_against_statsmodels(effect, alpha):
    n = stats.seeds_needed(effect * 0.01, 0.01, alpha)
    assert n == math.ceil(TTestPower().solve_power(effect_size=effect, alpha=alpha, power=0.8))
    assert stats.paired_t_power(effect, n, alpha) >= 0.8 > stats.paired_t_power(effect, n - 1, alpha)
    assert stats.seeds_needed(1e-6, 1.0) == stats.MAX_SEEDS + 1
    assert stats.seeds_needed(0.005, 0.0) is None


def test_wilcoxon_five_pairs_cannot_reach_significance():
    # All 5 differences positive: the most extreme of 2^5 sign patterns, two-sided p = 2/32.
    r = stats.paired_tests([1.1, 2.2, 3.3, 4.4, 5.5], [1, 2, 3, 4, 5], margin=0.5)
    assert r.w == 0.0
    assert r.p_w == pytest.approx(0.0625)
    assert r.min_p_w == pytest.approx(0.0625)
    assert "cannot reach p < 0.05" in r.note
    six = stats.paired_tests(np.arange(6) + 1.5, np.arange(6), margin=0.5)
    assert six.p_w == pytest.approx(2 / 64)
    assert "Wilcoxon" not in six.note


def test_min_wilcoxon_p():
    assert stats.min_wilcoxon_p(5) == 0.0625
    assert stats.min_wilcoxon_p(6) == 0.03125
    assert stats.min_wilcoxon_p(0) == 1.0


def test_signed_rank_p_equals_scipys_exact_test_on_tie_free_differences():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 6, 10, 13, 26, 50):
        for _ in range(3):
            d = rng.normal(size=n)
            w, p = stats.signed_rank_test(d)
            exact = scipy.stats.wilcoxon(d, method="exact")
            assert (w, p) == pytest.approx((exact.statistic, exact.pvalue), rel=1e-12, abs=0)


def test_signed_rank_p_with_ties_and_zeros_by_hand_and_as_scipys_permutation_test():
    # d = [1, 1, 1, -0.5, 0]: the zero is dropped; |d| ranks 3, 3, 3 (ranks 2-4 shared) and 1, so R+ = 9,
    # W = min(9, 1) = 1. Of the 16 equally likely sign patterns, R+ >= 9 in 2 (all three 3s, with or
    # without the 1), R+ <= 9 in 15: p = 2 * 2/16 = 0.25.
    assert stats.signed_rank_test([1, 1, 1, -0.5, 0]) == (1.0, 0.25)
    assert all(math.isnan(v) for v in stats.signed_rank_test([0.0, 0.0]))
    # Accuracy differences that subtraction left a rounding error apart tie: 16 test rows of 1,600 each,
    # 0.8225 - 0.8125 and 0.830625 - 0.820625.
    a, b = np.array([0.8225, 0.830625, 0.8725, 0.85]), np.array([0.8125, 0.820625, 0.87, 0.8525])
    assert len(set(a - b)) == 4 and stats.signed_rank_test(a - b) == stats.signed_rank_test([4, 4, 1, -1])
    # scipy's default falls back to an exact permutation test over the 2^n sign patterns with ties or
    # zeros up to 13 pairs: the same p, counted instead of enumerated.
    rng = np.random.default_rng(4)
    for n in (4, 7, 10, 13):
        d = rng.integers(-3, 4, size=n) / 1600
        w, p = stats.signed_rank_test(d)
        reference = scipy.stats.wilcoxon(d)
        assert (w, p) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-12)


def test_signed_rank_p_above_fifty_pairs_is_the_tie_corrected_normal_approximation():
    d = np.repeat([-2.0, -1.0, 1.0, 2.0, 3.0, 0.0], [10, 15, 20, 10, 5, 4])  # 60 non-zero, ties everywhere
    nonzero = d[d != 0]
    n = nonzero.size
    ranks = scipy.stats.rankdata(np.abs(nonzero))
    r_plus = ranks[nonzero > 0].sum()
    ties = np.array([35, 20, 5])  # |d| = 1, 2, 3
    z = (r_plus - n * (n + 1) / 4) / math.sqrt((n * (n + 1) * (2 * n + 1) - np.sum(ties**3 - ties) / 2) / 24)
    w, p = stats.signed_rank_test(d)
    assert w == min(r_plus, n * (n + 1) / 2 - r_plus)
    assert p == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-12)
    assert p == pytest.approx(scipy.stats.wilcoxon(d, method="asymptotic").pvalue, rel=1e-12)


@pytest.mark.parametrize("effect, alpha", [(0.05, 0.05), (0.3, 1e-12), (1.5, 0.05 / 153), (4.0, 0.05)])
def test_seeds_needed_is_the_fewest_pairs_whose_power_reaches_80_percent(effect, alpha):
    # Brute force from 2 pairs up: the vectorised search must land on the same n (1e-12 puts the answer
    # more than one search window above the normal approximation; effect 4 below it, at 2 pairs).
    n = 2
    while stats.paired_t_power(effect, n, alpha) < 0.8:
        n += 1
    assert stats.seeds_needed(effect, 1.0, alpha) == n


def test_single_pair_gives_a_statement_not_a_p_value():
    r = stats.paired_tests([0.9], [0.8], margin=0.005)
    assert r.n == 1
    assert r.mean_diff == pytest.approx(0.1)
    assert math.isnan(r.p_t) and math.isnan(r.p_w) and math.isnan(r.diff_ci[0])
    assert "too few for any test" in r.note


def test_pairs_with_nan_are_dropped_and_equal_differences_explained():
    r = stats.paired_tests([1.0, 2.0, np.nan, 4.0], [0.5, 1.5, 3.0, 3.5], margin=0.1)
    assert r.n == 3
    assert math.isnan(r.t) and math.isnan(r.cohen_d)
    assert "all paired differences are equal" in r.note
    assert r.diff_ci == (0.5, 0.5)
    assert math.isnan(r.p_tost) and math.isnan(r.mdd) and r.seeds_for_margin is None


def test_cliffs_delta_by_hand():
    # 3 vs (1, 2, 3.5): > > <; 4 vs all: > > >  -> (5 - 1) / 6.
    assert stats.cliffs_delta([3, 4], [1, 2, 3.5]) == pytest.approx(4 / 6)
    assert stats.cliffs_delta([1, 2, 3], [2, 2, 2]) == 0.0
    assert stats.cliffs_delta([5, 6], [1, 2]) == 1.0


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06.
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    out = stats.holm([0.01, np.nan, 0.04])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])


def test_holm_equals_statsmodels_with_ties_and_ones():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(5)
    for m in (1, 2, 7, 40):
        p = np.round(rng.uniform(0, 1, m) ** 3, 3)  # rounding makes ties; large p get capped at 1
        np.testing.assert_allclose(stats.holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)


def test_friedman_on_a_known_table():
    # 3 workloads, 3 strategies, the same order everywhere: rank sums 3, 6, 9;
    # chi2 = 12 / (n k (k + 1)) * sum(R^2) - 3 n (k + 1) = 12/36 * 126 - 36 = 6, p = exp(-3).
    scores = np.array([[0.9, 0.8, 0.7], [0.95, 0.85, 0.6], [0.7, 0.6, 0.5]])
    fr = stats.friedman_nemenyi(scores)
    np.testing.assert_allclose(fr.avg_ranks, [1, 2, 3])
    assert fr.statistic == pytest.approx(6.0)
    assert fr.p == pytest.approx(math.exp(-3))
    # Demsar (2006) Table 5: q_0.05 = 2.343 for k = 3; CD = q sqrt(k (k + 1) / (6 N)).
    assert fr.cd == pytest.approx(2.343 * math.sqrt(12 / 18), abs=1e-3)
    assert fr.nemenyi_p.shape == (3, 3)
    np.testing.assert_allclose(fr.nemenyi_p, fr.nemenyi_p.T)


def test_nemenyi_p_is_scikit_posthocs_on_an_array():
    # The post-hoc was scikit-posthocs' until the statistics became numpy and scipy only: the same numbers,
    # ties in a block included, on Demsar-sized tables and on the library's own docstring example.
    import scikit_posthocs

    rng = np.random.default_rng(3)
    tables = [np.array([[31, 27, 24], [31, 28, 31], [45, 29, 46], [21, 18, 48], [42, 36, 46], [32, 17, 40]]),
              np.round(rng.uniform(0.5, 0.9, (5, 18)), 2), rng.uniform(size=(30, 4))]
    for scores in tables:
        np.testing.assert_allclose(stats.nemenyi_p(scores),
                                   scikit_posthocs.posthoc_nemenyi_friedman(scores).to_numpy(dtype=float),
                                   rtol=0, atol=1e-12)


def test_critical_difference_is_stated_against_the_number_of_strategies():
    # 18 strategies on 5 workloads: CD about 11.8 of a possible 17 ranks.
    scores = np.random.default_rng(1).uniform(0.5, 0.9, (5, 18))
    fr = stats.friedman_nemenyi(scores)
    assert fr.cd == pytest.approx(11.78, abs=0.01)
    assert "too few to separate most of these 18 strategies" in fr.note
    need = stats.workloads_for_cd(18, 1.0)
    assert stats.nemenyi_cd(18, need) <= 1.0 < stats.nemenyi_cd(18, need - 1)
    assert f"about {need} workloads" in fr.note
    # Three strategies on thirty workloads: CD 0.6 of a possible 2, no such warning.
    assert "too few" not in stats.friedman_nemenyi(np.random.default_rng(2).uniform(size=(30, 3))).note


def test_friedman_needs_workloads_and_strategies():
    fr = stats.friedman_nemenyi(np.array([[0.9, 0.8, 0.7]]))
    assert math.isnan(fr.p)
    assert "needs >= 2 workloads" in fr.note
    np.testing.assert_allclose(fr.avg_ranks, [1, 2, 3])


def test_task_iqm_by_hand_and_stratified_bootstrap():
    # Task 0 runs 1, 2, 3, 4, 100: trimming one each side leaves 2, 3, 4 -> 3; task 1 runs 0..4 -> 2; mean 2.5.
    scores = np.column_stack([[1.0, 2, 3, 4, 100], [0.0, 1, 2, 3, 4]])
    assert stats.task_iqm(scores) == pytest.approx(2.5)
    # Three runs are not trimmed: the mean of each task, then of the tasks.
    assert stats.task_iqm(np.column_stack([[1.0, 2, 6], [0.0, 0, 3]])) == pytest.approx((3 + 1) / 2)
    # Runs are resampled within their task: constant tasks give a point interval.
    const = np.column_stack([np.zeros(4), np.ones(4)])
    assert stats.task_iqm_ci(const, n_resamples=200, seed=0) == (0.5, 0.5, 0.5)
    point, lo, hi = stats.task_iqm_ci(np.random.default_rng(0).normal(size=(10, 3)), seed=0)
    assert lo < point < hi


def test_a_drop_on_any_one_task_lowers_the_task_iqm_where_pooling_hides_it():
    # 5 tasks x 5 runs; task 4 sits well below the others, as raw accuracies of a hard workload do.
    rng = np.random.default_rng(0)
    scores = np.array([0.9, 0.88, 0.86, 0.84, 0.6]) + rng.normal(0, 0.005, (5, 5))
    pooled = scipy.stats.trim_mean(scores.ravel(), 0.25)
    for task in range(5):
        dropped = scores.copy()
        dropped[:, task] -= 0.10
        # Trimming is shift-equivariant per task: the aggregate falls by exactly 0.10 / 5.
        assert stats.task_iqm(dropped) == pytest.approx(stats.task_iqm(scores) - 0.02)
    # The pooled IQM (rliable's) trims the low task away entirely: its drop does not move it.
    low = scores.copy()
    low[:, 4] -= 0.10
    assert scipy.stats.trim_mean(low.ravel(), 0.25) == pytest.approx(pooled)


def test_performance_profile_by_hand():
    scores = np.array([[0.5, 0.9], [0.7, 0.95]])
    # tau 0.6: task 0 1/2 above, task 1 2/2 -> 0.75; tau 0.92: 0 and 1/2 -> 0.25.
    point, lo, hi = stats.performance_profile(scores, [0.6, 0.92], n_resamples=200, seed=0)
    np.testing.assert_allclose(point, [0.75, 0.25])
    assert np.all(lo <= point) and np.all(point <= hi)


def test_expected_max_by_hand():
    v = [3.0, 1.0, 2.0]
    assert stats.expected_max(v, 1) == pytest.approx(2.0)
    # k-subsets of {1,2,3}: maxima 2, 3, 3.
    assert stats.expected_max(v, 2) == pytest.approx(8 / 3)
    assert stats.expected_max(v, 3) == pytest.approx(3.0)
    # With replacement (Dodge et al. 2019): the 9 ordered pairs have maxima 1x1, 2x3, 3x5.
    assert stats.expected_max(v, 2, replace=True) == pytest.approx(22 / 9)
    with pytest.raises(ValueError, match="k must be in 1..3"):
        stats.expected_max(v, 4)
