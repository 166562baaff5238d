"""lrstats.selection by hand: KN's constants and screening on numbers worked out on paper, the replay
property a resumed sweep relies on, the fixed designs' constants, MCB's intervals, and bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from lrstats.selection import (
    Round,
    SelectionSettings,
    bonferroni_t,
    decide,
    expected_seeds,
    fixed_design_seeds,
    guarantee,
    kn_constants,
    mcb,
    normal_draw,
    pilot_covariance,
    rinott_constant,
    settings_problems,
    simulate_kn,
)

# Worked by hand (see test_decide_by_hand): with k = 3, n0 = 3 and confidence 0.9, 2 alpha / (k - 1) = 0.1,
# so eta = (0.1^-1 - 1) / 2 = 4.5 and h^2 = 2 * 4.5 * 2 = 18. Every pair's differences below have
# S^2 = 1, so with delta = 1 the boundary is W(r) = (18 - r) / (2r): 2.5 at r = 3, 1.75 at 4, 1.3 at 5.
A = [10.0, 12.0, 11.0, 12.0, 12.0]
B = [9.0, 10.0, 11.0, 10.0, 10.0]
C = [5.0, 5.0, 5.0]


def settings(**kw) -> SelectionSettings:
    base = dict(indifference=1.0, confidence=0.9, first_seeds=3, max_seeds=None, batch=1)
    return SelectionSettings(**{**base, **kw})


def test_kn_constants_by_hand():
    # k = 3, n0 = 5, alpha = 0.1: (0.1)^(-2/4) = sqrt(10); eta = (sqrt(10) - 1) / 2, h^2 = 8 eta
    eta, h2 = kn_constants(3, 5, 0.9)
    assert eta == pytest.approx((math.sqrt(10) - 1) / 2, rel=1e-12)
    assert h2 == pytest.approx(4 * (math.sqrt(10) - 1), rel=1e-12)
    # k = 2, n0 = 3, alpha = 0.05: 2 alpha = 0.1, (0.1)^(-1) = 10; eta = 4.5, h^2 = 18
    assert kn_constants(2, 3, 0.95) == pytest.approx((4.5, 18.0), rel=1e-12)
    assert kn_constants(3, 3, 0.9) == pytest.approx((4.5, 18.0), rel=1e-12)


def test_decide_by_hand():
    d = decide({"A": A, "B": B, "C": C}, settings())
    # r = 3: means A 11, B 10, C 5; C < 11 - 2.5 (and < 10 - 2.5), out behind A (the larger gap, 3.5)
    # r = 4: A - B = 1.25 <= 1.75, both stay; r = 5: A - B = 1.4 > 1.3, B out behind A
    assert d.rounds == (Round(3, ("A", "B"), {"C": "A"}), Round(4, ("A", "B"), {}), Round(5, ("A",), {"B": "A"}))
    assert (d.selected, d.stopped, d.capped, d.r, d.seeds_wanted) == ("A", True, False, 5, 5)
    assert d.eliminated == {"C": 3, "B": 5}
    assert d.contenders == ("A",)
    assert d.reason == "one strategy left after screening at 5 seeds"
    assert d.closes_at == 5


def test_batches_screen_less_often_to_the_same_end():
    d = decide({"A": A, "B": B, "C": C}, settings(batch=2))
    assert [r.r for r in d.rounds] == [3, 5]
    assert (d.selected, d.eliminated) == ("A", {"C": 3, "B": 5})


def test_waiting_for_seeds():
    first = decide({"A": A[:2], "B": B, "C": C}, settings())
    assert (first.r, first.stopped, first.seeds_wanted, first.rounds, first.selected) == (0, False, 3, (), None)
    assert first.reason == "first stage: every strategy needs 3 seeds"
    # C, eliminated at 3, needs nothing more; A and B need a 5th seed for the screening at r = 5
    d = decide({"A": A[:4], "B": B[:4], "C": C}, settings())
    assert (d.r, d.stopped, d.seeds_wanted, d.contenders, d.selected) == (4, False, 5, ("A", "B"), None)
    assert d.reason == "2 strategies in contention after screening at 4 seeds; each needs 5 for the next"
    # h^2 S^2 / delta^2 = 18 for A-B (h^2 = 18 up to rounding): their boundary closes at 18 seeds, at 19 with
    # batches of 4 (3, 7, 11, 15, 19)
    assert d.closes_at == math.ceil(kn_constants(3, 3, 0.9)[1]) in (18, 19)
    assert decide({"A": A[:3], "B": B[:3], "C": C}, settings(batch=4)).closes_at == 19


def test_cap_stops_and_voids():
    d = decide({"A": A, "B": B, "C": C}, settings(max_seeds=4))
    assert (d.r, d.selected, d.stopped, d.capped, d.seeds_wanted) == (4, "A", True, True, 4)
    assert "guarantee does not hold" in d.reason
    # a cap off the batch grid is still screened at: 3, then 4 (not 3 + 16)
    assert [r.r for r in decide({"A": A, "B": B, "C": C}, settings(max_seeds=4, batch=16)).rounds] == [3, 4]


def test_later_scores_never_change_earlier_rounds():
    rng = np.random.default_rng(3)
    full = {f"s{i}": list(rng.normal(1.2 * i, 1.0, 60)) for i in range(6)}
    st = settings(indifference=1.0, confidence=0.95, first_seeds=4, batch=3)
    end = decide(full, st)
    assert end.stopped and not end.capped
    for n in range(4, 60):
        part = decide({k: v[:n] for k, v in full.items()}, st)
        assert end.rounds[: len(part.rounds)] == part.rounds
        assert all(end.eliminated[name] == r for name, r in part.eliminated.items())
    # scores an eliminated strategy got later (or never got) change nothing
    cut = {k: (v if k in end.contenders else v[: end.eliminated[k]]) for k, v in full.items()}
    assert decide(cut, st) == end


def test_one_strategy_and_exact_ties():
    one = decide({"only": [1.0]}, settings())
    assert (one.selected, one.stopped, one.r, one.seeds_wanted) == ("only", True, 0, 0)
    # identical scores: S^2 = 0 so W = 0 at once, nobody is eliminated, the boundary has closed: name order
    tied = decide({"b": [1.0, 2.0, 3.0], "a": [1.0, 2.0, 3.0]}, settings())
    assert (tied.selected, tied.stopped, tied.r, tied.contenders) == ("a", True, 3, ("a", "b"))
    assert tied.reason.startswith("the boundary closed at 3 seeds")


@pytest.mark.parametrize("field, value", [
    ("indifference", 0.0), ("indifference", float("nan")), ("confidence", 1.0), ("confidence", 0.5),
    ("first_seeds", 1), ("first_seeds", 3.0), ("max_seeds", 2), ("batch", 0), ("batch", True),
])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        settings(**{field: value})


def test_bad_scores():
    with pytest.raises(ValueError, match="finite"):
        decide({"A": [1.0, float("nan"), 2.0], "B": [1.0, 2.0, 3.0]}, settings())
    with pytest.raises(ValueError, match="non-empty"):
        decide({}, settings())


def test_simulation_is_decide():
    """The vectorised simulation the guarantee tests use makes decide's decisions, replication by replication."""
    k, reps, n_max = 4, 120, 40
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (reps, k, n_max)) + np.array([0.0, 0.2, 0.5, 0.6])[None, :, None]
    st = settings(indifference=0.4, confidence=0.9, first_seeds=5, max_seeds=n_max, batch=3)
    sim = simulate_kn(k, st, reps, lambda rows, a, b: x[rows, :, a:b])
    for i in range(reps):
        d = decide({f"s{j}": x[i, j] for j in range(k)}, st)
        assert d.selected == f"s{sim.selected[i]}" and d.capped == bool(sim.capped[i])
        assert [d.eliminated.get(f"s{j}", d.r) for j in range(k)] == list(sim.seeds[i])
    assert sim.capped.any() and not sim.capped.all()


def test_rinott_constant():
    # the normal limit for k = 2: h -> sqrt(2) z_{0.95}; a textbook value for k = 2, n0 = 10 is 2.61
    assert rinott_constant(2, 2000, 0.95) == pytest.approx(math.sqrt(2) * scipy.stats.norm.ppf(0.95), abs=2e-3)
    assert rinott_constant(2, 10, 0.95) == pytest.approx(2.614, abs=1e-3)
    # the defining expectation, by Monte Carlo
    k, n0 = 10, 8
    h, nu = rinott_constant(k, n0, 0.95), n0 - 1
    rng = np.random.default_rng(0)
    y, x = rng.chisquare(nu, (3000, 1)), rng.chisquare(nu, (3000, 1000))
    inner = scipy.special.ndtr(h / np.sqrt(nu * (1 / x + 1 / y))).mean(axis=1)
    assert np.mean(inner ** (k - 1)) == pytest.approx(0.95, abs=0.005)


def test_fixed_design_by_hand():
    # k = 2, n0 = 3: t_{0.95, 2} = 2.919986; A - B differences [1, 2, 0] have S^2 = 1, so with delta = 1
    # every strategy gets ceil(2.919986^2) = 9 seeds
    assert bonferroni_t(2, 3, 0.95) == pytest.approx(2.919986, abs=1e-6)
    st = settings(confidence=0.95)
    assert fixed_design_seeds({"A": A, "B": B}, st) == {"A": 9, "B": 9}
    # Rinott: S_A^2 = 1 ([10, 12, 11]) and S_C^2 = 0 from the first three seeds: ceil(h^2) and n0
    h = rinott_constant(2, 3, 0.95)
    assert fixed_design_seeds({"A": A, "C": C}, st, "rinott") == {"A": math.ceil(h**2), "C": 3}


def test_mcb_by_hand():
    # k = 2, n = 3: A - B = [1, 2, 3], mean 2, S = 1; w = t_{0.95, 2} / sqrt(3) = 1.685854
    rows = mcb({"A": [1.0, 2.0, 3.0], "B": [0.0, 0.0, 0.0]})
    w = 2.919986 / math.sqrt(3)
    assert [(r.name, r.could_be_best, r.n) for r in rows] == [("A", True, 3), ("B", False, 3)]
    assert (rows[0].lower, rows[0].upper) == (0.0, pytest.approx(2 + w, abs=1e-5))
    assert (rows[1].lower, rows[1].upper) == (pytest.approx(-2 - w, abs=1e-5), 0.0)
    # k = 3: t_{0.975, 2} = 4.302653; S(A-B) = S(A-C) = 1, S(B-C) = sqrt(3); every upper bound > 0
    rows = {r.name: r for r in mcb({"A": [1.0, 2.0, 3.0], "B": [1.0, 1.0, 4.0], "C": [0.0, 0.0, 0.0]})}
    w = 4.302653 / math.sqrt(3)
    assert rows["A"].upper == pytest.approx(w, abs=1e-5) and rows["B"].upper == pytest.approx(w, abs=1e-5)
    assert rows["C"].upper == pytest.approx(-2 + w, abs=1e-5)
    assert rows["A"].lower == pytest.approx(-w, abs=1e-5) and rows["B"].lower == pytest.approx(-w, abs=1e-5)
    assert rows["C"].lower == pytest.approx(-2 - 4.302653, abs=1e-5)
    assert all(r.could_be_best for r in rows.values())


def test_mcb_uses_common_seeds_only():
    rows = mcb({"A": [1.0, 2.0, 3.0, 9.0], "B": [0.0, 0.0, 0.0, float("nan")], "C": [0.0, 1.0, 0.0]})
    assert {r.n for r in rows} == {3}
    with pytest.raises(ValueError, match="at least 2 seeds"):
        mcb({"A": [1.0], "B": [2.0]})


def test_mcb_simultaneous_coverage():
    """All k intervals cover mu_i - max_{l != i} mu_l together in at least ~95% of experiments."""
    k, n, reps = 5, 5, 3000
    sd = np.linspace(1.0, 2.0, k)
    cov = sd[:, None] * (0.6 * np.eye(k) + 0.4) * sd[None, :]
    for means in (np.array([0.0, 0.0, 0.0, 0.0, 2.0]), np.array([0.0, 0.5, 1.0, 1.0, 1.5])):
        truth = np.array([means[i] - np.delete(means, i).max() for i in range(k)])
        x = normal_draw(means, cov, np.random.default_rng(1))(np.arange(reps), 0, n)
        covered = 0
        for rep in x:
            rows = {r.name: r for r in mcb({f"s{i}": rep[i] for i in range(k)})}
            covered += all(rows[f"s{i}"].lower <= truth[i] <= rows[f"s{i}"].upper for i in range(k))
        rate = covered / reps
        print(f"MCB simultaneous coverage, means {means.tolist()}: {rate:.4f}")
        assert rate >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps)


def test_cost_benchmark_runs_on_the_committed_figures():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "selection_cost.py"), "--reps", "50"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert "synthetic: 18 strategies, 3 seeds each" in out
    assert out.count(" 16 | ") == 4  # zone 0.5 and 1.0, n0 5 and 10, batches of 16


def test_pilot_covariance_by_hand():
    # SDs 1 and 2; the two are perfectly correlated, clipped to 0.95; a constant strategy's SD 0 is raised to a
    # tenth of the pooled SD sqrt((1 + 4 + 0) / 3) and it leaves the correlation alone
    names, means, cov, rho = pilot_covariance({"b": [2.0, 4.0, 6.0], "a": [1.0, 2.0, 3.0], "c": [5.0, 5.0, 5.0]})
    assert names == ["a", "b", "c"] and list(means) == [2.0, 4.0, 5.0] and rho == 0.95
    floor = 0.1 * math.sqrt(5 / 3)
    assert cov == pytest.approx(np.array([[1.0, 0.95 * 2, 0.95 * floor], [0.95 * 2, 4.0, 0.95 * 2 * floor],
                                          [0.95 * floor, 0.95 * 2 * floor, floor**2]]))


def test_guarantee_in_words():
    st = settings(indifference=0.5, confidence=0.95, max_seeds=60)
    assert guarantee(18, st) == (
        "if the best of these 18 strategies, as tuned, leads every other by at least 0.5 pp, it is the one "
        "selected with probability at least 95% (Kim & Nelson's KN); when several lie within 0.5 pp of the best, "
        "the selected one is not guaranteed to be within 0.5 pp of it")
    assert "no guarantee" in guarantee(18, st, capped=True) and "60 seeds" in guarantee(18, st, capped=True)


def test_cost_bound_only_with_a_cap():
    cov = np.eye(3)
    capped = expected_seeds(np.zeros(3), cov, settings(max_seeds=7), reps=50, rng=np.random.default_rng(0))
    assert capped.bound == 21 and capped.max <= 21 and capped.capped_rate > 0
    assert expected_seeds(np.zeros(3), cov, settings(), reps=50, rng=np.random.default_rng(0)).bound is None


def test_every_bad_setting_at_once():
    problems = settings_problems(-1, 2, 1, 0, 0)
    assert [field for field, _ in problems] == ["indifference", "confidence", "first_seeds", "max_seeds", "batch"]
    assert settings_problems(0.5, 0.95, 10, None, 16) == []
