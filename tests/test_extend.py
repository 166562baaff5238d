"""`lrsweep extend` end to end: a finished 2-strategy sweep extended by a plugin strategy, by more seeds
and by a second workload, with real `lrsweep` processes on a real local Ray. The old rows stay value for
value, the new pair equals the same pair run alone under the same protocol, a kill during an extension
resumes to the uninterrupted tables, and a change of protocol is refused with nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.test_plugins import _blocks
from tests.test_sweep_durable import finish, kill_group, lrsweep, tables

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BASE = {"name": "base", "workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "adam"],
        "budget": {"trials": 2, "epochs": 2, "sampler_seed": 0}, "evaluation": {"seeds": 2},
        "resources": {"cpu": 1}}
OLD = ["fixed_sgd", "adam"]
KEYS = ["workload", "strategy", "stage", "trial_index", "seed", "epoch", "group"]


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def _read(directory: Path, name: str) -> pd.DataFrame:
    df = pd.read_parquet(directory / f"{name}.parquet")
    return df.sort_values([k for k in KEYS if k in df.columns]).reset_index(drop=True)


def _old_rows_equal(extended: Path, base: Path, budget_too: bool = True, protocol_too: bool = True) -> None:
    """Every row of the base sweep's tables comes out of the extended sweep value for value (but for
    the protocol hash when ``protocol_too`` is false: more seeds are a new protocol for every row)."""
    for name in ("trials", "epochs", "layers", *(("budget",) if budget_too else ())):
        got, want = _read(extended, name), _read(base, name)
        mine = got[got.strategy.isin(OLD) & got.workload.isin(set(want.workload))]
        if "seed" in mine.columns:
            mine = mine[(mine.stage == "tune") | (mine.seed < BASE["evaluation"]["seeds"])]
        if not protocol_too:
            mine, want = (df.drop(columns=["protocol_hash"], errors="ignore") for df in (mine, want))
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), want)


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _report(directory: Path) -> str:
    code, out = finish("report", str(directory), "--out", str(directory / "report"))
    assert code == 0, out[-3000:]
    return (directory / "report" / "report.md").read_text()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("extend")
    (root / "plain_sgd.py").write_text(_blocks("## Plugins", "python")[0])
    code, out = finish("run", str(_write(root / "base.yaml", {**BASE, "storage": str(root / "results")})),
                       "--num-cpus", "2")
    assert code == 0, out[-3000:]
    return root


@pytest.fixture(scope="module")
def by_plugin(work):
    """The base sweep extended by the plain_sgd plugin strategy (``extend --strategies --plugin``)."""
    directory = work / "by_plugin"
    shutil.copytree(work / "results" / "base", directory)
    t0 = time.time()
    code, out = finish("extend", str(directory), "--strategies", "plain_sgd", "--plugin",
                       str(work / "plain_sgd.py"), "--num-cpus", "2")
    assert code == 0, out[-3000:]
    print(f"extend by one strategy: {time.time() - t0:.0f} s")
    return directory


def test_an_added_plugin_strategy_trains_only_itself_and_keeps_every_old_row(work, by_plugin):
    _old_rows_equal(by_plugin, work / "results" / "base")
    budget = _read(by_plugin, "budget")
    assert sorted(budget.strategy) == ["adam", "fixed_sgd", "plain_sgd"] and budget.complete.all()
    assert budget.trials_planned.nunique() == budget.seeds_planned.nunique() == budget.epochs.nunique() == 1
    assert budget.protocol_hash.nunique() == 1
    space = json.loads(budget[budget.strategy == "plain_sgd"].search_space.iloc[0])
    assert set(space) == {"lr"} and space["lr"]["low"] < 0.05 < space["lr"]["high"]  # around its canonical lr
    trials = _read(by_plugin, "trials")
    canonical = trials[(trials.strategy == "plain_sgd") & (trials.stage == "tune") & (trials.trial_index == 0)]
    assert canonical.canonical.all() and json.loads(canonical.hparams.iloc[0])["lr"] == 0.05
    assert trials.protocol_hash.nunique() == 1 and trials.spec_hash.nunique() == 2
    old_hash = trials[trials.strategy == "adam"].spec_hash.iloc[0]
    assert (trials[trials.strategy == "plain_sgd"].spec_hash != old_hash).all()
    spec = yaml.safe_load((by_plugin / "spec.yaml").read_text())
    assert spec["strategies"] == ["fixed_sgd", "adam", "plain_sgd"] and spec["plugins"] == ["plain_sgd"]
    assert (by_plugin / "plugins" / "plain_sgd.py").exists()
    report = _report(by_plugin)
    assert "Warning: mixed results" not in report and report.count("## Verdict") == 1
    assert "plain_sgd added on " in report and "under the same protocol" in report


def test_the_added_pair_equals_the_same_pair_run_alone_and_equal_protocols_report_together(work, by_plugin):
    alone = {**BASE, "name": "alone", "strategies": ["plain_sgd"], "storage": str(work / "results")}
    code, out = finish("run", str(_write(work / "alone.yaml", alone)), "--plugin", str(work / "plain_sgd.py"),
                       "--num-cpus", "2")
    assert code == 0, out[-3000:]
    solo, mine = tables(work / "results" / "alone"), tables(by_plugin)
    for name in solo:
        want = solo[name].drop(columns=["sweep_id", "spec_hash"], errors="ignore")
        got = mine[name][mine[name].strategy == "plain_sgd"].drop(columns=["sweep_id", "spec_hash"], errors="ignore")
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want)
    # Two sweeps, different spec hashes, one protocol: one comparison, no warning.
    code, out = finish("report", str(work / "results" / "base"), str(work / "results" / "alone"),
                       "--out", str(work / "together"))
    assert code == 0, out[-3000:]
    assert "Warning: mixed results" not in (work / "together" / "report.md").read_text()


def test_a_sweep_of_other_epochs_is_still_refused(work):
    other = {**BASE, "name": "other", "strategies": ["plain_sgd"], "storage": str(work / "results"),
             "budget": {**BASE["budget"], "epochs": 1}, "evaluation": {"seeds": 2}}
    code, out = finish("run", str(_write(work / "other.yaml", other)), "--plugin", str(work / "plain_sgd.py"),
                       "--num-cpus", "2")
    assert code == 0, out[-3000:]
    code, out = finish("report", str(work / "results" / "base"), str(work / "results" / "other"),
                       "--out", str(work / "refused"))
    assert code == 2 and "different protocol" in out, out[-3000:]


def test_more_seeds_train_only_the_new_seeds(work):
    directory = work / "more_seeds"
    shutil.copytree(work / "results" / "base", directory)
    code, out = finish("extend", str(directory), "--seeds", "3", "--num-cpus", "2")
    assert code == 0, out[-3000:]
    _old_rows_equal(directory, work / "results" / "base", budget_too=False, protocol_too=False)
    trials, budget = _read(directory, "trials"), _read(directory, "budget")
    assert trials.protocol_hash.nunique() == 1 and set(budget.protocol_hash) == set(trials.protocol_hash)
    seeds = trials[trials.stage == "seed"]
    assert sorted(seeds.groupby("strategy").seed.apply(sorted).tolist()) == [[0, 1, 2], [0, 1, 2]]
    assert (budget.seeds_planned == 3).all() and (budget.seeds_run == 3).all() and budget.complete.all()
    assert "Warning: mixed results" not in _report(directory)


def test_a_second_workload_joins_the_comparison(work):
    directory = work / "second_workload"
    shutil.copytree(work / "results" / "base", directory)
    code, out = finish("extend", str(directory), "--workloads", "coin", "--plugin",
                       str(ROOT / "tests" / "plugins" / "known_truth.py"), "--num-cpus", "2")
    assert code == 0, out[-3000:]
    _old_rows_equal(directory, work / "results" / "base")
    budget = _read(directory, "budget")
    assert sorted(zip(budget.workload, budget.strategy, strict=True)) == [("coin", "adam"), ("coin", "fixed_sgd"),
                                                            ("synthetic", "adam"), ("synthetic", "fixed_sgd")]
    assert budget.complete.all() and budget.trials_planned.nunique() == 1
    assert budget.protocol_hash.str[:8].nunique() == 1 and budget.protocol_hash.nunique() == 2  # one per workload
    assert "Warning: mixed results" not in _report(directory)


def test_a_kill_during_an_extension_then_resume_equals_the_uninterrupted_extension(work, by_plugin):
    directory = work / "killed"
    shutil.copytree(work / "results" / "base", directory)
    proc = lrsweep("extend", str(directory), "--strategies", "plain_sgd", "--plugin", str(work / "plain_sgd.py"),
                   "--num-cpus", "2")
    deadline = time.time() + 300
    while not list((directory / "record" / "runs").glob("**/plain_sgd/*.json")):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.2)
    kill_group(proc)
    assert not (directory / "budget.parquet").exists()
    code, out = finish("resume", str(directory), "--num-cpus", "2")
    assert code == 0, out[-3000:]
    got, want = tables(directory), tables(by_plugin)
    for name in want:
        pd.testing.assert_frame_equal(got[name].drop(columns=["sweep_id"]), want[name].drop(columns=["sweep_id"]))


@pytest.mark.parametrize("change, field", [
    ({"budget": {**BASE["budget"], "epochs": 3}}, "budget.epochs: the sweep has 2"),
    ({"budget": {**BASE["budget"], "sampler_seed": 1}}, "budget.sampler_seed: the sweep has 0"),
    ({"evaluation": {"seeds": 1}}, "evaluation.seeds: the sweep has 2"),
    ({"workloads": [{"synthetic": {"n_train": 512}}]}, "workloads.synthetic: the sweep has"),
])
def test_an_extension_that_changes_the_protocol_exits_2_naming_the_field_and_changes_nothing(work, change, field):
    directory = work / "results" / "base"
    before = _digest(directory)
    spec = {**BASE, **change, "strategies": [*OLD, "cosine_sgd"]}
    code, out = finish("extend", str(directory), "--spec", str(_write(work / "changed.yaml", spec)))
    assert code == 2 and field in out, out[-3000:]
    assert _digest(directory) == before
    assert "nothing was changed" in out


def test_a_strategy_added_to_a_stopped_selection_reopens_it_with_the_first_stage_seeds():
    """The selection design's decisions are a pure function of the finished seed runs: a driver of the
    extended sweep replays the old runs, and once the added pair has tuned, the procedure asks for its
    first-stage seeds (the same seed numbers as the others') before deciding again over all of them."""
    from lrstats.selection import SelectionSettings
    from sweeps.designs.rounds import Rounds

    settings = SelectionSettings(0.5, 0.95, 3, 9, 3)
    old = {"w/a": ("w", "a"), "w/b": ("w", "b")}
    scores = {"w/a": [90.0, 91.0, 90.5], "w/b": [70.0, 71.0, 70.5]}  # b is 20 pp behind: stopped at once

    def replayed(pairs):
        rounds = Rounds(settings, pairs)
        for key, values in scores.items():
            for seed, value in enumerate(values):
                rounds.scored(key, seed, value)
        for key in old:
            rounds.tuned(key, chosen=True)
        return rounds

    before = replayed(old)
    assert before.ask("w") == [] and before.stopped() and before.workloads["w"].decision.selected == "a"
    after = replayed({**old, "w/c": ("w", "c")})
    assert after.ask("w") == [] and not after.stopped()  # c still tuning: the procedure waits for it
    after.tuned("w/c", chosen=True)
    asked = after.ask("w")
    assert ("w/c", range(0, 3)) in asked and not after.stopped()
    for seed, value in enumerate([90.2, 90.9, 90.4]):
        after.scored("w/c", seed, value)
    after.ask("w")
    assert "c" in after.workloads["w"].decision.contenders  # within the zone of a: decided over all three
