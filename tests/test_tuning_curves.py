"""Tuning curves (`reports.tuning_curves`): the estimate against hand computation, the bands' coverage of a
known curve by simulation, which trials count as draws, and the still-rising rule and its warning."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from lrstats import stats
from reports import sections
from reports.document import markdown_page
from reports.load import Results
from reports.tuning_curves import CONFIDENCE, LD_MAX_DRAWS, curve, draw_limit, pair_draws, rising, tuning_curves


def test_one_draw_gives_the_mean_and_all_draws_the_maximum():
    ys = [0.70, 0.90, 0.75, 0.80]
    c = curve(ys).set_index("n")
    assert c.at[1, "expected"] == pytest.approx(0.7875)  # (0.70 + 0.90 + 0.75 + 0.80) / 4
    assert c.at[4, "expected"] == pytest.approx(0.90)
    # n = 2, by hand: the 6 pairs' maxima are 0.75, 0.80, 0.90, 0.80, 0.90, 0.90.
    assert c.at[2, "expected"] == pytest.approx(5.05 / 6)
    # n = 3: the 4 triples' maxima are 0.80, 0.90, 0.90, 0.90.
    assert c.at[3, "expected"] == pytest.approx(3.5 / 4)
    # The band holds the estimate, and a best of more draws is never worse: every column rises with n.
    assert (c["low"] <= c["expected"]).all() and (c["expected"] <= c["high"]).all()
    assert all((np.diff(c[k]) >= -1e-12).all() for k in ("expected", "low", "high"))


def test_the_estimate_is_the_mean_best_over_every_subset():
    """opda's estimate against the enumeration of all subsets and against `stats.expected_max`."""
    ys = np.random.default_rng(5).uniform(0.6, 0.9, 7)
    c = curve(ys).set_index("n")
    for n in range(1, 8):
        direct = np.mean([max(s) for s in itertools.combinations(ys, n)])
        assert c.at[n, "expected"] == pytest.approx(direct, abs=1e-12)
        assert c.at[n, "expected"] == pytest.approx(stats.expected_max(ys, n), abs=1e-12)


def test_bad_scores_are_refused():
    for bad in ([], [0.5, np.nan], [1.2], [[0.5]]):
        with pytest.raises(ValueError):
            curve(bad)


def _uniform_truth(n: np.ndarray) -> np.ndarray:
    """E[max of n uniform(0.6, 0.9) draws] = 0.6 + 0.3 n / (n + 1)."""
    return 0.6 + 0.3 * n / (n + 1)


#: Accuracies over 250 validation rows of a beta(6, 2) skill: a discrete score with ties, as real ones are.
_ROWS = 250
_SUPPORT = np.arange(_ROWS + 1) / _ROWS
_PMF = np.diff(sps.beta(6, 2).cdf(np.concatenate([[-1.0], (np.arange(_ROWS) + 0.5) / _ROWS, [2.0]])))


def _discrete_truth(n: np.ndarray) -> np.ndarray:
    """E[max of n draws] = sum_k v_k (F(v_k)^n - F(v_{k-1})^n) over the support."""
    cdf = np.cumsum(_PMF)
    prev = np.concatenate([[0.0], cdf[:-1]])
    return np.array([np.sum(_SUPPORT * (cdf ** k - prev ** k)) for k in n])


@pytest.mark.parametrize("name, draw, truth, size", [
    ("uniform", lambda g, size: g.uniform(0.6, 0.9, size), _uniform_truth, 9),
    ("discrete", lambda g, size: g.choice(_SUPPORT, size=size, p=_PMF), _discrete_truth, 20),
    ("uniform, Kolmogorov-Smirnov band", lambda g, size: g.uniform(0.6, 0.9, size), _uniform_truth, LD_MAX_DRAWS + 4),
])
def test_the_band_covers_the_true_curve_at_its_stated_rate(name, draw, truth, size):
    """600 sweeps' worth of draws from a known score distribution: the 80% band must hold the whole
    true curve at least 80% of the time, less three Monte Carlo standard errors. Measured here: 99.8%
    (uniform) and 99.5% (discrete): a band on an expected best is conservative (docs/REPORT.md)."""
    g = np.random.default_rng(2026)
    reps = 600
    n = np.arange(1, size + 1)
    true = truth(n)
    assert true[0] == pytest.approx(float(np.sum(_SUPPORT * _PMF)) if name == "discrete" else 0.75)
    held = 0
    for _ in range(reps):
        c = curve(draw(g, size))
        held += bool(((c["low"] <= true + 1e-12) & (true <= c["high"] + 1e-12)).all())
    coverage = held / reps
    print(f"{name}, {size} draws, {reps} replications: coverage {coverage:.3f}")  # docs/REPORT.md quotes it (-s)
    se = np.sqrt(CONFIDENCE * (1 - CONFIDENCE) / reps)
    assert coverage >= CONFIDENCE - 3 * se, (name, coverage)


def _results(rows: list[dict], budget: list[dict]) -> Results:
    trials = pd.DataFrame(rows)
    return Results(["hand"], trials, pd.DataFrame(), pd.DataFrame(budget))


def _pair(strategy, scores, *, study=0, sampler="random", stage="tune"):
    """Trials rows of one study of a pair: trial 0 (canonical) first, then the draws."""
    return [{"workload": "w", "strategy": strategy, "stage": stage, "trial_index": i, "status": "ok",
             "val_accuracy_final": v, "val_accuracy_best": v, "study": study} for i, v in enumerate(scores)]


def _budget(strategy, sampler, trials, studies=1):
    return {"workload": "w", "strategy": strategy, "sampler": sampler, "trials_planned": trials * studies,
            "selection": "final", "studies": studies}


def test_trial_zero_and_tpe_past_its_start_up_are_not_draws():
    assert draw_limit("random") is None and draw_limit("qmc") is None
    assert draw_limit("tpe") == 10  # Optuna's n_startup_trials default, which sweeps/search/searcher.py keeps
    assert draw_limit("cmaes") == 0
    scores = [0.99] + [0.5 + 0.01 * i for i in range(1, 14)]  # trial 0 (canonical) best by far: never a draw
    t = pd.DataFrame(_pair("a", scores))
    assert list(pair_draws(t, "val_accuracy_final", None)) == pytest.approx(scores[1:])
    assert list(pair_draws(t, "val_accuracy_final", 10)) == pytest.approx(scores[1:10])


def test_tpe_gets_a_curve_of_its_start_up_only_and_no_verdict_at_the_budget():
    scores = [0.7] + [0.5 + 0.02 * i for i in range(1, 14)]
    res = _results(_pair("tpe_long", scores) + _pair("tpe_short", scores[:6]) + _pair("rand", scores)
                   + _pair("other", scores),
                   [_budget("tpe_long", "tpe", 14), _budget("tpe_short", "tpe", 6), _budget("rand", "random", 14),
                    _budget("other", "cmaes", 14)])
    curves, summary = tuning_curves(res, size=0.005)
    s = summary.set_index("strategy")
    assert curves.groupby("strategy")["n"].max().to_dict() == {"tpe_long": 9, "tpe_short": 5, "rand": 13}
    # Past TPE's start-up the budget (13 draws) is not on the curve: nothing is said about it.
    assert s.at["tpe_long", "budget_draws"] == 13 and np.isnan(s.at["tpe_long", "expected_budget"])
    assert not s.at["tpe_long", "rising"] and np.isnan(s.at["tpe_long", "gain"])
    assert "chosen from earlier scores" in s.at["tpe_long", "draws_note"]
    # Inside the start-up (6 trials) the whole budget was random search, and the rule applies.
    assert s.at["tpe_short", "expected_budget"] == pytest.approx(0.60)  # the best of trials 1-5
    assert np.isfinite(s.at["tpe_short", "gain"]) and "whole budget" in s.at["tpe_short", "draws_note"]
    assert s.at["rand", "expected_budget"] == pytest.approx(0.76) and s.at["rand", "note"] == ""
    assert s.at["other", "draws"] == 0 and "no trial is an independent draw" in s.at["other", "note"]


def test_studies_are_pooled_and_the_budget_is_per_study():
    a, b = [0.7, 0.60, 0.62, 0.64, 0.66], [0.7, 0.61, 0.63, 0.65, 0.67]
    res = _results(_pair("s", a, study=0) + _pair("s", b, study=1), [_budget("s", "random", 5, studies=2)])
    curves, summary = tuning_curves(res, size=0.005)
    r = summary.iloc[0]
    assert r["draws"] == 8 and r["budget_draws"] == 4 and r["studies"] == 2
    pooled = a[1:] + b[1:]
    assert r["expected_budget"] == pytest.approx(stats.expected_max(pooled, 4))
    assert r["gain_next"] == pytest.approx(stats.expected_max(pooled, 8) - stats.expected_max(pooled, 4))
    # A budget without the studies column: the trials' distinct studies.
    nocol = _results(_pair("s", a, study=0) + _pair("s", b, study=1),
                     [{k: v for k, v in _budget("s", "random", 5, studies=2).items() if k != "studies"}])
    assert tuning_curves(nocol, size=0.005)[1].iloc[0][["studies", "budget_draws"]].tolist() == [2, 4]
    # An old table without the study column and a budget without studies: one study.
    old = _results([{k: v for k, v in row.items() if k != "study"} for row in _pair("s", a)],
                   [{k: v for k, v in _budget("s", "random", 5).items() if k != "studies"}])
    assert tuning_curves(old, size=0.005)[1].iloc[0]["budget_draws"] == 4


def test_the_rule_on_hand_built_curves():
    n = np.arange(1, 9)
    flat = pd.DataFrame({"n": n, "expected": 0.8 + 0.001 * np.log2(n), "low": 0.7, "high": 0.9})
    assert not rising(flat, 8, 0.005).rising  # 0.8030 - 0.8020: a gain of 0.1 pp
    up = pd.DataFrame({"n": n, "expected": 0.7 + 0.02 * np.log2(n), "low": 0.7 + 0.02 * np.log2(n) - 0.01,
                       "high": 0.95})
    r = rising(up, 8, 0.005)
    assert r.half == 4 and r.gain == pytest.approx(0.02) and r.rising
    assert r.shown  # the lower edge at 8 (0.75) lies above the estimate at 4 (0.74)
    assert not rising(up.assign(low=0.6), 8, 0.005).shown
    assert rising(up, 1, 0.005) is None and rising(up, 9, 0.005) is None


def test_the_warning_names_a_curve_still_rising_and_not_a_flat_one():
    """A strategy whose draws spread widely (its best of 8 is far above its best of 4) beside one whose
    draws all score about the same: the warning speaks of the first, at its budget, and not of the second."""
    g = np.random.default_rng(7)
    rise = [0.8] + list(0.5 + 0.4 * g.uniform(size=8) ** 3)
    flat = [0.8] + list(0.80 + 0.0004 * g.uniform(size=8))
    res = _results(_pair("steep", rise) + _pair("level", flat),
                   [_budget("steep", "random", 9), _budget("level", "random", 9)])
    curves, summary = tuning_curves(res, size=0.005)
    s = summary.set_index("strategy")
    assert s.at["steep", "gain"] == pytest.approx(stats.expected_max(rise[1:], 8) - stats.expected_max(rise[1:], 4))
    assert s.at["steep", "rising"] and not s.at["level", "rising"]
    lines = sections.tuning_warning_lines(SimpleNamespace(tuning_summary=summary, margin=0.005))
    assert len(lines) == 1
    assert "steep" in lines[0] and "level" not in lines[0] and "budget of 8 draws per study" in lines[0]
    assert f"+{100 * s.at['steep', 'gain']:.2f} pp from 4 to 8 draws" in lines[0]


def test_the_section_tabulates_the_curves_and_says_in_one_line_why_a_pair_has_none(tmp_path):
    scores = [0.7] + [0.5 + 0.02 * i for i in range(1, 9)]
    res = _results(_pair("rand", scores) + _pair("cm", scores) + _pair("cm2", scores) + _pair("only", scores[:1]),
                   [_budget("rand", "random", 9), _budget("cm", "cmaes", 9), _budget("cm2", "cmaes", 9),
                    _budget("only", "random", 1)])
    # A reproduction tunes nothing: no trial planned, sampler and selection `none`.
    res.budget = pd.concat([res.budget, pd.DataFrame([_budget("paper", "none", 0) | {"selection": "none"}])])
    curves, summary = tuning_curves(res, size=0.005)
    sec = sections.tuning_curves_section(str(tmp_path), SimpleNamespace(tuning_curves=curves, tuning_summary=summary,
                                                                        margin=0.005))
    md = markdown_page(sec.blocks)
    assert md.count("No tuning curve for") == 3
    assert "No tuning curve for paper: no tuning trial was run" in md
    assert "No tuning curve for cm, cm2: sampler `cmaes` chooses every trial from earlier scores" in md
    assert "No tuning curve for only: only the canonical configuration (trial 0) was tried" in md
    # rand: 8 draws 0.52, 0.54, ..., 0.66; E[best] at 1 draw = their mean 59.0%, at b = 8 their best 66.0%,
    # at 4 by hand: sum_i v_(i) C(i - 1, 3) / C(8, 4) = (0.58 + 4 x 0.60 + 10 x 0.62 + 20 x 0.64 + 35 x 0.66) / 70
    # = 64.4%; the gain 66.0 - 64.4 = 1.6 pp: rising.
    row = next(line for line in md.splitlines() if line.startswith("| rand |"))
    assert row.startswith("| rand | 8 | 59.0 | 64.4 | 66.0 [") and row.endswith("| 1.60 | yes |")
    assert set(sec.csvs) == {"tuning_curves", "tuning_curves_summary"}


def test_past_tpes_start_up_the_table_says_nothing_at_the_budget(tmp_path):
    scores = [0.7] + [0.5 + 0.02 * i for i in range(1, 14)]
    res = _results(_pair("tpe", scores) + _pair("rand", scores),
                   [_budget("tpe", "tpe", 14), _budget("rand", "random", 14)])
    curves, summary = tuning_curves(res, size=0.005)
    md = markdown_page(sections.tuning_curves_section(str(tmp_path), SimpleNamespace(
        tuning_curves=curves, tuning_summary=summary, margin=0.005)).blocks)
    assert "| strategy | draws | E[best] 1 draw % | E[best] 6 draws % | E[best] b = 13 draws % [80% band] |" in md
    assert "| tpe | 9 | 60.0 | n/a | n/a | n/a | n/a |" in md  # 1 draw: the mean of trials 1-9, 0.52..0.68
    assert "| rand | 13 | 64.0 |" in md and "trials 10-13 are chosen from earlier scores" in md
