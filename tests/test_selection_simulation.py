"""KN's guarantee checked by simulation (issue 33's "Done when"): in the least-favourable configuration
(the best exactly delta ahead, every other tied) it selects the best with probability >= 1 - alpha, for
k = 2, 5, 18 and 24, with normal scores and with skewed and heavy-tailed ones, correlated across
strategies as common seeds make them. With all tied, or several inside the zone, the rate at which the
selected strategy lies within delta of the best is printed, not asserted: KN's proof covers only the
least-favourable side of the zone (docs/SELECTION.md says what we found in the literature).

The simulation is `simulate_kn`, which tests/test_selection.py checks makes `decide`'s decisions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrstats.selection import SelectionSettings, normal_draw, simulate_kn

REPS = 2000
CONFIDENCE = 0.95
DELTA = 1.0
#: Monte Carlo slack: 3 standard errors of a proportion at the nominal 0.95 over REPS replications.
SLACK = 3 * math.sqrt(CONFIDENCE * (1 - CONFIDENCE) / REPS)


def covariance(k: int, rho: float = 0.5) -> np.ndarray:
    """Unequal SDs (1 to 2 deltas) with correlation rho between strategies: what common seeds give."""
    sd = np.linspace(1.0, 2.0, k) * DELTA
    return sd[:, None] * ((1 - rho) * np.eye(k) + rho) * sd[None, :]


def skewed_draw(means, cov, rng, p: float = 0.1, drop: float = 4.0):
    """A bad seed: with probability p per (strategy, seed) a run falls `drop` SDs (mean kept): left skew."""
    base, sd = normal_draw(np.zeros(len(means)), cov, rng), np.sqrt(np.diag(cov))[None, :, None]
    means = np.asarray(means, dtype=float)[None, :, None]

    def draw(rows, start, end):
        z = base(rows, start, end)
        return means + z - drop * sd * ((rng.random(z.shape) < p) - p)

    return draw


def heavy_draw(means, cov, rng, df: int = 3):
    """Multivariate Student t with `df` degrees of freedom (scaled to `cov`): heavy, symmetric tails."""
    base = normal_draw(np.zeros(len(means)), cov, rng)
    means = np.asarray(means, dtype=float)[None, :, None]

    def draw(rows, start, end):
        z = base(rows, start, end)
        return means + z / np.sqrt(rng.chisquare(df, (len(rows), 1, end - start)) / (df - 2))

    return draw


DRAWS = {"normal": lambda m, c, rng: normal_draw(m, c, rng), "skewed": skewed_draw, "t3": heavy_draw}
#: The asserted lower bound on PCS. KN is proven for normal scores only; the skewed and t3 cases met the
#: nominal level too when this was written (PCS 0.96 and above, printed below), so the same bound holds them.
BOUND = CONFIDENCE - SLACK


def run(means, k, noise, batch, seed):
    settings = SelectionSettings(DELTA, CONFIDENCE, first_seeds=10, max_seeds=None, batch=batch)
    draw = DRAWS[noise](means, covariance(k), np.random.default_rng(seed))
    return simulate_kn(k, settings, REPS, draw)


@pytest.mark.parametrize("noise", sorted(DRAWS))
@pytest.mark.parametrize("k", [2, 5, 18, 24])
def test_least_favourable_configuration(k, noise):
    means = np.zeros(k)
    means[k // 2] = DELTA  # the best in the middle, so name order (ties) cannot favour it
    for batch in (1, 16) if noise == "normal" else (1,):
        sim = run(means, k, noise, batch, seed=1000 * k + batch)
        pcs = float(np.mean(sim.selected == k // 2))
        print(f"LFC k={k:2d} {noise:6s} batch={batch:2d}: PCS {pcs:.4f} (bound {BOUND:.4f}), "
              f"seed runs mean {sim.total.mean():.0f}, max {sim.total.max()}")
        assert not sim.capped.any()
        assert pcs >= BOUND


@pytest.mark.parametrize("k", [5, 18, 24])
def test_good_selection_is_printed(k):
    """All tied, and several inside the zone with the rest just outside it: the rates are printed."""
    tied = run(np.zeros(k), k, "normal", 16, seed=k)
    share = np.bincount(tied.selected, minlength=k) / REPS
    print(f"all tied                k={k:2d}: every pick is within delta; the most picked strategy got "
          f"{share.max():.3f} of the picks (1/k = {1 / k:.3f}), seed runs mean {tied.total.mean():.0f}")
    means = np.full(k, -1.1 * DELTA)  # just outside the zone
    means[:3] = [0.0, -0.5 * DELTA, -0.5 * DELTA]  # the best and two inside the zone
    sim = run(means, k, "normal", 16, seed=k + 1)
    good = float(np.mean(means[sim.selected] >= -DELTA))
    print(f"two inside, rest at 1.1 delta k={k:2d}: selected within delta of the best {good:.4f}, the best itself "
          f"{np.mean(sim.selected == 0):.4f}, seed runs mean {sim.total.mean():.0f}")
    assert not sim.capped.any()
