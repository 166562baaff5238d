"""Uncertainty over seeds AND test rows: the two-level interval of a ``(seeds x rows)`` array, no I/O.

A seed run's test accuracy is the mean of its rows' correctness ``y[s, i]`` (seed s, test row i). The
seed intervals of the report hold the test rows fixed: they say what other seeds would do on *these*
rows. A claim about the task needs the rows to vary too, since they are a sample of it. Seeds and rows
are crossed (every seed scores every row), so the grand mean's variance has three parts,

    Var(mean) = sigma2_seed / S + sigma2_row / N + sigma2_seed_x_row / (S N),

the two-way random-effects decomposition, which holds for any array whose seeds and rows are drawn
independently (binary correctness included: no normality is needed for the variance). Its unbiased
estimate from the ANOVA mean squares (seeds MS_s, rows MS_r, residual MS_e) is

    V = (MS_s + MS_r - MS_e) / (S N) = var(seed accuracies) / S + (MS_r - MS_e) / (S N):

the first term is exactly the seed-only variance the t interval uses, the second what the test
sample adds (floored at 0). The interval is mean +- t_df sqrt(V) with Welch-Satterthwaite df, which
is S - 1 when the rows add nothing, so with few seeds it stays the honest t interval and widens as
the test sample's share grows; and it is never narrower than the seed-only t interval (with 3 seeds
Satterthwaite's larger df could make it so: simulated, that covered 93% where the seed interval
covered 95%). Its p-values are the t-tests that agree with the interval. A comparison of two
strategies is the same on ``y_a[s, i] - y_b[s, i]``, paired by seed (the same seed numbers) and by
row (the same test rows), so rows that are hard for both cancel.

Why not a bootstrap over seeds and rows: resampling both ways counts the interaction twice and its
seed level is a bootstrap of 3-5 values, far too narrow (``stats.t_interval``); the decomposition
is exact in expectation, needs no resamples and is checked by simulation in ``tests/test_two_level.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrstats import distributions as dist


@dataclass(frozen=True)
class TwoLevel:
    """The mean of a ``(seeds x rows)`` array with its uncertainty over both (see the module docstring).

    ``seed_se``: the standard error over seeds alone (rows fixed); ``se``: over seeds and rows;
    ``rows_share``: the part of ``se**2`` the test sample adds; ``p``: two-sided test of mean 0 (for a
    difference); ``p_tost``: two one-sided tests of ``|mean| < margin`` (NaN without a margin).
    """

    seeds: int
    rows: int
    mean: float
    seed_se: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p: float
    p_tost: float

    @property
    def rows_share(self) -> float:
        return 1 - (self.seed_se / self.se) ** 2 if self.se > 0 else math.nan


def two_level(scores, *, confidence: float = 0.95, margin: float | None = None) -> TwoLevel:
    """Mean, standard error, df and interval of ``scores``, shape ``(n_seeds, n_rows)`` (one row per
    seed run, one column per test row; correctness 0/1, or a paired difference of two).

    Fewer than two seeds or two rows: no interval (NaNs). Every value equal: the point interval.
    """
    y = np.asarray(scores, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"two_level: scores must be (n_seeds, n_rows), got shape {y.shape}")
    s, n = y.shape
    mean = float(y.mean()) if y.size else math.nan
    if s < 2 or n < 2:
        return TwoLevel(s, n, mean, *[math.nan] * 7)
    seed_means, row_means = y.mean(axis=1), y.mean(axis=0)
    ms_seed = n * float(np.var(seed_means, ddof=1))
    ms_row = s * float(np.var(row_means, ddof=1))
    ss_total = float(((y - mean) ** 2).sum())
    ss_err = max(0.0, ss_total - (s - 1) * ms_seed - (n - 1) * ms_row)
    ms_err = ss_err / ((s - 1) * (n - 1))
    seed_var = ms_seed / (s * n)
    row_var = max(0.0, ms_row - ms_err) / (s * n)
    var = seed_var + row_var
    if var <= 0:
        return TwoLevel(s, n, mean, 0.0, 0.0, math.nan, mean, mean, math.nan if mean == 0 else 0.0, math.nan)
    if row_var == 0:
        df = float(s - 1)
    else:  # Welch-Satterthwaite over the three mean squares (the subtracted one included)
        parts = ((ms_seed, s - 1), (ms_row, n - 1), (ms_err, (s - 1) * (n - 1)))
        df = var**2 / sum((ms / (s * n)) ** 2 / d for ms, d in parts)
    se = math.sqrt(var)
    # Satterthwaite's df exceeds S - 1 once the rows add variance, and with 3 seeds its smaller t quantile
    # can outweigh the larger variance: the interval never narrows below the seed-only t interval.
    quantile = float(dist.t_ppf(0.5 + confidence / 2, df))
    half = max(quantile * se, float(dist.t_ppf(0.5 + confidence / 2, s - 1)) * math.sqrt(seed_var))
    scale = half / quantile  # the tests' standard error, consistent with the interval
    p = float(2 * dist.t_sf(abs(mean) / scale, df))
    p_tost = math.nan
    if margin is not None:
        p_tost = float(max(dist.t_sf((mean + margin) / scale, df),
                           dist.t_cdf((mean - margin) / scale, df)))
    return TwoLevel(s, n, mean, math.sqrt(seed_var), se, df, mean - half, mean + half, p, p_tost)
