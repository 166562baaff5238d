"""The study-level rules checked by simulation (issue 40's "Done when"), with the tuning and seed noise drawn
separately and correlated across strategies as common studies (one sampler seed and split per study index)
and common seeds make them:

- KN with the tuning study as the replicate (`study_decide`, simulated by `simulate_kn` on `study_draw`):
  PCS >= 1 - alpha in the least-favourable configuration for k = 2, 5, 18, with normal tuning effects
  and with a skewed tuning (a study sometimes misses the good region);
- the MCB subset over study-level scores (`study_mcb`) covers the true best at >= 1 - alpha, and its
  widened form (`study_mcb_rows`) over a fresh test sample too, where the rows-fixed one does not;
- `variance_split` against binary correctness with known tuning, seed and test-row variances: each
  component's interval covers its truth near 95%, and so does the interval of the expected score.

Bounds are "target minus 3 Monte Carlo standard errors" (2,000 replications: 0.935 for 0.95).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrstats.selection import SelectionSettings, simulate_kn
from lrstats.studies import equicorrelated, least_favourable, study_draw, study_mcb, study_mcb_rows, variance_split

REPS = 2000
CONFIDENCE = 0.95
DELTA = 1.0
SLACK = 3 * math.sqrt(CONFIDENCE * (1 - CONFIDENCE) / REPS)
BOUND = CONFIDENCE - SLACK
SEEDS_PER_STUDY = 4


def covariances(k: int, rho_tuning: float = 0.5, rho_seed: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Unequal tuning SDs (0.5 to 1 delta) and seed SD delta, correlated as common studies and seeds make them."""
    return (equicorrelated(np.linspace(0.5, 1.0, k) * DELTA, rho_tuning, k),
            equicorrelated(np.full(k, DELTA), rho_seed, k))


def skewed_study_draw(means, cov_tuning, cov_seed, rng, p: float = 0.15, drop: float = 3.0):
    """`study_draw` whose tuning misses the good region with probability p per (strategy, study): the study
    falls `drop` tuning SDs (mean kept), the left tail a few random trials give."""
    base = study_draw(np.zeros(len(means)), cov_tuning, cov_seed, SEEDS_PER_STUDY, rng)
    sd = np.sqrt(np.diag(cov_tuning))[None, :, None]
    means = np.asarray(means, dtype=float)[None, :, None]

    def draw(rows, start, end):
        y = base(rows, start, end)
        return means + y - drop * sd * ((rng.random(y.shape) < p) - p)

    return draw


@pytest.mark.parametrize("tuning", ["normal", "skewed"])
@pytest.mark.parametrize("k", [2, 5, 18])
def test_study_level_kn_selects_the_best_in_the_least_favourable_configuration(k, tuning):
    settings = SelectionSettings(DELTA, CONFIDENCE, first_seeds=5, max_seeds=None, batch=2)
    means = least_favourable(k, DELTA)
    cov_t, cov_e = covariances(k)
    rng = np.random.default_rng(4000 + k)
    draw = (study_draw(means, cov_t, cov_e, SEEDS_PER_STUDY, rng) if tuning == "normal"
            else skewed_study_draw(means, cov_t, cov_e, rng))
    sim = simulate_kn(k, settings, REPS, draw)
    pcs = float(np.mean(sim.selected == k // 2))
    print(f"study-level KN LFC k={k:2d} {tuning:6s}: PCS {pcs:.4f} (bound {BOUND:.4f}), studies mean "
          f"{sim.total.mean():.0f} ({sim.total.mean() * SEEDS_PER_STUDY:.0f} seed runs), max {sim.total.max()}")
    assert not sim.capped.any()
    assert pcs >= BOUND


@pytest.mark.parametrize("k,studies", [(2, 3), (5, 5), (18, 5)])
def test_study_mcb_subset_covers_the_best(k, studies):
    """Fixed design: every strategy `studies` studies; the subset that could be the best holds the true best.
    The best leads by a hair (1e-6 delta): all but tied, where its inclusion is least likely."""
    means = least_favourable(k, 1e-6 * DELTA)
    cov_t, cov_e = covariances(k)
    y = study_draw(means, cov_t, cov_e, SEEDS_PER_STUDY, np.random.default_rng(50 + k))(np.arange(REPS), 0, studies)
    names = [f"s{i:02d}" for i in range(k)]
    hits = sizes = 0
    for rep in y:
        rows = study_mcb({n: dict(enumerate(rep[i])) for i, n in enumerate(names)}, CONFIDENCE)
        could = {r.name for r in rows if r.could_be_best}
        hits += names[k // 2] in could
        sizes += len(could)
    print(f"study MCB k={k:2d}, {studies} studies: covers the best {hits / REPS:.4f} (bound {BOUND:.4f}), "
          f"mean subset size {sizes / REPS:.1f}")
    assert hits / REPS >= BOUND


def _binary_studies(rng, p_rows, strategy_shift, tau, sigma, studies, seeds, interaction):
    """Correctness (k, studies, seeds, rows) under a linear-probability model with known parts: row r's
    base rate p_rows[r] (or p_rows[i, r] per strategy; + a strategy x row effect of SD `interaction`), strategy
    i's shift, a tuning
    effect per (strategy, study) and a seed effect per (strategy, study, seed), drawn separately and
    correlated across strategies (common studies 0.5, common seeds 0.3). No clipping is needed: the
    rates stay inside (0, 1) by construction."""
    k, r = len(strategy_shift), np.shape(p_rows)[-1]
    t = rng.multivariate_normal(np.zeros(k), equicorrelated(tau, 0.5, k), studies).T
    e = rng.multivariate_normal(np.zeros(k), equicorrelated(sigma, 0.3, k), (studies, seeds)).transpose(2, 0, 1)
    rowfx = np.broadcast_to(p_rows, (k, r)) + interaction * rng.standard_normal((k, r))
    rate = rowfx[:, None, None, :] + (np.asarray(strategy_shift)[:, None] + t)[:, :, None, None] + e[..., None]
    return (rng.random(rate.shape) < rate).astype(np.int8)


def test_widened_study_mcb_covers_the_best_over_a_fresh_test_sample():
    """Strategies disagree on rows (each gets a row right with rate 0.98 or 0.02, independently), so a test
    split favours some by luck: the subset over tuning, seeds and test rows covers the best on the task
    at 95%; the rows-fixed subset does not."""
    reps, k, rows = 1000, 3, 300
    slack = 3 * math.sqrt(CONFIDENCE * (1 - CONFIDENCE) / reps)
    rng = np.random.default_rng(11)
    shift = np.array([0.0, 0.01, 0.0])  # the best leads by 1 pp on the task
    wide = fixed = 0
    for _ in range(reps):
        p_rows = rng.choice([0.98, 0.02], size=(k, rows), p=[0.8, 0.2])
        y = _binary_studies(rng, p_rows, shift, 0.002, 0.002, 4, 2, interaction=0.0)
        correct = {f"s{i}": dict(enumerate(y[i])) for i in range(k)}
        scores = {f"s{i}": {j: 100 * y[i, j].mean() for j in range(4)} for i in range(k)}
        wide += "s1" in {r.name for r in study_mcb_rows(correct, CONFIDENCE) if r.could_be_best}
        fixed += "s1" in {r.name for r in study_mcb(scores, CONFIDENCE) if r.could_be_best}
    print(f"widened study MCB: covers the best {wide / reps:.4f}; rows held fixed {fixed / reps:.4f}")
    assert wide / reps >= CONFIDENCE - slack
    assert fixed / reps < 0.85


#: The row base rates of the variance-split simulation: most rows easy, some hard, a few mostly wrong.
P_VALUES, P_WEIGHTS = np.array([0.95, 0.8, 0.5, 0.1]), np.array([0.55, 0.2, 0.15, 0.1])


def test_variance_split_recovers_known_tuning_seed_and_row_variances():
    """Binary correctness, 6 studies x 3 seeds on 400 fresh rows per replication. Truth per run (pp^2):
    tuning tau^2; seeds sigma_e^2 + (E[p(1-p)] - tau^2 - sigma_e^2) / R (the seed effect plus the per-row
    churn between seeds); test rows Var(p) / R; the expected score 100 E[p]."""
    studies, seeds, rows, tau, sigma = 6, 3, 400, 0.01, 0.005
    ep, ep2 = P_WEIGHTS @ P_VALUES, P_WEIGHTS @ P_VALUES**2
    truth = {"tuning": 1e4 * tau**2, "seeds": 1e4 * (sigma**2 + (ep - ep2 - tau**2 - sigma**2) / rows),
             "test rows": 1e4 * (ep2 - ep**2) / rows}
    rng = np.random.default_rng(23)
    hits = dict.fromkeys([*truth, "mean"], 0)
    for _ in range(REPS):
        p_rows = rng.choice(P_VALUES, size=rows, p=P_WEIGHTS)
        y = _binary_studies(rng, p_rows, [0.0], tau, sigma, studies, seeds, interaction=0.0)[0]
        split = variance_split(list(100 * y.mean(axis=2)), list(y))
        for name, value in truth.items():
            c = split.component(name)
            hits[name] += c.low <= value <= c.high
        hits["mean"] += split.ci_low <= 100 * ep <= split.ci_high
    rates = {n: h / REPS for n, h in hits.items()}
    print("variance split coverage: " + ", ".join(f"{n} {r:.4f}" for n, r in rates.items())
          + " (truth pp^2: " + ", ".join(f"{n} {v:.3f}" for n, v in truth.items()) + ")")
    for name, rate in rates.items():
        assert 0.92 <= rate <= 0.985, (name, rate)
    assert abs(np.mean(list(rates.values())) - CONFIDENCE) <= 0.015
