"""The seed stage's design in the spec and in the searcher, without Ray: the selection design's fields
and their errors, the fixed design's hash unchanged, and the searcher handing out seeds only to the
pairs the procedure keeps in contention, the same after a rebuild from the record as in one session."""

from __future__ import annotations

import pytest
from ray.tune.search import Searcher

from lrstats.selection import decide
from sweeps.engine.experiment import _searcher, plan
from sweeps.record.durable import RunRecord
from sweeps.record.storage import SweepDir
from sweeps.spec import SpecError, parse_spec
from vocab.members import trial_members

BASE = {"name": "q", "workloads": ["synthetic"], "strategies": ["adam", "fixed_sgd"],
        "budget": {"trials": 2, "epochs": 3}}
SELECT = {"seeds": "auto", "indifference": 1.0, "first_seeds": 3, "batch": 2, "max_seeds": 9}


def test_a_fixed_design_keeps_the_hash_it_had_before_the_selection_design_existed():
    spec = parse_spec({**BASE, "evaluation": {"seeds": 4}})
    assert spec.hash == "09bf51a6c52ba9bb"  # computed by lrsweep before this change, for the same spec
    assert not spec.evaluation.adaptive and spec.evaluation.first_stage == spec.evaluation.most_seeds == 4


def test_the_selection_design_parses_with_defaults_and_round_trips_through_the_normalised_spec():
    spec = parse_spec({**BASE, "evaluation": {"seeds": "auto"}})
    e = spec.evaluation
    assert e.adaptive and (e.indifference, e.confidence, e.first_seeds, e.max_seeds, e.batch) == (0.5, 0.95, 10, 60, 10)
    import yaml

    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec and again.hash == spec.hash
    other = parse_spec({**BASE, "evaluation": {**SELECT, "indifference": 0.5}})
    assert other.hash != parse_spec({**BASE, "evaluation": SELECT}).hash  # the zone is part of the experiment
    assert parse_spec({**BASE, "evaluation": {**SELECT, "max_seeds": None}}).evaluation.max_seeds is None


@pytest.mark.parametrize(("evaluation", "field", "allowed"), [
    ({"seeds": "some"}, "evaluation.seeds", "or 'auto' (the selection design)"),
    ({"seeds": "auto", "indifference": 0}, "evaluation.indifference", "a number of percentage points in (0, 100)"),
    ({"seeds": "auto", "confidence": 1.0}, "evaluation.confidence", "a probability in (0.5, 1)"),
    ({"seeds": "auto", "first_seeds": 2}, "evaluation.first_seeds", "an integer from 3 to 1000"),
    ({"seeds": "auto", "first_seeds": 10, "max_seeds": 5}, "evaluation.max_seeds", "from first_seeds (10) to 1000"),
    ({"seeds": "auto", "batch": 0}, "evaluation.batch", "an integer >= 1"),
    ({"seeds": 5, "indifference": 1.0}, "evaluation.indifference", "belongs to the selection design only"),
    ({"seeds": "auto", "zone": 1}, "evaluation.zone", "allowed fields: seeds, selection, indifference"),
])
def test_a_bad_selection_field_is_named_with_what_is_allowed(evaluation, field, allowed):
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, "evaluation": evaluation})
    problem = next(p for p in err.value.problems if p.startswith(field + ":"))
    assert allowed in problem


SETTINGS = {"indifference": 0.5, "confidence": 0.95, "first_seeds": 10, "max_seeds": 60, "batch": 10}
"""The selection design's defaults (`Evaluation`), which a bad value below replaces."""


@pytest.mark.parametrize("bad", [
    {"indifference": 0}, {"indifference": 150.0}, {"indifference": float("nan")}, {"indifference": "1"},
    {"confidence": 1.0}, {"confidence": 0.5}, {"first_seeds": 3.0}, {"first_seeds": 10, "max_seeds": 5},
    {"batch": 0}, {"batch": True}, {"indifference": -1, "batch": 0}, {"first_seeds": 1}, {"first_seeds": 1001},
    {"max_seeds": 5000},
])
def test_the_spec_and_the_rule_give_the_same_message_for_a_bad_setting(bad):
    """One validator per setting: the spec's problems are the rule's (`settings_problems`, with the spec's
    n0 >= 3 and 1000-seed cap) under ``evaluation.``; `SelectionSettings` raises the rule's own words."""
    from lrstats.selection import SelectionSettings, settings_problems
    from sweeps.spec.model import MAX_EVAL_SEEDS
    from sweeps.spec.sections import MIN_FIRST_SEEDS

    values = {**SETTINGS, **bad}
    rule = settings_problems(**values, least_first=MIN_FIRST_SEEDS, most_seeds=MAX_EVAL_SEEDS)
    assert rule
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, "evaluation": {"seeds": "auto", **bad}})
    assert [p for p in err.value.problems if p.startswith("evaluation.")] == [f"evaluation.{f}: {m}" for f, m in rule]
    plain = dict(settings_problems(**values))  # SelectionSettings' bounds: n0 >= 2, no cap
    if plain:
        with pytest.raises(ValueError) as raised:
            SelectionSettings(**values)
        assert str(raised.value) == "; ".join(f"{f}: {m}" for f, m in plain.items())
    for field in ("indifference", "confidence", "batch"):  # bounds the spec adds nothing to: the same words
        assert plain.get(field) == dict(rule).get(field)



@pytest.mark.parametrize("bad", [
    {"indifference": 0}, {"confidence": 1.0}, {"first_studies": 2}, {"first_studies": 3.0}, {"first_studies": 101},
    {"first_studies": 6, "max_studies": 4}, {"max_studies": None}, {"max_studies": 101}, {"batch": 0},
])
def test_the_study_level_settings_get_the_rules_message_under_their_own_names(bad):
    """``budget.study_selection`` is checked by the same rule, in studies (first_studies, max_studies; a cap
    is required, n0 >= 3, at most MAX_STUDIES): the spec's problems are the rule's, word for word."""
    from lrstats.selection import settings_problems
    from sweeps.spec.model import MAX_STUDIES, StudySelection

    d = StudySelection()
    values = {"indifference": d.indifference, "confidence": d.confidence, "first_studies": d.first_studies,
              "max_studies": d.max_studies, "batch": d.batch, **bad}
    rule = settings_problems(values["indifference"], values["confidence"], values["first_studies"],
                             values["max_studies"], values["batch"], least_first=3, most_seeds=MAX_STUDIES,
                             unit="studies", capped=True)
    assert rule and {f for f, _ in rule} <= {"indifference", "confidence", "first_studies", "max_studies", "batch"}
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, "budget": {**BASE.get("budget", {}), "studies": "auto", "study_selection": bad},
                    "evaluation": {"seeds": 2}})
    found = [p for p in err.value.problems if p.startswith("budget.study_selection.")]
    assert found == [f"budget.study_selection.{f}: {m}" for f, m in rule]

# ---- the searcher ------------------------------------------------------------------------------------

TRUTH = {"adam": 90.0, "fixed_sgd": 80.0, "lion": 89.9}
"""Final test accuracy (percent) of each strategy's seed runs: fixed_sgd clearly behind, lion close."""
NOISE = [0.3, -0.4, 0.1, 0.5, -0.2, 0.0, 0.25, -0.35, 0.15]
"""Seed j's deviation (percent) for adam; lion gets the reverse order, fixed_sgd none."""


def _score(strategy: str, seed: int) -> float:
    shift = NOISE[seed] if strategy == "adam" else NOISE[-1 - seed] if strategy == "lion" else 0.0
    return TRUTH[strategy] + shift


def _drive(searcher, finish_after: int | None = None) -> list[tuple[str, int]]:
    """Run the searcher as Tune would, each trial finishing at once; return the seed runs in the order
    given out. With ``finish_after``, stop after that many seed trials and return the record so far."""
    given, n = [], 0
    records: dict[str, RunRecord] = {}
    while True:
        trial_id = f"t{n}"
        config = searcher.suggest(trial_id)
        n += 1
        if config is None or config == Searcher.FINISHED:
            return given if finish_after is None else (given, records)
        members = trial_members(config)
        if members[0][0]["stage"] == "tune":
            result = {"epoch": 3, "val_accuracy": 0.5} if len(members) == 1 else \
                {"epoch": 3, "population": len(members),
                 **{f"members/{i}/val_accuracy": 0.5 for i in range(len(members))}}
        else:
            scores = [_score(run["strategy"], run["seed"]) / 100 for run, _ in members]
            given += [(run["strategy"], run["seed"]) for run, _ in members]
            result = {"epoch": 3, "test_accuracy": scores[0]} if len(members) == 1 else \
                {"epoch": 3, "population": len(members),
                 **{f"members/{i}/test_accuracy": s for i, s in enumerate(scores)}}
        searcher.on_trial_result(trial_id, result)
        searcher.on_trial_complete(trial_id, result)
        from sweeps.record.durable import trial_key

        unflat = {"epoch": 3, **({"members": {str(i): {k.split("/")[2]: v for k, v in result.items()
                                                         if k.startswith(f"members/{i}/")}
                                               for i in range(len(members))}} if len(members) > 1 else result)}
        records[trial_key(config)] = RunRecord(trial_id, config, (unflat,))
        if finish_after is not None and members[0][0]["stage"] == "seed" and len(given) >= finish_after:
            return given, records


@pytest.mark.parametrize("population", [1, 2])
def test_the_searcher_gives_seeds_only_to_the_pairs_still_in_contention(tmp_path, population):
    spec = parse_spec({**BASE, "strategies": list(TRUTH), "evaluation": SELECT,
                       "resources": {"population": population}, "storage": str(tmp_path)})
    p = plan(spec, SweepDir.of(str(tmp_path), spec.name))
    searcher = _searcher(p)
    searcher.rebuild({})
    given = _drive(searcher)
    got = {s: sorted(seed for name, seed in given if name == s) for s in TRUTH}
    want = decide({s: [_score(s, j) for j in range(9)] for s in TRUTH}, spec.evaluation.settings())
    assert want.stopped and want.selected == "adam"
    assert want.eliminated["fixed_sgd"] == 3  # out after the common first stage
    for s in TRUTH:  # every pair got exactly the seeds the procedure asked of it, 0..n-1
        assert got[s] == list(range(want.eliminated.get(s, want.r)))
    assert (tmp_path / "q" / "record" / "selection" / "synthetic.json").exists()


def test_a_searcher_rebuilt_mid_way_from_the_record_asks_for_the_same_seeds(tmp_path):
    spec = parse_spec({**BASE, "strategies": list(TRUTH), "evaluation": SELECT, "storage": str(tmp_path)})
    p = plan(spec, SweepDir.of(str(tmp_path), spec.name))
    whole = _searcher(p)
    whole.rebuild({})
    everything = _drive(whole)
    for cut in (4, 7, 9):  # inside the first stage, at the first screening, inside the second round
        q = plan(spec, SweepDir.of(str(tmp_path / f"cut{cut}"), spec.name))
        first = _searcher(q)
        first.rebuild({})
        before, records = _drive(first, finish_after=cut)
        again = _searcher(q)
        again.rebuild(records)
        after = _drive(again)
        assert sorted(before + after) == sorted(everything), cut
