"""reports.stats on tiny arrays whose answers are known by hand or from the libraries' documentation."""

import math

import numpy as np
import pytest
import scipy.stats

from reports import stats


def test_paired_t_by_hand():
    # d = a - b = [1, 1, 2, 2, 2]: mean 1.6, SD sqrt(0.3), t = 1.6 / (sqrt(0.3) / sqrt(5)) = 6.5320.
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    r = stats.paired_tests(a, b, n_resamples=999)
    assert r.n == 5
    assert r.mean_diff == pytest.approx(1.6)
    assert r.t == pytest.approx(1.6 / (math.sqrt(0.3) / math.sqrt(5)), rel=1e-9)
    assert r.t == pytest.approx(6.5320, abs=1e-4)
    assert r.p_t == pytest.approx(2 * scipy.stats.t.sf(r.t, df=4), rel=1e-9)
    assert r.cohen_d == pytest.approx(1.6 / math.sqrt(0.3))
    assert r.diff_ci[0] <= 1.6 <= r.diff_ci[1]


def test_wilcoxon_five_pairs_cannot_reach_significance():
    # All 5 differences positive: the most extreme of 2^5 sign patterns, two-sided p = 2/32.
    r = stats.paired_tests([1.1, 2.2, 3.3, 4.4, 5.5], [1, 2, 3, 4, 5], n_resamples=999)
    assert r.w == 0.0
    assert r.p_w == pytest.approx(0.0625)
    assert r.min_p_w == pytest.approx(0.0625)
    assert "cannot reach p < 0.05" in r.note
    six = stats.paired_tests(np.arange(6) + 1.5, np.arange(6), n_resamples=999)
    assert six.p_w == pytest.approx(2 / 64)
    assert "Wilcoxon" not in six.note


def test_min_wilcoxon_p():
    assert stats.min_wilcoxon_p(5) == 0.0625
    assert stats.min_wilcoxon_p(6) == 0.03125
    assert stats.min_wilcoxon_p(0) == 1.0


def test_single_pair_gives_a_statement_not_a_p_value():
    r = stats.paired_tests([0.9], [0.8])
    assert r.n == 1
    assert r.mean_diff == pytest.approx(0.1)
    assert math.isnan(r.p_t) and math.isnan(r.p_w) and math.isnan(r.diff_ci[0])
    assert "too few for any test" in r.note


def test_pairs_with_nan_are_dropped_and_equal_differences_explained():
    r = stats.paired_tests([1.0, 2.0, np.nan, 4.0], [0.5, 1.5, 3.0, 3.5])
    assert r.n == 3
    assert math.isnan(r.t) and math.isnan(r.cohen_d)
    assert "all paired differences are equal" in r.note
    assert r.diff_ci == (0.5, 0.5)


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


def test_bootstrap_ci_covers_known_mean_and_is_seeded():
    x = np.random.default_rng(1).normal(5.0, 1.0, 200)
    lo, hi = stats.bootstrap_ci(x, seed=3)
    assert lo < 5.0 < hi
    # Width close to the normal-theory 2 * 1.96 * sigma / sqrt(n) = 0.277.
    assert hi - lo == pytest.approx(2 * 1.96 / math.sqrt(200), rel=0.2)
    assert stats.bootstrap_ci(x, seed=3) == (lo, hi)
    direct = scipy.stats.bootstrap((x,), np.mean, rng=np.random.default_rng(3)).confidence_interval
    assert (lo, hi) == pytest.approx((direct.low, direct.high))


def test_bootstrap_ci_degenerate_inputs():
    assert stats.bootstrap_ci([0.7, 0.7, 0.7]) == (0.7, 0.7)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.7]))


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


def test_friedman_needs_workloads_and_strategies():
    fr = stats.friedman_nemenyi(np.array([[0.9, 0.8, 0.7]]))
    assert math.isnan(fr.p)
    assert "needs >= 2 workloads" in fr.note
    np.testing.assert_allclose(fr.avg_ranks, [1, 2, 3])


def test_iqm_by_hand_and_stratified_bootstrap():
    # 8 pooled values 1..8: drop 1, 2 and 7, 8 -> mean(3, 4, 5, 6) = 4.5.
    assert stats.iqm(np.arange(1.0, 9.0).reshape(4, 2)) == pytest.approx(4.5)
    # Runs are resampled within their task: task 0 is all 0, task 1 all 1, so every resample pools
    # four 0s and four 1s and has IQM 0.5 exactly (an unstratified bootstrap would vary).
    scores = np.column_stack([np.zeros(4), np.ones(4)])
    assert stats.iqm_stratified_ci(scores, n_resamples=200, seed=0) == (0.5, 0.5, 0.5)
    point, lo, hi = stats.iqm_stratified_ci(np.random.default_rng(0).normal(size=(10, 3)), seed=0)
    assert lo < point < hi


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
