"""The study-level selection design's bookkeeping (``sweeps.designs.rounds.StudyRounds``), without Ray: which
studies are asked after which scores, and that a resumed driver, fed the same record in another order, asks
for the same studies and writes the same decision.

Hand-computed case (k = 3, n0 = 3 studies, confidence 0.95, zone 1 pp): eta = ((2 * 0.05 / 2)^(-2 / 2) - 1) / 2
= 9.5 and h^2 = 2 eta (n0 - 1) = 38. Study scores (each the mean of 2 seed runs scoring the same):
a 90, 91, 92; b 88, 92, 92.5; c 80, 81, 82. a - c is 10 in every study, so S^2_ac = 0, W_ac(3) = 0 and c
(9 pp behind) is eliminated behind a at 3 studies. a - b is 2, -1, -0.5: S^2_ab = 31/12, W_ab(3) =
(1 / 6)(38 * 31 / 12 - 3) = 15.86 > the gap 0.17, so a and b go on to studies 3 and 4 (batch 2).
"""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from lrstats.selection import SelectionSettings
from sweeps.designs.rounds import StudyRounds, studies_asked

SETTINGS = SelectionSettings(indifference=1.0, confidence=0.95, first_seeds=3, max_seeds=7, batch=2)
PAIRS = {"w/a": ("w", "a"), "w/b": ("w", "b"), "w/c": ("w", "c")}
FIRST = {"a": [90, 91, 92], "b": [88, 92, 92.5], "c": [80, 81, 82]}


def events(scores: dict[str, list[float]], start: int = 0) -> list[tuple[str, int, float]]:
    """Every seed run of these studies: (study key, seed 1000 j + i, score), 2 runs per study."""
    return [(f"w/{s}#study{j}", 1000 * j + i, v) for s, values in scores.items()
            for j, v in enumerate(values, start) for i in range(2)]


def feed(rounds: StudyRounds, runs) -> list[tuple[str, range]]:
    for key, seed, value in runs:
        rounds.scored(key, seed, value)
    return rounds.ask("w")


def first_stage() -> list[tuple[str, range]]:
    return [(k, range(3)) for k in PAIRS]


def test_the_first_stage_is_every_strategy_and_nothing_is_screened_until_it_is_complete():
    rounds = StudyRounds(SETTINGS, PAIRS, per_study=2)
    assert rounds.ask("w") == first_stage()
    runs = events(FIRST)
    assert feed(rounds, runs[:-1]) == first_stage()  # c's study 2 has one seed run of two: no score yet
    assert rounds.workloads["w"].decision.r == 0 and not rounds.stopped()


def test_contenders_get_the_next_batch_of_studies_and_the_decision_says_why():
    rounds = StudyRounds(SETTINGS, PAIRS, per_study=2)
    asked = feed(rounds, events(FIRST))
    d = rounds.workloads["w"].decision
    assert d.r == 3 and d.eliminated == {"c": 3} and d.rounds[0].eliminated == {"c": "a"}
    assert asked == [*first_stage(), ("w/a", range(3, 5)), ("w/b", range(3, 5))]
    record = json.loads(rounds.record("w"))
    assert record["unit"] == "studies" and record["seeds_per_study"] == 2
    assert record["asked"][-1] == {"strategy": "b", "studies": [3, 5],
                                   "why": "in contention after the screening at 3 studies"}
    assert record["study_scores"]["b"] == {"0": 88.0, "1": 92.0, "2": 92.5}


def test_a_second_round_and_the_cap():
    rounds = StudyRounds(SETTINGS, PAIRS, per_study=2)
    feed(rounds, events(FIRST))
    # a - b over 5 studies: W_ab(5) = (1 / 10)(38 * 31 / 12 - 5) = 9.32, far above their gap: on to 7.
    asked = feed(rounds, events({"a": [91, 91], "b": [91, 90]}, start=3))
    assert asked[-2:] == [("w/a", range(5, 7)), ("w/b", range(5, 7))]
    assert [r.r for r in rounds.workloads["w"].decision.rounds] == [3, 5]
    assert not rounds.stopped()
    asked = feed(rounds, events({"a": [91, 91], "b": [91, 90]}, start=5))
    d = rounds.workloads["w"].decision
    assert d.stopped and d.capped and d.r == 7 and d.selected == "a"  # the cap of 7 studies, no guarantee
    assert asked[-2:] == [("w/a", range(5, 7)), ("w/b", range(5, 7))]  # nothing asked after the last screening
    assert rounds.stopped()


@pytest.mark.parametrize("order", [0, 1, 2])
def test_a_resumed_driver_fed_the_record_in_any_order_asks_the_same_studies(order):
    runs = events(FIRST) + events({"a": [91, 91], "b": [91, 90]}, start=3) + events({"a": [92], "b": [89]}, start=5)
    live = StudyRounds(SETTINGS, PAIRS, per_study=2)
    for i in range(len(runs)):  # the first driver asks after every seed run
        live.scored(*runs[i])
        live.ask("w")
    shuffled = list(runs)
    random.Random(order).shuffle(shuffled)
    resumed = StudyRounds(SETTINGS, PAIRS, per_study=2)
    assert feed(resumed, shuffled) == live.ask("w")
    assert resumed.record("w") == live.record("w")


def test_a_study_without_a_score_takes_its_strategy_out():
    rounds = StudyRounds(SETTINGS, PAIRS, per_study=2)
    rounds.tuned("w/c#study1", chosen=False)  # every tune trial of c's study 1 failed
    runs = events({"a": FIRST["a"], "b": FIRST["b"]})
    runs[0] = (runs[0][0], runs[0][1], None)  # and a seed run of a's study 0 errored
    asked = feed(rounds, runs)
    w = rounds.workloads["w"]
    assert w.errored == {"a": 0, "c": 1}
    assert w.decision.stopped and w.decision.selected == "b"  # one strategy left: nothing to screen
    assert asked == first_stage() and rounds.stopped()


def test_studies_asked_is_a_function_of_the_decision_alone():
    assert [(a.strategy, a.studies) for a in studies_asked(None, ["y", "x"], 4)] == [("x", range(4)),
                                                                                       ("y", range(4))]


# ---- the searcher asks for the studies (real Optuna studies, no Ray) ------------------------------------------

AUTO = {"name": "t", "workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "adam", "cosine_sgd"],
        "budget": {"trials": 2, "epochs": 1, "sampler": "random", "sampler_seed": 3, "studies": "auto",
                   "study_selection": {"indifference": 1.0, "first_studies": 3, "max_studies": 7, "batch": 2}},
        "evaluation": {"seeds": 2}, "resources": {"population": 4}}
TRUTH = {"adam": [90, 91, 92, 91, 91, 91, 91], "cosine_sgd": [88, 92, 92.5, 91, 90, 91, 90],
         "fixed_sgd": [80, 81, 82, 80, 80, 80, 80]}
"""Study scores by strategy and study: those of the hand-computed case above (adam a, cosine_sgd b, fixed_sgd c)."""


def _searcher(tmp_path, name="optuna.journal"):
    from sweeps.engine.experiment import _searcher, plan
    from sweeps.record.storage import SweepDir
    from sweeps.spec import parse_spec

    return _searcher(plan(parse_spec(AUTO), SweepDir(str(tmp_path / "t"))))


def _result(config):
    from vocab.members import report, trial_members

    members = trial_members(config)
    if members[0][0]["stage"] == "tune":  # trial t scores 0.5 + t / 10 on validation: the last is every study's best
        return report(1, [{"epoch": 1, "val_accuracy": 0.5 + m["trial_index"] / 10} for _, m in members])
    return report(1, [{"epoch": 1, "test_accuracy": TRUTH[r["strategy"]][m["study"]] / 100} for r, m in members])


def _drive(searcher, finished=None, stop=None):
    """Give out and finish trials one at a time (as a 1-slot cluster would) until FINISHED or ``stop``
    trials; return the finished runs by record key, in order."""
    from sweeps.record.durable import RunRecord, trial_key

    finished = {} if finished is None else dict(finished)
    while stop is None or len(finished) < stop:
        trial_id = f"t{len(finished)}"
        config = searcher.suggest(trial_id)
        if not isinstance(config, dict):
            assert config == "FINISHED", config
            break
        result = _result(config)
        searcher.on_trial_result(trial_id, result)
        searcher.on_trial_complete(trial_id, result)
        finished[trial_key(config)] = RunRecord(trial_id, config, (result,))
    return finished


def test_the_searcher_adds_the_studies_of_contenders_and_a_rebuilt_one_asks_the_same(tmp_path):
    from vocab.members import trial_members

    searcher = _searcher(tmp_path)
    finished = _drive(searcher)
    d = searcher.design.rounds.workloads["synthetic"].decision
    assert d.stopped and d.capped and d.selected == "adam" and d.eliminated == {"fixed_sgd": 3}
    studies = {}
    for run in finished.values():
        for r, m in trial_members(run.config):
            studies.setdefault((r["strategy"], r["stage"]), set()).add(m.get("study", r.get("study", 0)))
    assert studies[("fixed_sgd", "tune")] == studies[("fixed_sgd", "seed")] == {0, 1, 2}
    assert studies[("adam", "tune")] == studies[("cosine_sgd", "seed")] == set(range(7))  # 3, then 2 and 2 more
    # Study j of every strategy: sampler seed 3 + j, tune seed 1000003 + j, seeds 1000 j + 0, 1.
    fifth = searcher.plans["synthetic/cosine_sgd#study5"]
    assert (fifth.sampler_seed, fifth.base["seed"], fifth.base["study"]) == (8, 1_000_008, 5)
    seeds = sorted(r["seed"] for run in finished.values() for r, m in trial_members(run.config)
                   if r["stage"] == "seed" and r["strategy"] == "cosine_sgd")
    assert seeds == sorted(1000 * j + i for j in range(7) for i in range(2))
    # A driver killed at any point and resumed from the record asks for exactly the remaining trials.
    for stop in (5, len(finished) // 2, len(finished) - 3):
        killed = _searcher(tmp_path / f"k{stop}")
        part = _drive(killed, stop=stop)
        resumed = _searcher(tmp_path / f"k{stop}")
        resumed.rebuild(part)
        assert set(_drive(resumed, part)) == set(finished)
        assert resumed.design.rounds.record("synthetic") == searcher.design.rounds.record("synthetic")


# ---- the spec and the plan ----------------------------------------------------------------------------------

def _parse(**budget):
    import yaml

    from sweeps.spec import parse_spec

    raw = yaml.safe_load(yaml.safe_dump(AUTO))
    raw["budget"] = {k: v for k, v in {**raw["budget"], **budget}.items() if v is not None}
    return parse_spec(raw)


def test_studies_auto_is_a_protocol_of_its_own_that_reads_back_equal():
    import yaml

    from sweeps.spec import parse_spec

    spec = _parse()
    assert spec.budget.adaptive_studies and spec.budget.studies == 3 and spec.budget.most_studies == 7
    assert spec.budget.to_dict()["studies"] == "auto" and spec.budget.to_dict()["study_selection"]["first_studies"] == 3
    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec
    fixed = _parse(studies=3, study_selection=None)
    assert spec.hash != fixed.hash and spec.protocol_hash(spec.workloads[0]) != fixed.protocol_hash(fixed.workloads[0])
    other = _parse(study_selection={**AUTO["budget"]["study_selection"], "indifference": 2.0})
    assert other.hash != spec.hash  # the settings are the experiment's


@pytest.mark.parametrize(("budget", "evaluation", "field", "words"), [
    ({"study_selection": {"first_studies": 2}}, {}, "budget.study_selection.first_studies", "an integer from 3 to 100"),
    ({"study_selection": {"max_studies": 101}}, {}, "budget.study_selection.max_studies",
     "an integer from first_studies (5) to 100"),
    ({"study_selection": {"first_studies": 6, "max_studies": 4}}, {}, "budget.study_selection.max_studies",
     "from first_studies (6)"),
    ({"study_selection": {"confidence": 1.2}}, {}, "budget.study_selection.confidence", "a probability in (0.5, 1)"),
    ({"study_selection": {"indifference": 0}}, {}, "budget.study_selection.indifference", "(0, 100)"),
    ({"study_selection": {"batch": 0}}, {}, "budget.study_selection.batch", "an integer >= 1"),
    ({"study_selection": {"seeds": 3}}, {}, "budget.study_selection.seeds", "allowed fields: indifference"),
    ({"studies": 3}, {}, "budget.study_selection", "belongs to budget.studies: auto only"),
    ({"studies": "some"}, {}, "budget.studies", "or 'auto'"),
    ({}, {"seeds": "auto"}, "evaluation.seeds", "budget.studies: auto selects over studies"),
    ({"sampler_seed": 999_995}, {}, "budget.sampler_seed", "sampler_seed + studies - 1 at most"),
])
def test_a_bad_selection_over_studies_is_refused_naming_the_field(budget, evaluation, field, words):
    import yaml

    from sweeps.spec import SpecError, parse_spec

    raw = yaml.safe_load(yaml.safe_dump(AUTO))
    raw["budget"]["study_selection"] = {}
    raw["budget"].update(budget)
    raw["evaluation"].update(evaluation)
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert any(p.startswith(f"{field}:") and words in p for p in caught.value.problems), caught.value.problems


def test_plan_counts_studies_from_the_first_stage_to_the_cap_and_expects_from_a_pilot():
    from sweeps.commands.estimate import RAY_START_S, Cost, describe, estimate

    spec = _parse()  # 3 strategies, 2 trials and 2 seeds per study, 3 to 7 studies, population 4, 1 epoch
    costs = {("synthetic", s): Cost(per_run_epoch=2.0, start=4.0) for s in spec.strategies}
    plan = estimate(spec, costs, slots=1)
    per_study = (2 + 2) * (4.0 / 4 + 1 * 2.0)  # tune and seed runs, each a start shared by 4 plus its epoch
    assert plan.tune_runs == 3 * 3 * 2 and plan.seed_runs == (3 * 3 * 2, 3 * 7 * 2, None)
    assert plan.seconds[:2] == (RAY_START_S + 9 * per_study, RAY_START_S + 21 * per_study)
    assert "pass --from DIR" in describe(spec, plan, "test")[-1]
    # A pilot: 3 studies of 2 seeds per strategy, one clear loser, the other two 0.3 pp apart.
    rng = np.random.default_rng(0)
    mean = {"adam": 90.0, "cosine_sgd": 89.7, "fixed_sgd": 80.0}
    pilot = {"synthetic": {s: {j: list(m + rng.normal(0, 1, 2)) for j in range(3)} for s, m in mean.items()}}
    expected = estimate(spec, costs, slots=1, studies_pilot=pilot).seed_runs[2]
    assert 3 * 3 * 2 < expected <= 3 * 7 * 2


def test_an_extension_may_add_strategies_but_not_change_the_seeds_a_study_score_averages():
    from sweeps.commands.extend import protocol_changes

    spec = _parse()
    more = dataclasses.replace(spec, strategies=(*spec.strategies, "sgdr"))
    assert protocol_changes(spec, more) == []
    seeds = dataclasses.replace(spec, evaluation=dataclasses.replace(spec.evaluation, seeds=3))
    assert protocol_changes(spec, seeds) == ["evaluation.seeds: the sweep has 2, the extension 3"]
