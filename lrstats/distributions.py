"""The few distribution functions lrsweep's statistics use, straight from scipy.special's ufuncs.

scipy.stats' ``t.ppf``, ``norm.cdf``, ``nct.sf`` ... evaluate these same ufuncs (``t._ppf`` is ``stdtrit``),
wrapped in argument checks that cost more than the arithmetic, and importing scipy.stats (with the
scipy.optimize it imports) takes about a second of the report's start. Here each function is the ufunc
with the edge behaviour of its scipy.stats counterpart, which its callers rely on: NaN for an invalid
shape parameter (df <= 0) or a probability outside [0, 1], the support's ends at q = 0 and 1, 0 and 1
at x = -inf and +inf, NaN for a NaN argument. tests/test_distributions.py checks every function
against scipy.stats over a grid with those edges (bit-equal). Vectorised; a scalar in, a numpy scalar out.

Also the few scipy.stats helpers the report's main path used: `rankdata` (average ranks),
`trim_mean` and `ttest_rel`, written as scipy computes them, so their results are the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special as sc

# scipy.stats.nct.sf's own ufunc (Boost's complement of the noncentral t): the public nctdtr gives only
# the cdf, and 1 - cdf loses the upper tail the power of a t-test lives in.
from scipy.special._ufuncs import _nct_sf

__all__ = ["chi2_ppf", "f_ppf", "nct_sf", "norm_cdf", "norm_ppf", "norm_sf", "rankdata", "t_cdf", "t_ppf",
           "t_sf", "trim_mean", "ttest_rel"]


def _positive(*shapes):
    """Every shape parameter (a df) is > 0: False for 0, negative and NaN, as scipy.stats' checks."""
    ok = True
    for v in shapes:
        ok = ok & (v > 0)
    return ok


def _nct_valid(df, nc):
    return (df > 0) & (nc == nc)


def _scalars(*values) -> list[float] | None:
    """The arguments as Python floats when each is one number (most calls), else None. Python's
    comparisons on them cost a tenth of numpy's on 0-d arrays, which would dominate a call."""
    if all(np.ndim(v) == 0 for v in values):
        return [float(v) for v in values]
    return None


def _quantile(ufunc, q, args, valid, low: float, high: float):
    """``ufunc(*args, q)`` where ``valid(*args)`` and 0 < q < 1; the support's ends ``low`` and ``high``
    at q = 0 and 1; NaN elsewhere (scipy.stats' ``rv_continuous.ppf``)."""
    one = _scalars(q, *args)
    if one is not None:
        q, *args = one
        if not (valid(*args) and 0 <= q <= 1):
            return np.float64(np.nan)
        return np.float64(low if q == 0 else high if q == 1 else ufunc(*args, q))
    q, args = np.asarray(q, dtype=float), [np.asarray(a, dtype=float) for a in args]
    ok = valid(*args)
    out = np.where(ok & (q > 0) & (q < 1), ufunc(*args, q), np.nan)
    out = np.where(ok & (q == 0), low, np.where(ok & (q == 1), high, out))
    return out[()] if out.ndim == 0 else out


def _tail(fn, x, args, valid, below: float, above: float):
    """``fn(x, *args)`` inside the open support (-inf, inf); ``below`` at x = -inf and ``above`` at
    x = +inf; NaN for a NaN ``x`` or where not ``valid(*args)`` (scipy.stats' ``cdf`` and ``sf``)."""
    one = _scalars(x, *args)
    if one is not None:
        x, *args = one
        if math.isnan(x) or not valid(*args):
            return np.float64(np.nan)
        return np.float64(fn(x, *args) if math.isfinite(x) else above if x > 0 else below)
    x, args = np.asarray(x, dtype=float), [np.asarray(a, dtype=float) for a in args]
    out = np.where(np.isfinite(x), fn(x, *args), np.where(x > 0, above, below))
    out = np.where(valid(*args) & ~np.isnan(x), out, np.nan)
    return out[()] if out.ndim == 0 else out


def t_ppf(q, df):
    """Student t quantile (scipy.stats.t.ppf): ``stdtrit``; -inf, inf at q = 0, 1; NaN for df <= 0."""
    return _quantile(sc.stdtrit, q, (df,), _positive, -np.inf, np.inf)


def t_cdf(x, df):
    """Student t cdf (scipy.stats.t.cdf): ``stdtr(df, x)``; NaN for df <= 0 or x NaN."""
    return _tail(lambda v, d: sc.stdtr(d, v), x, (df,), _positive, 0.0, 1.0)


def t_sf(x, df):
    """Student t survival function (scipy.stats.t.sf): ``stdtr(df, -x)``, exact in the upper tail."""
    return _tail(lambda v, d: sc.stdtr(d, -v), x, (df,), _positive, 1.0, 0.0)


def norm_ppf(q):
    """Standard normal quantile (scipy.stats.norm.ppf): ``ndtri``; -inf, inf at q = 0, 1."""
    return _quantile(sc.ndtri, q, (), _positive, -np.inf, np.inf)


def norm_cdf(x):
    """Standard normal cdf (scipy.stats.norm.cdf): ``ndtr``."""
    return _tail(sc.ndtr, x, (), _positive, 0.0, 1.0)


def norm_sf(x):
    """Standard normal survival function (scipy.stats.norm.sf): ``ndtr(-x)``."""
    return _tail(lambda v: sc.ndtr(-v), x, (), _positive, 1.0, 0.0)


def _nct_tail(x, df, nc):
    with np.errstate(over="ignore"):  # Boost overflows inside far tails and still returns the right 0 or 1
        return np.clip(_nct_sf(x, df, nc), 0, 1)


def nct_sf(x, df, nc):
    """Noncentral t survival function (scipy.stats.nct.sf), clipped to [0, 1] as scipy clips it; NaN for
    df <= 0 or NaN nc."""
    return _tail(_nct_tail, x, (df, nc), _nct_valid, 1.0, 0.0)


def chi2_ppf(q, df):
    """Chi-square quantile (scipy.stats.chi2.ppf): 2 gammaincinv(df / 2, q); 0, inf at q = 0, 1."""
    return _quantile(lambda d, p: 2 * sc.gammaincinv(d / 2, p), q, (df,), _positive, 0.0, np.inf)


def f_ppf(q, dfn, dfd):
    """F quantile (scipy.stats.f.ppf): ``fdtri``; 0, inf at q = 0, 1; NaN unless both df > 0."""
    return _quantile(sc.fdtri, q, (dfn, dfd), _positive, 0.0, np.inf)


def rankdata(a, axis: int = -1) -> np.ndarray:
    """Ranks 1..n along ``axis``, ties sharing their average rank (scipy.stats.rankdata's 'average'); a
    slice with a NaN is all NaN, as scipy's default 'propagate' makes it."""
    a = np.moveaxis(np.asarray(a, dtype=float), axis, -1)
    order = np.argsort(a, axis=-1, kind="stable")
    y = np.take_along_axis(a, order, axis=-1)
    n = a.shape[-1]
    ranks = np.empty(a.shape)
    for idx in np.ndindex(a.shape[:-1]):
        start = np.flatnonzero(np.r_[True, y[idx][1:] != y[idx][:-1]])  # first position of each value
        counts = np.diff(np.r_[start, n])
        ranks[idx + (order[idx],)] = np.repeat(start + 1 + (counts - 1) / 2, counts)
    ranks[np.isnan(a).any(axis=-1)] = np.nan
    return np.moveaxis(ranks, -1, axis)


def trim_mean(a, proportion: float, axis: int = 0):
    """Mean after cutting ``int(proportion n)`` values from each end along ``axis`` (scipy.stats.trim_mean,
    with its partition, so the sum runs in the same order)."""
    a = np.asarray(a, dtype=float)
    n = a.shape[axis]
    low = int(proportion * n)
    if low > n - low:
        raise ValueError("trim_mean: proportion too big")
    cut = [slice(None)] * a.ndim
    cut[axis] = slice(low, n - low)
    return np.mean(np.partition(a, (low, n - low - 1), axis)[tuple(cut)], axis=axis)


def ttest_rel(a, b) -> tuple[float, float]:
    """Paired t-test of 1-D ``a`` and ``b`` (n,) as scipy.stats.ttest_rel computes it: (t, two-sided p),
    t = mean(d) / sqrt(var(d, ddof=1) / n) over d = a - b, p = 2 sf(|t|, n - 1). Infinite t when every
    difference is the same non-zero number, NaN when they are all zero."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = d.size
    mean = np.mean(d)
    var = np.mean((d - mean) ** 2) * (n / (n - 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / np.sqrt(var / n)
    return float(t), float(2 * t_sf(abs(t), n - 1))
