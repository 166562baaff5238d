"""The multiplexing searcher without a Ray cluster: real Optuna studies in a journal file, the Tune
Searcher API called as Tune calls it (suggest / on_trial_result / on_trial_complete), and a searcher rebuilt
from the durable record."""

import pytest
from optuna.trial import TrialState

import search_spaces as ss
from sweeps.record.results import dedupe_epochs
from sweeps.search.searcher import PairPlan, PairSearcher, best_trial
from sweeps.spec import EarlyStopping

SPACE = {"lr": ss.Range(1e-3, 1e-1, "log"), "momentum": ss.Range(0.8, 0.95, "linear")}
CANONICAL = {"lr": 0.01, "momentum": 0.9}


def plans(n: int = 3) -> list[PairPlan]:
    return [PairPlan(f"w/s{i}", {"workload": "w", "strategy": f"s{i}", "stage": "tune", "seed": 0}, SPACE,
                     CANONICAL, seed_base={"workload": "w", "strategy": f"s{i}", "stage": "seed", "seed": 0})
            for i in range(n)]


def searcher(tmp_path, trials=3, sampler="tpe") -> PairSearcher:
    return PairSearcher(plans(), trials, sampler, 0, str(tmp_path / "optuna.journal"))


def finish(s: PairSearcher, trial_id: str, acc: float) -> None:
    s.on_trial_result(trial_id, {"epoch": 1, "val_accuracy": acc / 2})
    s.on_trial_result(trial_id, {"epoch": 2, "val_accuracy": acc})
    s.on_trial_complete(trial_id, {"epoch": 2, "val_accuracy": acc})


@pytest.mark.parametrize("sampler", ["tpe", "qmc", "random"])
def test_round_robin_gives_every_pair_exactly_its_budget_then_finishes(tmp_path, sampler):
    s = searcher(tmp_path, trials=3, sampler=sampler)
    configs = [s.suggest(f"t{i}") for i in range(9)]
    assert [c["sweep"]["pair"] for c in configs] == ["w/s0", "w/s1", "w/s2"] * 3
    assert [c["sweep"]["trial_index"] for c in configs] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert s.suggest("t9") == "FINISHED"
    for c in configs[:3]:  # trial 0 of every study is the canonical configuration
        assert c["run"]["hparams"] == CANONICAL and c["sweep"]["canonical"]
    for c in configs[3:]:
        assert all(SPACE[k].contains(v) for k, v in c["run"]["hparams"].items())
        assert not c["sweep"]["canonical"] and c["run"]["stage"] == "tune"
    for i in range(9):
        finish(s, f"t{i}", 0.5 + i / 100)
    for key in s.order:
        study = s.study(key)
        assert len(study.trials) == 3 and all(t.state == TrialState.COMPLETE for t in study.trials)


def test_errored_trial_is_failed_in_its_study_and_not_replaced(tmp_path):
    s = searcher(tmp_path, trials=1)
    ids = [f"t{i}" for i in range(3)]
    for i in ids:
        s.suggest(i)
    s.on_trial_complete("t0", None, error=True)
    finish(s, "t1", 0.7)
    finish(s, "t2", 0.8)
    assert s.suggest("t3") == "FINISHED"  # the budget counts trials given, errored ones included
    assert s.study("w/s0").trials[0].state == TrialState.FAIL


def test_best_selection_ranks_by_the_best_epoch(tmp_path):
    s = PairSearcher(plans(1), 1, "tpe", 0, str(tmp_path / "j"), selection="best")
    s.suggest("a")
    s.on_trial_result("a", {"epoch": 1, "val_accuracy": 0.9})
    s.on_trial_result("a", {"epoch": 2, "val_accuracy": 0.6})
    s.on_trial_complete("a", {"epoch": 2, "val_accuracy": 0.6})
    assert s.study("w/s0").trials[0].value == pytest.approx(0.9)


def _recorded(configs: dict, accs: dict) -> dict:
    """The durable record's finished trials (sweeps.record.durable.RunRecord) for trial id -> accuracy."""
    from sweeps.record.durable import RunRecord, trial_key

    runs = [RunRecord(t, configs[t], ({"epoch": 1, "val_accuracy": acc / 2}, {"epoch": 2, "val_accuracy": acc}))
            for t, acc in accs.items()]
    return {trial_key(r.config): r for r in runs}


@pytest.mark.parametrize("sampler", ["random", "qmc"])
def test_a_rebuilt_searcher_gives_every_index_the_point_an_uninterrupted_one_gives(tmp_path, sampler):
    whole = PairSearcher(plans(), 4, sampler, 3, str(tmp_path / "a.journal"))
    reference = [whole.suggest(f"t{i}") for i in range(12)]
    s = PairSearcher(plans(), 4, sampler, 3, str(tmp_path / "b.journal"))
    configs = {f"t{i}": s.suggest(f"t{i}") for i in range(7)}  # then the driver dies
    rebuilt = PairSearcher(plans(), 4, sampler, 3, str(tmp_path / "b.journal"))
    rebuilt.rebuild(_recorded(configs, {"t0": 0.5, "t1": 0.6, "t3": 0.7}))  # t2, t4.. were running
    again = [rebuilt.suggest(f"u{i}") for i in range(9)]
    assert rebuilt.suggest("x") == "FINISHED"
    point = {(c["sweep"]["pair"], c["sweep"]["trial_index"]): c["run"]["hparams"] for c in reference}
    given = [(c["sweep"]["pair"], c["sweep"]["trial_index"]) for c in again]
    assert sorted(given) == sorted(set(point) - {("w/s0", 0), ("w/s1", 0), ("w/s0", 1)})
    for c in again:
        assert c["run"]["hparams"] == point[(c["sweep"]["pair"], c["sweep"]["trial_index"])]
    study = rebuilt.study("w/s0")
    assert sorted(t.value for t in study.trials if t.state == TrialState.COMPLETE) == [0.5, 0.7]


def test_a_rebuild_without_the_journal_replays_the_finished_runs_and_reasks_the_running_point(tmp_path):
    s = searcher(tmp_path, trials=2)
    configs = {f"t{i}": s.suggest(f"t{i}") for i in range(4)}
    (tmp_path / "optuna.journal").unlink()
    rebuilt = searcher(tmp_path, trials=2)
    rebuilt.rebuild(_recorded(configs, {"t0": 0.5}))
    assert [t.value for t in rebuilt.study("w/s0").trials] == [0.5]
    given = [rebuilt.suggest(f"u{i}") for i in range(5)]
    assert [(g["sweep"]["pair"], g["sweep"]["trial_index"]) for g in given] == [
        ("w/s0", 1), ("w/s1", 0), ("w/s2", 0), ("w/s1", 1), ("w/s2", 1)]
    assert given[1]["run"]["hparams"] == CANONICAL and given[1]["sweep"]["canonical"]


def test_a_rebuild_reproposes_a_running_tpe_point_from_the_journal(tmp_path):
    s = searcher(tmp_path, trials=2)
    configs = {f"t{i}": s.suggest(f"t{i}") for i in range(4)}  # t3: w/s0 trial 1, running at the kill
    rebuilt = searcher(tmp_path, trials=2)
    rebuilt.rebuild(_recorded(configs, {"t0": 0.5, "t1": 0.5, "t2": 0.5}))
    again = rebuilt.suggest("u0")
    assert (again["sweep"]["pair"], again["sweep"]["trial_index"]) == ("w/s0", 1)
    assert again["run"]["hparams"] == configs["t3"]["run"]["hparams"]
    assert [t.state for t in rebuilt.study("w/s0").trials].count(TrialState.FAIL) == 1


def test_a_rebuild_queues_the_seed_runs_left(tmp_path):
    s = PairSearcher(plans(1), 1, "random", 0, str(tmp_path / "j"), seeds=2)
    configs = {"t0": s.suggest("t0")}
    s.on_trial_complete("t0", {"epoch": 2, "val_accuracy": 0.7})
    configs["r0"] = s.suggest("r0")
    rebuilt = PairSearcher(plans(1), 1, "random", 0, str(tmp_path / "j"), seeds=2)
    rebuilt.rebuild(_recorded(configs, {"t0": 0.7, "r0": 0.7}))
    second = rebuilt.suggest("r1")
    assert second["run"]["seed"] == 1 and second["run"]["hparams"] == CANONICAL
    assert rebuilt.suggest("x") == "FINISHED"


def test_best_trial_takes_the_highest_score_ties_to_the_lower_index_and_skips_unscored():
    assert best_trial([(0.5, 0, "a"), (0.7, 1, "b"), (0.7, 2, "c"), (None, 3, "d")]) == "b"
    assert best_trial([(0.7, 2, "c"), (0.7, 0, "a")]) == "a"  # the canonical trial wins a tie
    assert best_trial([(None, 0, "a")]) is None and best_trial([]) is None


def test_seed_runs_follow_each_pair_as_soon_as_its_last_tune_trial_ends(tmp_path):
    s = PairSearcher(plans(2), 2, "random", 0, str(tmp_path / "j"), seeds=3)
    tune = {f"t{i}": s.suggest(f"t{i}") for i in range(4)}  # s0, s1, s0, s1
    assert s.suggest("x") is None, "nothing to give while every seed run waits on a running trial"
    finish(s, "t0", 0.6)
    finish(s, "t1", 0.9)
    assert s.suggest("x") is None, "a pair's seed runs wait for all of its tune trials"
    finish(s, "t2", 0.8)  # w/s0 is done tuning: its trial #1 (0.8) beats the canonical #0 (0.6)
    runs = [s.suggest(f"r{i}") for i in range(3)]
    assert s.suggest("x") is None  # w/s1 is still tuning
    assert [r["run"]["seed"] for r in runs] == [0, 1, 2]
    for r in runs:
        assert r["run"]["stage"] == "seed" and r["run"]["strategy"] == "s0"
        assert r["run"]["hparams"] == tune["t2"]["run"]["hparams"]
        assert r["sweep"] == {"pair": "w/s0", "trial_index": r["run"]["seed"], "canonical": False,
                              "selected_trial": "t2", "selected_index": 1}
    s.on_trial_complete("t3", None, error=True)  # an errored trial is never selected
    runs = [s.suggest(f"q{i}") for i in range(3)]
    assert {r["sweep"]["selected_trial"] for r in runs} == {"t1"} and runs[0]["sweep"]["canonical"]
    assert s.suggest("x") == "FINISHED"
    assert {r["sweep"]["pair"] for r in runs} == {"w/s1"}


def test_a_pair_whose_tune_trials_all_errored_gets_no_seed_runs(tmp_path):
    s = PairSearcher(plans(1), 1, "random", 0, str(tmp_path / "j"), seeds=2)
    s.suggest("t0")
    s.on_trial_complete("t0", None, error=True)
    assert s.suggest("x") == "FINISHED" and not s.pending  # no seed run was ever queued


def test_dedupe_epochs_keeps_the_last_attempt():
    rows = [{"epoch": 1, "a": 1}, {"epoch": 2, "a": 1}, {"epoch": 1, "a": 2}, {"epoch": 2, "a": 2},
            {"epoch": 3, "a": 2}, {"epoch": 3, "a": 3}]
    assert [(r["epoch"], r["a"]) for r in dedupe_epochs(rows)] == [(1, 2), (2, 2), (3, 3)]


def test_per_pair_early_stopping_builds_one_rule_per_pair_and_never_stops_a_seed_run():
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from sweeps.engine.schedulers import PerPairScheduler

    sched = PerPairScheduler(EarlyStopping("asha", "val_accuracy", 1, 2), {"w/a": 4, "w/b": 4})
    assert set(sched.per_pair) == {"w/a", "w/b"}
    assert sched.per_pair["w/a"] is not sched.per_pair["w/b"]
    seed_run = SimpleNamespace(config={"run": {"stage": "seed"}, "sweep": {"pair": "w/a"}})
    assert sched._rule(seed_run) is sched.no_stopping
    assert sched.on_trial_result(None, seed_run, {"test_accuracy": 0.1}) == TrialScheduler.CONTINUE


def test_a_population_asks_its_points_at_once_and_tells_each_member(tmp_path):
    import dataclasses

    pop = [dataclasses.replace(p, population=3) for p in plans(1)]
    s = PairSearcher(pop, 4, "tpe", 0, str(tmp_path / "optuna.journal"), seeds=5)
    first, second = s.suggest("a"), s.suggest("b")
    assert s.suggest("c") is None  # budget given out; seed runs wait on the tune trials
    assert [m["trial_index"] for m in first["sweep"]["members"]] == [0, 1, 2]
    assert first["run"]["members"][0]["hparams"] == CANONICAL and first["sweep"]["members"][0]["canonical"]
    assert len({tuple(m["hparams"].values()) for m in first["run"]["members"]}) == 3  # TPE's liar: 3 points
    assert "members" not in second["run"] and second["sweep"]["trial_index"] == 3  # the last one alone
    # Tune hands searchers the flattened result: members/<i>/<metric>; member 2 froze (diverged) earlier.
    flat = {"epoch": 1, "population": 3, "members/0/val_accuracy": 0.5, "members/1/val_accuracy": 0.9,
            "members/2": None}
    s.on_trial_result("a", flat)
    s.on_trial_complete("a", flat)
    finish(s, "b", 0.6)
    study = s.study("w/s0")
    assert [t.value for t in study.trials] == [0.5, 0.9, None, 0.6]
    assert study.trials[2].state == TrialState.FAIL
    seeds = [s.suggest("s1"), s.suggest("s2")]
    assert s.suggest("s3") == "FINISHED"
    assert [[m["seed"] for m in c["run"]["members"]] for c in seeds] == [[0, 1, 2], [3, 4]]
    assert all(m["selected_trial"] == "a-1" for c in seeds for m in c["sweep"]["members"])


def test_member_metrics_reads_nested_flattened_and_single_results():
    from vocab.members import member_metrics

    nested = {"epoch": 1, "population": 2, "members": {"0": {"val_accuracy": 0.1}, "1": None}}
    assert member_metrics(nested, 2) == [{"val_accuracy": 0.1}, None]
    flat = {"epoch": 1, "population": 2, "members/0/val_accuracy": 0.1, "members/0/status": "ok", "members/1": None}
    assert member_metrics(flat, 2) == [{"val_accuracy": 0.1, "status": "ok"}, None]
    assert member_metrics({"val_accuracy": 0.3}, 1) == [{"val_accuracy": 0.3}]
    assert member_metrics(None, 2) == [None, None]
