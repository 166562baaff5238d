"""The report's own warnings (`reports.checks`) on hand-built results: optima at a search bound,
collapsed tune trials, a budget inside the sampler's random phase, and where the bounds come from."""

import json

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from results_fixture import SEARCH_SPACE, make_rows

from lrresults.store import write_table
from reports import checks
from reports.analysis import analyse
from reports.load import load_results
from reports.sections import warnings_section

W = "synthetic"
LR = {"low": 1e-3, "high": 1e-1, "scale": "log"}
MOMENTUM = {"low": 0.8, "high": 0.95, "scale": "linear"}


def _write(directory, rows) -> None:
    for name, table_rows in rows.items():
        write_table(name, table_rows, str(directory))


def _rows(**kw):
    return make_rows(workloads=(W,), strategies=("dals", "sgdr", "adamw"), seeds=(0, 1, 2), diverge=None, **kw)


def _tune(rows, strategy, lrs, scores) -> None:
    """Give ``strategy``'s tune trials these lrs (momentum 0.9) and final validation scores."""
    tune = [t for t in rows["trials"] if t["strategy"] == strategy and t["stage"] == "tune"]
    for t, lr, score in zip(tune, lrs, scores, strict=True):
        t["hparams"], t["val_accuracy_final"] = json.dumps({"lr": lr, "momentum": 0.9}), score


def test_an_edge_is_flagged_on_a_rising_trend_toward_it_not_on_where_the_best_landed(tmp_path):
    rows = make_rows(workloads=(W,), strategies=("dals", "sgdr", "adamw"), seeds=(0,), diverge=None, tune_trials=8)
    up = [10 ** (-3 + 2 * q) for q in (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97)]  # positions on the log range
    _tune(rows, "dals", up, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])  # rises all the way to the edge
    _tune(rows, "sgdr", up, [0.2, 0.3, 0.85, 0.8, 0.7, 0.6, 0.5, 0.9])  # best at 97%, the half falling
    _tune(rows, "adamw", up, [0.2, 0.5, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])  # interior optimum at the middle
    _write(tmp_path, rows)
    edges = checks.edge_optima(load_results([str(tmp_path)]), {(W, s): {"lr": LR, "momentum": MOMENTUM}
                                                               for s in ("dals", "sgdr", "adamw")})
    # By hand: dals's 6 trials at positions >= 1/2 are in rising order: tau 1, p = 1/6!; two searched
    # hparams (momentum is constant, so it never trends): each edge's level 0.05 / 4.
    assert list(edges[["strategy", "hparam", "bound", "n_near", "tau"]].itertuples(index=False, name=None)) == [
        ("dals", "lr", "upper", 6, 1.0)]
    r = edges.iloc[0]
    assert (r.p, r.level, r.value, r.position) == (pytest.approx(1 / 720), 0.0125, pytest.approx(up[-1]),
                                                    pytest.approx(0.97))
    assert not r.calibrated


def test_collapsed_tune_trials_are_listed_and_diverged_ones_counted_apart(tmp_path):
    rows = _rows()
    by_id = {t["trial_id"]: t for t in rows["trials"]}
    near = by_id[f"{W}-sgdr-tune-2"]
    near["val_accuracy_final"] = near["chance_accuracy"] + 0.01  # ended at chance
    for e in rows["epochs"]:  # adamw's trial 3: the loss at the end no lower than after epoch 1
        if e["trial_id"] == f"{W}-adamw-tune-3":
            e["train_loss"] = 2.0 + 0.01 * e["epoch"]
    gone = by_id[f"{W}-dals-tune-4"]
    gone["status"], gone["val_accuracy_final"] = "diverged", gone["chance_accuracy"]
    _write(tmp_path, rows)
    collapsed = checks.collapsed_trials(load_results([str(tmp_path)]))
    assert [(r.strategy, r.trial_index) for r in collapsed.itertuples()] == [("sgdr", 2), ("adamw", 3)]
    assert "against chance" in collapsed.iloc[0]["why"] and "training loss" in collapsed.iloc[1]["why"]


def test_a_tpe_budget_of_at_most_its_startup_trials_is_random_search():
    budget = pd.DataFrame([{"sampler": "tpe", "trials_planned": 5}, {"sampler": "tpe", "trials_planned": 10},
                           {"sampler": "tpe", "trials_planned": 11}, {"sampler": "random", "trials_planned": 5}])
    assert checks.random_phase(budget) == [("tpe", 5, 10), ("tpe", 10, 10)]


def test_bounds_come_from_the_budget_table_and_from_the_journal_for_older_results(tmp_path):
    recorded = tmp_path / "recorded"
    _write(recorded, _rows())
    res = load_results([str(recorded)])
    assert checks.search_bounds(res) == {(W, s): json.loads(SEARCH_SPACE) for s in ("adamw", "dals", "sgdr")}

    # Results written before `search_space` existed: only the journal knows dals's and sgdr's bounds.
    older = tmp_path / "older"
    rows = _rows()
    for b in rows["budget"]:
        b["search_space"] = SEARCH_SPACE if b["strategy"] == "adamw" else None
    _write(older, rows)
    storage = JournalStorage(JournalFileBackend(str(older / "optuna.journal")))
    for strategy, high in (("dals", 0.3), ("sgdr", 0.2), ("adamw", 0.5)):
        study = optuna.create_study(study_name=f"{W}/{strategy}", storage=storage, direction="maximize")
        trial = study.ask({"lr": FloatDistribution(1e-4, high, log=True), "momentum": FloatDistribution(0.5, 0.99),
                           "warmup": IntDistribution(0, 8)})
        study.tell(trial, 0.5)
    bounds = checks.search_bounds(load_results([str(older)]))
    journal = {"lr": {"low": 1e-4, "high": 0.3, "scale": "log"}, "momentum": {"low": 0.5, "high": 0.99,
               "scale": "linear"}, "warmup": {"low": 0.0, "high": 8.0, "scale": "int"}}
    assert bounds[(W, "dals")] == journal
    assert bounds[(W, "sgdr")]["lr"]["high"] == 0.2
    assert bounds[(W, "adamw")] == json.loads(SEARCH_SPACE)  # the recorded ranges win over the journal


def test_the_warnings_section_words_an_edge_trend_and_says_when_the_range_was_calibrated(tmp_path):
    rows = _rows(tune_trials=8)
    up = [10 ** (-3 + 2 * q) for q in (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.97)]
    _tune(rows, "dals", up, [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    for b in rows["budget"]:
        b["calibration"] = json.dumps({"low": 1e-3, "high": 0.1}) if b["strategy"] == "dals" else None
    _write(tmp_path, rows)
    data = analyse(load_results([str(tmp_path)]), margin=0.005, seed=0, thresholds=(0.6,))
    sec = warnings_section(str(tmp_path / "report"), data)
    edges = sec.csvs["edge_optima"]
    assert list(edges[["strategy", "hparam", "bound"]].itertuples(index=False, name=None)) == [("dals", "lr", "upper")]
    text = " ".join(str(getattr(b, "text", "")) + " ".join(map(str, getattr(b, "items", []))) for b in sec.blocks)
    assert ("synthetic/dals: the validation score still rises toward the upper bound of lr (the range "
            "calibrated by the pair's LR range test [0.001, 0.1]") in text
    assert "over the 6 trials in the half toward it, p = 0.0014 <= 0.0125 (5% per pair over its edges)" in text


def test_the_verdict_names_the_inconclusive_strategies_and_the_worse_ones_with_who_beat_them():
    from reports.sections import verdict_lines
    from reports.verdict import Leader, WorkloadVerdict

    v = WorkloadVerdict("synthetic", strategies=4, pairs=6,
                        leaders=(Leader("dals", 5, 0.9, 0.89, 0.91),),
                        worse={"fixed_sgd": ("dals", "adam")}, inconclusive=("adam", "lion"),
                        mdd={"adam": 0.02, "lion": 0.03})
    lines = verdict_lines(v, seeds_needed=40)
    assert lines[0].startswith("**Shown worse** (1 of 3;") and "fixed_sgd (below dals, adam)" in lines[0]
    inconclusive = next(line for line in lines if line.startswith("**Inconclusive**"))
    assert inconclusive.startswith("**Inconclusive**: 2 of 3 (adam, lion): neither shown worse")
    assert "about 2.50 pp (median" in inconclusive and "about 40 seeds" in inconclusive
