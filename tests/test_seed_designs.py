"""The seed-design contract (``sweeps.designs``): every design answers the searcher's questions on one tiny
hand-computed scenario, without Ray or Optuna.

The scenario: workload ``w``, strategies ``a`` and ``b``, both tuned with a configuration to retrain; then seed
runs scoring a: 90, 91, 92 and b: 91, 89, 92 (percent; seed i, or study i's first seed). Under Kim & Nelson's
procedure (indifference 1, confidence 0.95, first stage 3, batch 2, cap 10) the first screening keeps both:
with k = 2, h^2 = (n0 - 1)((2 alpha / (k - 1))^(-2 / (n0 - 1)) - 1) = 2 (0.1^-1 - 1) = 18; the differences
a - b are -1, 2, 0 with variance S^2 = 7/3, so W = delta / (2r) (h^2 S^2 / delta^2 - r) = (42 - 3) / 6 = 6.5,
and the means differ by 1/3 < 6.5. So the selection designs ask for replicates 3 and 4 of both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from lrstats.selection import SelectionSettings
from sweeps.designs import Ask, FixedSeeds, Reproduction, SeedDesign, SeedSelection, StudySelection
from sweeps.designs.plans import PairPlan
from sweeps.spec.model import STUDY_SEED_STRIDE

PAIRS = {"w/a": ("w", "a"), "w/b": ("w", "b")}
SCORES = {"a": [90.0, 91.0, 92.0], "b": [91.0, 89.0, 92.0]}
SETTINGS = SelectionSettings(indifference=1.0, confidence=0.95, first_seeds=3, max_seeds=10, batch=2)
FIXED_RUNS = {k: (({"workload": "w", "strategy": s, "stage": "seed", "seed": 42, "hparams": {}},
                   {"pair": k, "trial_index": 0, "canonical": True}),) for k, (_, s) in PAIRS.items()}
STUDY = "w/{}#study{}"


@dataclass(frozen=True)
class Case:
    """One design on the scenario: how to make it, the keys whose tuning ends (in order), the seed trials'
    scores (one run each), and the hand-derived answers."""

    make: Callable[[], SeedDesign]
    tuned: list[str]
    scores: list[list[tuple[str, int, float]]]
    after_tuning: list[Ask]  # what the last ``tuned`` call asks
    after_scores: list[Ask]  # what the last ``scored`` call asks
    decides: bool  # whether the record says what was asked and why
    stopped: bool


SEEDS = [[(f"w/{s}", i, v)] for s, values in SCORES.items() for i, v in enumerate(values)]
"""The seed trials of the selection over seeds (and of the fixed designs): seed i of each pair, one run each."""
STUDIES = [[(STUDY.format(s, j), STUDY_SEED_STRIDE * j, v)] for s, values in SCORES.items()
           for j, v in enumerate(values)]
"""The selection over studies': study j's one seed run (seed STUDY_SEED_STRIDE * j) of each strategy."""

CASES = {
    "fixed": Case(lambda: FixedSeeds(2), ["w/a", "w/b"], SEEDS, [Ask("w/b", range(2))], [], False, True),
    "reproduction": Case(
        lambda: Reproduction([PairPlan(k, runs[0][0], {}, {}, fixed=runs) for k, runs in FIXED_RUNS.items()]),
        ["w/a", "w/b"], SEEDS, [Ask("w/b", runs=FIXED_RUNS["w/b"])], [], False, True),
    "selection over seeds": Case(
        lambda: SeedSelection(SETTINGS, PAIRS, 3), ["w/a", "w/b"], SEEDS,
        # b's first stage; then, every pair tuned, the procedure's first stage of every pair (asked once more)
        [Ask("w/b", range(3)), Ask("w/a", range(3)), Ask("w/b", range(3))],
        [Ask("w/a", range(3, 5)), Ask("w/b", range(3, 5))], True, False),
    "selection over studies": Case(
        lambda: StudySelection(SETTINGS, PAIRS, 1), [STUDY.format(s, j) for s in "ab" for j in range(3)], STUDIES,
        # study b#2's one seed, and every study asked so far: the first stage of each strategy
        [Ask("w/b#study2", range(1)), Ask("w/a", studies=range(3)), Ask("w/b", studies=range(3))],
        [Ask("w/a", studies=range(3)), Ask("w/b", studies=range(3)),
         Ask("w/a", studies=range(3, 5)), Ask("w/b", studies=range(3, 5))], True, False),
}


def test_every_design_is_in_the_contract():
    def concrete(cls):
        subs = [c for sub in cls.__subclasses__() for c in concrete(sub)]
        return subs + ([cls] if not getattr(cls, "__abstractmethods__", None) else [])

    assert {type(case.make()) for case in CASES.values()} == set(concrete(SeedDesign))


def _run(design: SeedDesign, case: Case) -> tuple[list[Ask], list[Ask], list[Ask]]:
    """Tune every key, then score every seed trial; return every ask, the last tuned call's, the last scored call's."""
    asked, last_tuned, last_scored = [], [], []
    for key in case.tuned:
        last_tuned = design.tuned(key, chosen=True)
        asked += last_tuned
    for scores in case.scores:
        last_scored = design.scored(scores)
        asked += last_scored
    return asked, last_tuned, last_scored


@pytest.mark.parametrize("name", list(CASES))
def test_each_design_answers_the_same_questions(name):
    case = CASES[name]
    design = case.make()
    asked, last_tuned, last_scored = _run(design, case)
    assert last_tuned == case.after_tuning
    assert last_scored == case.after_scores
    assert design.stopped() is case.stopped
    record = design.record(case.tuned[0])
    assert (record is not None) is case.decides
    if record is not None:
        path, text = record
        assert path == "record/selection/w.json"
        decision = json.loads(text)["decision"]
        assert decision["r"] == 3 and decision["seeds_wanted"] == 5 and not decision["stopped"]
        assert sorted(decision["contenders"]) == ["a", "b"]
    # A design rebuilt from the same finished seed runs, then told the tuning again, asks for the same things
    # (the searcher applies asks idempotently) and records the same decision.
    again = case.make()
    rebuilt = again.rebuild(case.scores) + [a for key in case.tuned for a in again.tuned(key, chosen=True)]
    assert {repr(a) for a in rebuilt} == {repr(a) for a in asked}
    assert again.record(case.tuned[0]) == record and again.stopped() is case.stopped


@pytest.mark.parametrize("name", list(CASES))
def test_a_design_asks_no_seeds_of_a_pair_without_a_configuration(name):
    case = CASES[name]
    own = [a for a in case.make().tuned(case.tuned[0], chosen=False) if a.key == case.tuned[0]]
    assert all(not a.seeds for a in own)  # an empty ask settles the pair's seed runs; a reproduction's are fixed


@pytest.mark.parametrize("name", list(CASES))
def test_what_a_design_may_still_ask_is_bounded_by_its_cap(name):
    case = CASES[name]
    design = case.make()
    _run(design, case)
    plans = {k: PairPlan(k, {}, {}, {}, group=k.partition("#")[0] if "#" in k else None)
             for k in case.tuned}
    # The most it can still ask: seeds, ceil((10 - 3) / 2) = 4 more rounds of 2 seeds (one trial each) for each
    # pair; studies, 10 - 3 more studies of each pair, each 2 tune trials and 1 seed run. The fixed designs: none.
    most = {"selection over seeds": 2 * 4 * 2, "selection over studies": 2 * 7 * (2 + 1)}.get(name, 0)
    bound = design.further(plans, trials=2)
    assert bound >= most and (bound == 0) == (most == 0)
