"""Several independent tuning studies per pair (``budget.studies``): the spec, the plan, each study's own
split and seeds, the searcher that runs them (real Optuna studies, no Ray), and the report's unit of
replication. The Ray sweep itself is run in tests/test_studies_sweep.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sweeps.engine.experiment import plan
from sweeps.record.durable import RunRecord, trial_key
from sweeps.record.storage import SweepDir
from sweeps.search.searcher import PairSearcher
from sweeps.spec import SpecError, parse_spec
from trainables.workload import HOLDOUT_SEED, holdout
from vocab.members import report, trial_members

ROOT = Path(__file__).resolve().parent.parent
BASE = {"name": "t", "workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "adam"],
        "budget": {"trials": 3, "epochs": 2, "sampler": "random", "sampler_seed": 7},
        "evaluation": {"seeds": 2}, "resources": {"population": 4}}


def spec_of(**budget):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["budget"].update(budget)
    return parse_spec(raw)


def test_one_study_is_the_default_and_keeps_every_hash():
    plain, one, three = spec_of(), spec_of(studies=1), spec_of(studies=3)
    assert plain.budget.studies == 1 and "studies" not in plain.budget.to_dict()
    assert (one.hash, one.protocol_hash(one.workloads[0])) == (plain.hash, plain.protocol_hash(plain.workloads[0]))
    assert three.hash != plain.hash and three.protocol_hash(three.workloads[0]) != plain.protocol_hash(
        plain.workloads[0])
    assert three.budget.to_dict()["studies"] == 3 and three.budget.total_trials == 9
    assert parse_spec(yaml.safe_load(three.to_yaml())) == three  # the normalised spec reads back equal


@pytest.mark.parametrize(("budget", "evaluation", "field", "words"), [
    ({"studies": 0}, {}, "budget.studies", "allowed: an integer >= 1"),
    ({"studies": 101}, {}, "budget.studies", "allowed: an integer from 1 to 100"),
    ({"studies": "3"}, {}, "budget.studies", "allowed: an integer >= 1"),
    ({"studies": 3, "sampler_seed": 999_998}, {}, "budget.sampler_seed", "sampler_seed + studies - 1 at most"),
    ({"studies": 3}, {"seeds": "auto"}, "evaluation.seeds", "allowed with several tuning studies: an integer"),
])
def test_bad_studies_are_refused_naming_the_field(budget, evaluation, field, words):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["budget"].update(budget)
    raw["evaluation"].update(evaluation)
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert any(p.startswith(f"{field}:") and words in p for p in caught.value.problems), caught.value.problems


def test_the_cli_refuses_a_bad_studies_field_with_exit_2(tmp_path):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["budget"]["studies"] = 0
    raw["storage"] = str(tmp_path / "results")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "run", str(tmp_path / "bad.yaml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "budget.studies: got 0; allowed: an integer >= 1" in done.stderr
    assert not (tmp_path / "results").exists()  # nothing half-written


def test_study_j_has_its_own_sampler_seed_tune_seed_split_and_seeds(tmp_path):
    spec = spec_of(studies=3)
    p = plan(spec, SweepDir(str(tmp_path / "t")))
    adam = [pp for pp in p.pairs if pp.base["strategy"] == "adam"]
    assert [pp.key for pp in adam] == ["synthetic/adam#study0", "synthetic/adam#study1", "synthetic/adam#study2"]
    assert [pp.sampler_seed for pp in adam] == [7, 8, 9]  # the same for every strategy: common random numbers
    assert [pp.sampler_seed for pp in p.pairs if pp.base["strategy"] == "fixed_sgd"] == [7, 8, 9]
    assert [pp.base["seed"] for pp in adam] == [1_000_007, 1_000_008, 1_000_009]
    assert [pp.base.get("study", 0) for pp in adam] == [0, 1, 2]
    assert "study" not in adam[0].base  # study 0's configs are a one-study sweep's
    assert [pp.seed_offset for pp in adam] == [0, 1000, 2000]
    assert {pp.group for pp in adam} == {"synthetic/adam"}
    assert p.planned["tune"]["synthetic/adam#study1"] == 3
    one = plan(spec_of(), SweepDir(str(tmp_path / "one")))
    assert [pp.key for pp in one.pairs] == ["synthetic/fixed_sgd", "synthetic/adam"]
    assert one.pairs[1].base == adam[0].base and one.pairs[1].group is None


def test_each_study_holds_out_its_own_validation_rows():
    rows = [holdout(256, 51, HOLDOUT_SEED + j) for j in range(3)]
    vals = [set(val.tolist()) for _, val in rows]
    assert all(len(v) == 51 for v in vals) and vals[0] != vals[1] != vals[2]
    for keep, val in rows:  # a partition of the training rows
        assert sorted(keep.tolist() + val.tolist()) == list(range(256))
    keep0, val0 = holdout(256, 51)
    assert set(val0.tolist()) == vals[0]  # study 0 is the split every sweep had


def _drive(s: PairSearcher, scores: dict[str, list[float]]) -> dict[str, dict]:
    """Give out every tune trial, then finish them (pair key -> the validation accuracy of each trial index);
    return their configs by trial id."""
    configs = {}
    while isinstance(c := s.suggest(f"t{len(configs)}"), dict):  # None: the seed runs wait on these
        configs[f"t{len(configs)}"] = c
    for trial_id, c in configs.items():
        s.on_trial_result(trial_id, _result(c, scores))
        s.on_trial_complete(trial_id, _result(c, scores))
    return configs


def _result(config: dict, scores: dict[str, list[float]]) -> dict:
    """A population's last report: each member's validation accuracy from ``scores``."""
    return report(1, [{"epoch": 1, "val_accuracy": scores[m["pair"]][m["trial_index"]]}
                      for _, m in trial_members(config)])


def test_a_pairs_studies_train_together_in_populations_and_are_rebuilt_alike(tmp_path):
    spec = spec_of(studies=3)
    p = plan(spec, SweepDir(str(tmp_path / "t")))
    scores = {pp.key: [0.5, 0.7, 0.6] if pp.study != 1 else [0.5, 0.6, 0.9] for pp in p.pairs}
    s = PairSearcher(p.pairs, 3, "random", 7, str(tmp_path / "optuna.journal"), seeds=2)
    tune = _drive(s, scores)
    # 2 strategies x 3 studies x 3 trials in populations of 4: study j's trial t beside study j+1's.
    slots = [[(m["pair"].split("#study")[1], m["trial_index"]) for _, m in trial_members(c)] for c in tune.values()]
    assert slots[:2] == [[("0", 0), ("1", 0), ("2", 0), ("0", 1)], [("0", 0), ("1", 0), ("2", 0), ("0", 1)]]
    assert [len(x) for x in slots] == [4, 4, 4, 4, 1, 1]  # each pair's 9 slots: 4, 4 and 1
    runs = [r for c in tune.values() for r, _ in trial_members(c)]
    assert sorted({(r["strategy"], r.get("study", 0), r["seed"]) for r in runs}) == sorted(
        {(st, j, 1_000_007 + j) for st in ("adam", "fixed_sgd") for j in range(3)})  # each study its tune seed
    seed_trials = [s.suggest(f"s{i}") for i in range(5)]
    assert seed_trials[-1] == "FINISHED" and all(isinstance(c, dict) for c in seed_trials[:4])
    adam = [c for c in seed_trials[:4] if c["run"]["members"][0]["strategy"] == "adam"]
    members = [m for c in adam for m in c["sweep"]["members"]]
    seed_runs = [r for c in adam for r in c["run"]["members"]]
    assert [len(c["sweep"]["members"]) for c in adam] == [4, 2]  # 3 studies x 2 seeds in populations of 4
    assert [(m["study"], r["seed"]) for m, r in zip(members, seed_runs, strict=True)] == \
        [(0, 0), (0, 1), (1, 1000), (1, 1001), (2, 2000), (2, 2001)]
    assert [m["selected_index"] for m in members] == [1, 1, 2, 2, 1, 1]  # each study its own best trial
    assert all("study" not in r for r in seed_runs)  # a seed run's split does not depend on its study
    # A driver that died after the tune stage: the rebuilt searcher queues the same seed trials.
    finished = {trial_key(c): RunRecord(trial_id, c, (_result(c, scores),)) for trial_id, c in tune.items()}
    again = PairSearcher(p.pairs, 3, "random", 7, str(tmp_path / "optuna.journal"), seeds=2)
    again.rebuild(finished)
    rebuilt = [again.suggest(f"r{i}") for i in range(4)]
    assert [trial_key(c) for c in rebuilt] == [trial_key(c) for c in seed_trials[:4]]


def test_a_driver_killed_mid_tuning_gives_out_exactly_the_chunks_left(tmp_path):
    spec = spec_of(studies=3)
    p = plan(spec, SweepDir(str(tmp_path / "t")))
    scores = {pp.key: [0.5, 0.7, 0.6] for pp in p.pairs}
    whole = PairSearcher(p.pairs, 3, "random", 7, str(tmp_path / "whole.journal"), seeds=2)
    reference = [whole.suggest(f"t{i}") for i in range(6)]
    first = PairSearcher(p.pairs, 3, "random", 7, str(tmp_path / "optuna.journal"), seeds=2)
    given = [first.suggest(f"t{i}") for i in range(3)]  # then the driver dies; only the first trial finished
    finished = {trial_key(given[0]): RunRecord("t0", given[0], (_result(given[0], scores),))}
    again = PairSearcher(p.pairs, 3, "random", 7, str(tmp_path / "optuna.journal"), seeds=2)
    again.rebuild(finished)
    left = []
    while isinstance(c := again.suggest(f"r{len(left)}"), dict):
        left.append(c)
    assert sorted(trial_key(c) for c in left) == sorted(trial_key(c) for c in reference[1:])


def test_the_report_compares_strategies_over_studies(tmp_path):
    from reports.load import Results

    rows = []
    for strategy, base in (("a", 0.80), ("b", 0.70)):
        for study in range(3):
            for s in range(2):
                rows.append({"workload": "w", "strategy": strategy, "stage": "seed", "status": "ok", "study": study,
                             "seed": 1000 * study + s, "test_accuracy_final": base + 0.01 * study + 0.002 * s,
                             "test_accuracy_best": base + 0.05, "trial_id": f"{strategy}{study}{s}"})
    res = Results([], pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame())
    assert res.studies
    rep = res.replicates().sort_values(["strategy", "study"])
    assert list(rep["seed"]) == [0, 1, 2, 0, 1, 2] and list(rep["n_seeds"]) == [2] * 6
    assert rep["test_accuracy_final"].tolist() == pytest.approx([0.801, 0.811, 0.821, 0.701, 0.711, 0.721])
    one = Results([], pd.DataFrame([r | {"study": 0} for r in rows if r["study"] == 0]), pd.DataFrame(),
                  pd.DataFrame())
    assert not one.studies and len(one.replicates()) == 4  # one study: the seed runs themselves


def test_plan_says_what_a_guarantee_over_studies_would_cost():
    from lrstats.selection import kn_constants
    from sweeps.commands.estimate import study_guarantee_lines

    spec = spec_of(studies=3)
    assert study_guarantee_lines(spec_of(), None) == []  # one study: nothing to say
    (alone,) = study_guarantee_lines(spec, None)
    assert "pass --from DIR, a sweep with 2+ studies" in alone
    rng = np.random.default_rng(0)
    # A pilot whose studies move each strategy's score by about 1 pp and its seeds by about 0.5 pp.
    pilot = {"synthetic": {s: {j: list(base + rng.normal(0, 1.0) + rng.normal(0, 0.5, 2)) for j in range(3)}
                           for s, base in (("fixed_sgd", 80.0), ("adam", 81.0))}}
    (line,) = study_guarantee_lines(spec, pilot)
    h2 = kn_constants(2, 3, 0.95)[1]
    assert f"h^2 = {h2:.1f}" in line and "against this spec's 6 studies" in line
    studies = float(line.split("would take about ")[1].split(" studies")[0].replace(",", ""))
    assert studies > 6  # a 0.5 pp zone over ~1 pp of tuning noise needs far more than the spec's studies


def test_tune_trials_of_several_studies_train_together_exactly_as_alone():
    from trainables.population import PopulationError, run_population, run_trial

    base = {"workload": "synthetic", "workload_options": {"n_train": 512}, "strategy": "adam", "epochs": 2,
            "stage": "tune"}
    cfgs = [{**base, "seed": 1_000_000 + j, "hparams": {"lr": 0.001 * (j + 1)}, **({"study": j} if j else {})}
            for j in range(3)]
    together = run_population(cfgs)
    keys = ("val_accuracy", "train_loss", "train_accuracy", "chance_accuracy")
    for cfg, history in zip(cfgs, together, strict=True):
        alone = run_trial(cfg)
        assert [[h[k] for k in keys] for h in history] == [[a[k] for k in keys] for a in alone]
    assert len({h[0]["chance_accuracy"] for h in together}) > 1  # each scored on its own study's rows
    with pytest.raises(PopulationError, match="seed stage must share 'study'"):
        run_population([{**c, "stage": "seed"} for c in cfgs])
