"""Range-edge evidence: does the validation score still rise toward a search bound?

A tuned value near a bound says little by itself: with 5 random trials in 3 to 6 dimensions the best
one lies within 5% of some edge for about a third of the pairs by chance. The rule here fires only
on evidence of a trend. For one hyperparameter and one edge, take the tune trials in the half of the
range toward that edge (position >= 1/2 on the range's own scale, measured toward the edge; trial 0,
the canonical value at the middle, belongs to both halves), require the best trial among them, and
test Kendall's tau of the score against the position, one-sided (rising toward the edge), at level
``LEVEL / (2 d)``, d the pair's searched hyperparameters: a Bonferroni bound over the 2 d edges, so
the pair's family of tests has level ``LEVEL`` where the score has no rising trend.

An interior optimum near an edge does make the score rise over most of that half, so the level alone
is not the false-alarm rate; ``simulate`` measures it on the objectives described there (docs/REPORT.md
gives the numbers). Pure functions over arrays (numpy and scipy only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from lrstats.distributions import norm_sf

LEVEL = 0.05
"""The family level of one pair's edge tests (Bonferroni over its 2 d edges)."""

__all__ = ["LEVEL", "Edge", "kendall_greater", "simulate", "toward_edge"]


@cache
def _at_most(n: int) -> tuple[float, ...]:
    """P(D <= k), k = 0 .. n(n-1)/2, D the inversions of a uniform random permutation of n (from the
    Mahonian numbers: how many of the n! permutations have k inversions)."""
    counts = [1]
    for m in range(2, n + 1):  # inserting element m adds 0 .. m-1 inversions
        nxt = [0] * (len(counts) + m - 1)
        for k, c in enumerate(counts):
            for j in range(m):
                nxt[k + j] += c
        counts = nxt
    total, run, out = math.factorial(n), 0, []
    for c in counts:
        run += c
        out.append(run / total)
    return tuple(out)


def _tie_terms(v: np.ndarray) -> tuple[int, int, int]:
    """Over the groups of equal values of ``v`` (sizes t): the tied pairs sum t (t - 1) / 2, and the
    variance's sums of t (t - 1) (t - 2) and t (t - 1) (2 t + 5)."""
    t = np.unique(v, return_counts=True)[1].astype(float)
    return int((t * (t - 1) // 2).sum()), int((t * (t - 1) * (t - 2)).sum()), int((t * (t - 1) * (2 * t + 5)).sum())


def _kendall_tied(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Kendall's tau-b and the one-sided p of its tie-corrected normal approximation (Kendall 1945), as
    scipy's ``kendalltau(x, y, alternative="greater")`` computes them (tests/test_edges.py checks the
    two are equal): C - D over the pairs, tau_b = (C - D) / sqrt((P - X) (P - Y)) with P pairs, X tied in
    x, Y tied in y, and z = (C - D) / sqrt(var) with var = (n (n - 1) (2 n + 5) - sum_x - sum_y) / 18 +
    2 X Y / (n (n - 1)) + sum3_x sum3_y / (9 n (n - 1) (n - 2)). NaN, 1.0 when x or y is constant."""
    n = x.size
    upper = np.triu_indices(n, 1)
    con_minus_dis = int((np.sign(np.subtract.outer(x, x)) * np.sign(np.subtract.outer(y, y)))[upper].sum())
    (xtie, x0, x1), (ytie, y0, y1) = _tie_terms(x), _tie_terms(y)
    tot = n * (n - 1) // 2
    if xtie == tot or ytie == tot:
        return math.nan, 1.0
    tau = min(1.0, max(-1.0, con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)))
    m = n * (n - 1.0)
    var = (m * (2 * n + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m + x0 * y0 / (9 * m * (n - 2))
    return float(tau), float(norm_sf(con_minus_dis / np.sqrt(var)))


def kendall_greater(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Kendall's tau of ``y`` against ``x`` (both ``(n,)``) and its one-sided p-value for a positive
    association. Exact (the permutation distribution of the discordant pairs) without ties; with
    ties, the tie-corrected normal approximation (`_kendall_tied`, scipy's). NaN, 1.0 for fewer than
    3 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 3:
        return math.nan, 1.0
    product = np.subtract.outer(x, x) * np.subtract.outer(y, y)
    if (product == 0).sum() > n:  # beyond the diagonal: a tie
        return _kendall_tied(x, y)
    discordant = int((product < 0).sum()) // 2
    # A rising trend has few discordant pairs: P(D <= observed) under the uniform permutation law.
    return 1.0 - 4.0 * discordant / (n * (n - 1)), _at_most(n)[discordant]


@dataclass(frozen=True)
class Edge:
    """Evidence that the score rises toward one bound of hyperparameter ``index``: Kendall's ``tau``
    over the ``n_near`` trials in the half toward ``bound`` (lower or upper), its one-sided ``p``, and
    the ``level`` it passed."""

    index: int
    bound: str
    tau: float
    p: float
    n_near: int
    level: float


def toward_edge(positions: np.ndarray, scores: np.ndarray, level: float = LEVEL) -> list[Edge]:
    """The edges at which the score still rises, per the module's rule.

    ``positions``: ``(n_trials x d)`` each trial's place in each searched range on its scale (0 at
    the lower bound, 1 at the upper); ``scores``: ``(n_trials,)`` the tune score; a non-finite score
    (a diverged trial) ranks below every finite one."""
    positions = np.asarray(positions, dtype=float)
    scores = np.asarray(scores, dtype=float)
    n, d = positions.shape
    if n == 0 or d == 0:
        return []
    s = np.where(np.isfinite(scores), scores, -np.inf)
    best = int(np.argmax(s))
    each = level / (2 * d)
    out = []
    for j in range(d):
        for bound, toward in (("lower", 1.0 - positions[:, j]), ("upper", positions[:, j])):
            near = np.isfinite(toward) & (toward >= 0.5)
            if not near[best] or near.sum() < 3:
                continue
            y = s[near]
            if not np.isfinite(y).all():  # diverged trials tie below the lowest finite score
                y = np.where(np.isfinite(y), y, np.nanmin(y[np.isfinite(y)], initial=0.0) - 1.0)
            tau, p = kendall_greater(toward[near], y)
            if p <= each:
                out.append(Edge(j, bound, tau, p, int(near.sum()), each))
    return out


def simulate(n_trials: int, dims: int, outside: bool, sweeps: int, random_state: int | np.random.Generator = 0,
             width: float = 0.5, noise: float = 0.01, level: float = LEVEL) -> float:
    """The fraction of ``sweeps`` simulated pairs on which ``toward_edge`` fires at some edge.

    A pair: trial 0 at the middle of every range (the canonical configuration), ``n_trials - 1``
    uniform in the unit cube (random search, as TPE's first 10 trials). Score
    ``0.5 + 0.4 exp(-sum_j w_j (x_j - c_j)^2 / (2 width^2)) + N(0, noise^2)``: w_0 = 1 (the learning
    rate), the others uniform in [0.05, 0.5] (weaker knobs); optimum c_j uniform in [0.15, 0.85]
    (interior), except c_0 = 1.5 when ``outside`` (half a range above the upper bound: a decade
    above a two-decade lr range). ``width`` 0.5 is half a range, a decade of lr; noise 0.01 is one
    point of validation accuracy."""
    rng = np.random.default_rng(random_state)
    fired = 0
    for _ in range(sweeps):
        centre = rng.uniform(0.15, 0.85, dims)
        if outside:
            centre[0] = 1.5
        weight = np.r_[1.0, rng.uniform(0.05, 0.5, dims - 1)]
        x = np.vstack([np.full(dims, 0.5), rng.uniform(0.0, 1.0, (n_trials - 1, dims))])
        score = 0.5 + 0.4 * np.exp(-((x - centre) ** 2 * weight).sum(1) / (2 * width**2))
        score += rng.normal(0.0, noise, n_trials)
        fired += bool(toward_edge(x, score, level))
    return fired / sweeps
