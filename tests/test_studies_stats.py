"""The study-level statistics (`lrstats.studies`) on small cases whose answers are computed by hand or by a
reference formula; the guarantees themselves are simulated in tests/test_studies_simulation.py."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from lrstats.selection import SelectionSettings, decide, kn_constants, mcb
from lrstats.studies import (
    chi2_interval,
    group_scores,
    mls_interval,
    nested_mean_squares,
    paired_split,
    pilot_study_cost,
    pilot_study_model,
    replicates,
    rows_component,
    study_claims,
    study_correct,
    study_cost,
    study_decide,
    study_mcb,
    study_mcb_rows,
    variance_split,
)
from lrstats.two_level import two_level
from reports.tables import study_scores, study_seed_scores


def test_group_scores_means_each_study_and_drops_missing_scores():
    got = group_scores(["a", "a", "a", "b", "b"], [0, 0, 1, 0, 1], [80.0, 82.0, 90.0, math.nan, 70.0])
    assert got == {"a": {0: 81.0, 1: 90.0}, "b": {1: 70.0}}


def test_study_scores_reads_finished_seed_runs_and_treats_a_missing_study_column_as_study_0():
    runs = pd.DataFrame({"strategy": ["a", "a", "b", "b", "b"], "stage": ["seed", "seed", "seed", "tune", "seed"],
                         "status": ["ok", "diverged", "ok", "ok", "error"], "seed": [1, 0, 0, 5, 1],
                         "test_accuracy_final": [0.80, 0.90, 0.70, 0.99, 0.10]})
    assert study_scores(runs) == {"a": {0: pytest.approx(85.0)}, "b": {0: pytest.approx(70.0)}}
    assert study_seed_scores(runs) == {"a": {0: [pytest.approx(90.0), pytest.approx(80.0)]},
                                       "b": {0: [pytest.approx(70.0)]}}  # seed order
    with_study = runs.assign(study=[0, 1, 1, 0, 0])
    assert study_scores(with_study) == {"a": {0: pytest.approx(80.0), 1: pytest.approx(90.0)},
                                        "b": {1: pytest.approx(70.0)}}


def test_replicates_cut_each_strategy_at_its_first_missing_study():
    assert replicates({"a": {0: 1.0, 2: 3.0}, "b": {0: 1.0, 1: 2.0}}) == {"a": [1.0], "b": [1.0, 2.0]}


def test_study_correct_groups_runs_by_study():
    v = {"a": {0: np.array([1, 0]), 1: np.array([1, 1]), 1000: np.array([0, 0])}}
    got = study_correct(v)
    assert sorted(got["a"]) == [0, 1] and got["a"][0].tolist() == [[1, 0], [1, 1]] and got["a"][1].tolist() == [[0, 0]]
    got = study_correct(v, {("a", 0): 0, ("a", 1): 1, ("a", 1000): 1})
    assert got["a"][0].tolist() == [[1, 0]] and got["a"][1].tolist() == [[1, 1], [0, 0]]


def test_nested_mean_squares_by_hand():
    """Studies [1, 2, 3] and [4, 6]: means 2 and 5, grand mean 3.2; SS_between = 3 * 1.44 + 2 * 3.24 = 10.8 on
    1 d.f.; SS_within = 2 + 2 = 4 on 3 d.f.; n_0 = (5 - 13 / 5) / 1 = 2.4."""
    ms_b, df_b, ms_w, df_w, n0 = nested_mean_squares([[1, 2, 3], [4, 6]])
    assert (df_b, df_w) == (1, 3)
    assert ms_b == pytest.approx(10.8) and ms_w == pytest.approx(4 / 3) and n0 == pytest.approx(2.4)


def test_mls_interval_without_a_subtracted_mean_square_is_the_exact_chi_square_interval():
    low, high = mls_interval(2.0, 7, 0.0, 20, 0.5)
    a, b = chi2_interval(2.0, 7)
    assert (low, high) == pytest.approx((0.5 * a, 0.5 * b))
    assert (a, b) == pytest.approx((7 * 2.0 / scipy.stats.chi2.ppf(0.975, 7), 7 * 2.0 / scipy.stats.chi2.ppf(0.025, 7)))
    low, high = mls_interval(10.0, 4, 2.0, 15, 0.25)  # contains the estimate, floored at 0
    assert 0.0 <= low < 0.25 * 8.0 < high


def test_rows_component_is_two_levels_row_variance():
    """The test rows' part of two_level's variance, (MS_rows - MS_residual) / (U R), is the component."""
    rng = np.random.default_rng(3)
    z = (rng.random((4, 60)) < rng.uniform(0.2, 0.9, 60)).astype(float)
    est, low, high = rows_component(z)
    r = two_level(z)
    assert est == pytest.approx(r.se**2 - r.seed_se**2)
    assert low < est < high


def test_variance_split_by_hand():
    """Studies [1, 3] and [5, 7] (pp): MS_within = 2 (seeds), MS_between = 2 * var(2, 6) = 16, tuning
    (16 - 2) / 2 = 7; the mean 4 with the t interval over the two study means, 4 +- t(1) * 2.83 / sqrt(2)."""
    split = variance_split([[1, 3], [5, 7]])
    assert split.component("seeds").variance == pytest.approx(2.0)
    assert split.component("tuning").variance == pytest.approx(7.0)
    assert math.isnan(split.component("test rows").variance)
    assert split.mean == pytest.approx(4.0)
    half = scipy.stats.t.ppf(0.975, 1) * math.sqrt(8) / math.sqrt(2)
    assert (split.ci_low, split.ci_high) == pytest.approx((4 - half, 4 + half))
    assert split.component("tuning").of_mean == pytest.approx(3.5)
    assert split.component("seeds").of_mean == pytest.approx(0.5)
    assert split.shares == pytest.approx({"tuning": 7 / 9, "seeds": 2 / 9})
    assert split.dominant == "tuning" and split.covers.startswith("tuning, seeds")


def test_variance_split_with_predictions_covers_rows_and_one_study_holds_the_tuning_fixed():
    rng = np.random.default_rng(5)
    y = (rng.random((3, 2, 80)) < 0.8).astype(np.int8)
    split = variance_split(list(100 * y.mean(axis=2)), list(y))
    r = two_level(y.mean(axis=1))
    assert (split.ci_low, split.ci_high) == pytest.approx((100 * r.ci_low, 100 * r.ci_high))
    assert split.component("test rows").variance == pytest.approx(1e4 * rows_component(y.mean(axis=1))[0])
    assert split.covers == "tuning, seeds and test rows" and split.rows == 80
    one = variance_split([100 * y[0].mean(axis=1)], [y[0]])
    assert math.isnan(one.component("tuning").variance) and "one study" in one.covers


def test_study_decide_and_study_mcb_are_the_seed_level_rules_on_study_scores():
    rng = np.random.default_rng(8)
    scores = {n: dict(enumerate(rng.normal(m, 1.0, 6))) for n, m in [("a", 0.0), ("b", 3.0), ("c", 0.5)]}
    settings = SelectionSettings(1.0, 0.95, first_seeds=3, max_seeds=6, batch=1)
    lists = {n: [by[j] for j in range(6)] for n, by in scores.items()}
    d = study_decide(scores, settings)
    assert d == decide(lists, settings, unit="studies")
    assert " studies" in d.reason and " seeds" not in d.reason  # its reason counts the replicates it has
    assert dataclasses.replace(d, reason="") == dataclasses.replace(decide(lists, settings), reason="")
    assert study_mcb(scores) == mcb(lists)
    assert study_mcb(scores, first=3) == mcb({n: v[:3] for n, v in lists.items()})


def test_widened_mcb_is_never_narrower_and_has_two_level_widths():
    rng = np.random.default_rng(9)
    correct = {n: {j: (rng.random((2, 100)) < p).astype(np.int8) for j in range(4)}
               for n, p in [("a", 0.70), ("b", 0.78)]}
    scores = {n: {j: 100 * c.mean() for j, c in by.items()} for n, by in correct.items()}
    wide, narrow = study_mcb_rows(correct), study_mcb(scores)
    za = np.stack([correct["a"][j].mean(axis=0) for j in range(4)])
    zb = np.stack([correct["b"][j].mean(axis=0) for j in range(4)])
    r = two_level(zb - za, confidence=0.9)  # k = 2: one comparison, one-sided at alpha
    top = wide[0]
    assert top.name == "b" and top.mean == pytest.approx(100 * zb.mean())
    assert top.upper == pytest.approx(max(0.0, 100 * (r.mean + (r.ci_high - r.mean))))
    assert {r.name for r in narrow if r.could_be_best} <= {r.name for r in wide if r.could_be_best}


def test_study_claims_state_only_what_the_design_backs():
    one = study_claims({"a": {0: 80.0}, "b": {0: 70.0}})
    assert one.lines == ("No claim covers the tuning: 1 tuning study common to every strategy; the tuning's share "
                         "of the variance cannot be estimated from one study, and every statement of this verdict "
                         "holds the tuning fixed.",)
    clear = {"a": {j: 80.0 + 0.1 * j for j in range(5)}, "b": {j: 70.0 - 0.2 * j for j in range(5)},
             "c": {j: 78.9 + 3.0 * (j % 2) for j in range(5)}}
    got = study_claims(clear)
    assert got.could_be_best == ("a", "c") and got.below_best == ("b",)
    assert got.lines[0].startswith("The best is one of a, c at 95%, over tuning and seeds")
    assert got.lines[1] == "Below the best at 95%, over tuning and seeds: b."
    settings = SelectionSettings(1.0, 0.95, first_seeds=3, max_seeds=None, batch=1)
    sel = study_claims({"a": clear["a"], "b": clear["b"]}, settings=settings)
    assert sel.decision.selected == "a" and sel.lines[0].startswith("Selected: a after 3 tuning studies.")
    capped = study_claims(clear, settings=SelectionSettings(1.0, 0.95, first_seeds=3, max_seeds=3, batch=1))
    assert capped.lines[0] == ("No strategy is selected with a guarantee: the cap of 3 tuning studies stopped KN "
                               "with 2 still in contention (a, c).")
    assert "as tuned by this protocol" in sel.lines[0] and sel.lines[1].startswith("a is the best (or tied")


def test_study_cost_counts_studies_and_seed_runs():
    settings = SelectionSettings(1.0, 0.95, first_seeds=5, max_seeds=None, batch=1)
    cost = study_cost(5, settings, 0.5, 1.0, 4, reps=200, rng=np.random.default_rng(1))
    assert cost.h2 == pytest.approx(kn_constants(5, 5, 0.95)[1])
    assert cost.studies.expected >= 5 * 5 and cost.seed_runs == pytest.approx(4 * cost.studies.expected)


def test_pilot_study_model_recovers_tuning_and_seed_sds():
    rng = np.random.default_rng(2)
    pilot = {n: {j: list(rng.normal(0, tau) + rng.normal(80, 1.0, 5)) for j in range(400)}
             for n, tau in [("a", 2.0), ("b", 0.5)]}
    names, means, tau, sigma = pilot_study_model(pilot)
    assert names == ["a", "b"] and means == pytest.approx([80, 80], abs=0.3)
    assert tau == pytest.approx([2.0, 0.5], rel=0.15) and sigma == pytest.approx([1.0, 1.0], rel=0.05)


def test_pilot_study_cost_uses_the_pilots_means_and_spreads():
    """One strategy far ahead: KN drops the other at the first stage, so the cost is exactly 2 x n0 studies."""
    rng = np.random.default_rng(4)
    pilot = {n: {j: list(rng.normal(m, 0.3, 3)) for j in range(3)} for n, m in [("a", 80.0), ("b", 60.0)]}
    settings = SelectionSettings(1.0, 0.95, first_seeds=5, max_seeds=None, batch=1)
    cost = pilot_study_cost(pilot, settings, 3, reps=50, rng=np.random.default_rng(0))
    assert cost.studies.expected == 10 and cost.seed_runs == 30


def test_paired_split_is_the_split_of_the_differences():
    """Studies [3, 5] - [1, 2] and [9, 9] - [4, 5]: differences [2, 3] and [5, 4], whose split is by hand
    MS_within = (0.5 + 0.5) / 2 = 0.5, MS_between = 2 * var(2.5, 4.5) = 4, tuning (4 - 0.5) / 2 = 1.75."""
    split = paired_split([[3, 5], [9, 9]], [[1, 2], [4, 5]])
    assert split.mean == pytest.approx(3.5)
    assert split.component("seeds").variance == pytest.approx(0.5)
    assert split.component("tuning").variance == pytest.approx(1.75)
    ya, yb = np.array([[[1, 0, 1], [1, 1, 1]]]), np.array([[[0, 0, 1], [1, 0, 1]]])
    with_rows = paired_split([[66.7, 100.0]], [[33.3, 66.7]], list(ya), list(yb))
    assert with_rows.rows == 3 and with_rows.studies == 1
    with pytest.raises(ValueError, match="same seeds"):
        paired_split([[1, 2]], [[1]])


def test_the_statistics_import_numpy_and_scipy_only():
    """lrstats.studies (and the two-level interval it reuses) load without pandas, pyarrow, Ray or torch."""
    import subprocess
    import sys

    code = ("import sys, lrstats.studies; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'ray', 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
