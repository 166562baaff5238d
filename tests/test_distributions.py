"""lrstats.distributions against scipy.stats, the reference it stands in for: every function over a grid
that includes the edges its callers rely on (q = 0 and 1, x = +-inf, NaN, df <= 0, df = inf). They
evaluate the same scipy.special ufuncs, so the results are equal to the last bit, not just close."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from lrstats import distributions as dist

Q = np.array([-0.5, 0.0, 1e-300, 1e-12, 0.001, 0.025, 0.3, 0.5, 0.7, 0.975, 0.999, 1 - 1e-12, 1.0, 1.5, np.nan])
X = np.array([-np.inf, -1e6, -40.0, -3.0, -0.5, -0.0, 0.0, 0.5, 2.0, 3.0, 40.0, 1e6, np.inf, np.nan])
DF = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 5.0, 29.0, 1e3, 1e7, np.inf, np.nan])


def same(ours, theirs):
    """Bit-equal, NaN where scipy has NaN (assert_array_equal treats -0.0 and 0.0 as equal)."""
    np.testing.assert_array_equal(ours, theirs, strict=True)


def grid(*axes):
    return np.meshgrid(*axes, indexing="ij")


@pytest.mark.parametrize(("ours", "theirs", "axes"), [
    (dist.t_ppf, scipy.stats.t.ppf, (Q, DF)),
    (dist.t_cdf, scipy.stats.t.cdf, (X, DF)),
    (dist.t_sf, scipy.stats.t.sf, (X, DF)),
    (dist.chi2_ppf, scipy.stats.chi2.ppf, (Q, DF)),
    (dist.f_ppf, scipy.stats.f.ppf, (Q, DF, DF)),
    (dist.nct_sf, scipy.stats.nct.sf, (X, DF[:-2], np.array([-20.0, -3.0, -0.5, 0.0, 1.0, 4.0, 30.0, np.nan]))),
], ids=["t.ppf", "t.cdf", "t.sf", "chi2.ppf", "f.ppf", "nct.sf"])
def test_equal_to_scipy_stats_on_a_grid(ours, theirs, axes):
    args = grid(*axes)
    want = theirs(*args)
    same(ours(*args), want)
    # One value at a time takes the scalar path (Python comparisons): the same numbers.
    same(np.array([ours(*point) for point in zip(*(a.ravel() for a in args), strict=True)]), want.ravel())


@pytest.mark.parametrize(("ours", "theirs", "axis"), [
    (dist.norm_ppf, scipy.stats.norm.ppf, Q), (dist.norm_cdf, scipy.stats.norm.cdf, X),
    (dist.norm_sf, scipy.stats.norm.sf, X)], ids=["norm.ppf", "norm.cdf", "norm.sf"])
def test_normal_equal_to_scipy_stats(ours, theirs, axis):
    same(ours(axis), theirs(axis))
    same(np.array([ours(v) for v in axis]), theirs(axis))


def test_scalars_in_scalars_out():
    # The callers pass Python floats and ints and get a numpy float back, as from scipy.stats.
    for ours, theirs, args in [(dist.t_ppf, scipy.stats.t.ppf, (0.975, 4)), (dist.t_sf, scipy.stats.t.sf, (2.1, 7)),
                               (dist.t_cdf, scipy.stats.t.cdf, (-2.1, 7)),
                               (dist.norm_ppf, scipy.stats.norm.ppf, (0.8,)),
                               (dist.nct_sf, scipy.stats.nct.sf, (2.3, 9, 1.7)),
                               (dist.chi2_ppf, scipy.stats.chi2.ppf, ([0.025, 0.975], 3))]:
        got, want = ours(*args), theirs(*args)
        assert type(got) is type(want)
        same(got, want)


def test_rankdata_average_ranks():
    rng = np.random.default_rng(0)
    tied = rng.integers(0, 4, size=(6, 9)).astype(float)  # many ties
    for a in (tied, rng.normal(size=(5, 7)), np.array([3.0, 1.0, 3.0, 2.0, 3.0])):
        same(dist.rankdata(a), scipy.stats.rankdata(a, axis=-1))
    same(dist.rankdata(tied, axis=0), scipy.stats.rankdata(tied, axis=0))
    # By hand: [3, 1, 3, 2, 3] -> 1 is rank 1, 2 rank 2, the three 3s share (3 + 4 + 5) / 3 = 4.
    same(dist.rankdata([3.0, 1.0, 3.0, 2.0, 3.0]), np.array([4.0, 1.0, 4.0, 2.0, 4.0]))
    with_nan = np.array([[1.0, np.nan, 2.0], [2.0, 1.0, 3.0]])
    same(dist.rankdata(with_nan), scipy.stats.rankdata(with_nan, axis=-1))


def test_trim_mean():
    rng = np.random.default_rng(1)
    for n in (1, 3, 4, 5, 8, 11):
        x = rng.normal(size=(50, n))
        same(dist.trim_mean(x, 0.25, axis=1), scipy.stats.trim_mean(x, 0.25, axis=1))
        same(dist.trim_mean(x[0], 0.25), scipy.stats.trim_mean(x[0], 0.25))
    assert dist.trim_mean([6.0, 1.0, 100.0, 2.0, 4.0], 0.25) == 4.0  # 1 and 100 cut: mean of 2, 4, 6


def test_ttest_rel():
    rng = np.random.default_rng(2)
    for n in (2, 3, 6, 10, 40):
        a, b = rng.normal(size=n), rng.normal(size=n) + 0.3
        r = scipy.stats.ttest_rel(a, b)
        same(np.array(dist.ttest_rel(a, b)), np.array([r.statistic, r.pvalue]))
    # d = [1, 1, 2, 2, 2]: t = 1.6 / sqrt(0.3 / 5); with 4 df the t cdf is closed-form,
    # F(t) = 1/2 + 3/8 t / s (1 - t^2 / (12 s^2)), s = sqrt(1 + t^2 / 4), and p = 2 (1 - F(t)).
    t, p = dist.ttest_rel([1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 1.0, 2.0, 3.0])
    want = 1.6 / np.sqrt(0.3 / 5)
    s = np.sqrt(1 + want**2 / 4)
    assert (t, p) == pytest.approx((want, 2 * (0.5 - 3 / 8 * want / s * (1 - want**2 / (12 * s**2)))), rel=1e-9)


def test_the_report_imports_no_scipy_stats():
    # scipy.stats and scipy.optimize cost the report about a second of its start; they are imported
    # only where a path needs what scipy.special does not have (several workloads, tied edges, a root).
    code = ("import sys, reports.render, lrstats.selection, lrstats.studies\n"
            "print(sorted(m for m in ('scipy.stats', 'scipy.optimize', 'opda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
