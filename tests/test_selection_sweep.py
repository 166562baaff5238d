"""The selection design end to end, through real `lrsweep` processes on a real local Ray.

The workload and strategies of tests/plugins/known_truth.py have expected test accuracies set by
construction (90, 88.5, 85 and 80 %), so the truth is known, not estimated: the procedure must select
oracle90 and eliminate the three others. A driver killed during the adaptive stage and resumed must
reach the same decisions and the same tables as an uninterrupted run.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_sweep_durable import IDS_AND_TIMES, finish, kill_group, lrsweep

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().parent / "plugins" / "known_truth.py"
TRUE_BEST = "oracle90"
SPEC = {"plugins": [str(PLUGIN)], "workloads": ["coin"], "strategies": ["oracle90", "oracle88", "oracle85", "oracle80"],
        "budget": {"trials": 1, "epochs": 1, "sampler": "random"},
        "evaluation": {"seeds": "auto", "indifference": 1.0, "confidence": 0.95, "first_seeds": 5, "batch": 5,
                       "max_seeds": 40},
        "resources": {"cpu": 1, "population": 5}}


def write_spec(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "name": name, "storage": str(tmp_path / "results")}))
    return path


def decision(directory: Path) -> dict | None:
    path = directory / "record" / "selection" / "coin.json"
    try:
        return json.loads(path.read_text())["decision"]
    except (FileNotFoundError, ValueError):  # not yet written, or mid-write
        return None


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> tuple[Path, str]:
    """The uninterrupted sweep's directory and what `lrsweep run` printed."""
    root = tmp_path_factory.mktemp("truth")
    code, out = finish("run", str(write_spec(root, "truth")), "--num-cpus", "2")
    assert code == 0, out
    return root / "results" / "truth", out


@pytest.fixture(scope="module")
def reference(reference_run) -> Path:
    return reference_run[0]


def test_progress_lines_count_the_first_stage_as_a_least_number(reference_run):
    # 4 pairs x 5 first-stage seeds; oracle90 and oracle88 go on to 10 seeds, past what the first
    # stage planned, so each seed line must say its planned count is a least one.
    seed_lines = [line for line in reference_run[1].splitlines() if line.startswith("[seed ")]
    assert len(seed_lines) == 6, reference_run[1]  # populations of 5: 4 first-stage trials, 2 more
    assert all(re.match(r"\[seed \d+/20\+\] coin/oracle\d\d .*\(pair (5|10)/5\+, best ", line)
               for line in seed_lines), seed_lines
    assert [int(re.match(r"\[seed (\d+)/", line)[1]) for line in seed_lines] == [5, 10, 15, 20, 25, 30]
    assert not any("ETA" in line for line in seed_lines[4:])  # past the first stage no time is promised
    etas = [line for line in reference_run[1].splitlines() if "ETA" in line]
    assert etas and all(", first stage ETA ~" in line for line in etas), etas  # it covers the known runs only


def test_the_true_best_is_selected_and_the_truly_worse_eliminated(reference):
    d = decision(reference)
    assert d["stopped"] and not d["capped"] and d["selected"] == TRUE_BEST
    assert set(d["eliminated"]) == {"oracle88", "oracle85", "oracle80"}
    # Seeds went where the verdict was open: the clear losers stopped at the first stage.
    seeds = pd.read_parquet(reference / "trials.parquet").query("stage == 'seed'").groupby("strategy").size()
    assert seeds["oracle80"] == seeds["oracle85"] == 5
    for name, n in d["eliminated"].items():
        assert seeds[name] == n
    assert seeds[TRUE_BEST] == d["r"] and d["r"] > 5  # oracle88, 1.5 pp behind, needed a second round
    # The common seeds: every strategy's seed runs are numbered 0..n-1.
    trials = pd.read_parquet(reference / "trials.parquet").query("stage == 'seed'")
    for name, group in trials.groupby("strategy"):
        assert sorted(group.seed) == list(range(seeds[name]))
    budget = pd.read_parquet(reference / "budget.parquet").set_index("strategy")
    assert budget.complete.all() and (budget.seed_design == "selection").all()
    assert budget.seeds_asked.to_dict() == seeds.to_dict()
    assert (budget.seeds_planned == 5).all()


def test_the_report_states_the_selection_and_its_guarantee(reference):
    code, out = finish("report", str(reference))
    assert code == 0, out
    text = (reference / "report" / "report.md").read_text()
    assert f"**Selected: {TRUE_BEST}** (the only one left)" in text
    assert ("Guarantee: if the best of these 4 strategies, as tuned, leads every other by at least 1 pp, it is the "
            "one selected with probability at least 95% (Kim & Nelson's KN); when several lie within 1 pp of the "
            "best, the selected one is not guaranteed to be within 1 pp of it (in expected final test "
            "accuracy)") in text
    assert "oracle88 at 10 (behind oracle90)" in text and "oracle80 at 5" in text
    verdict = pd.read_csv(reference / "report" / "csv" / "verdict.csv")
    assert verdict.set_index("strategy").verdict.to_dict() == {
        "oracle90": "selected", "oracle88": "eliminated", "oracle85": "eliminated", "oracle80": "eliminated"}


def test_a_kill_during_the_adaptive_stage_resumes_to_the_same_decisions_and_tables(tmp_path, reference):
    spec = write_spec(tmp_path, "killed")
    directory = tmp_path / "results" / "killed"
    # Each run record's write is held open, so the kill lands after the first screening and before the end.
    proc = lrsweep("run", str(spec), "--num-cpus", "2", env={"LRSWEEP_PAUSE_AT": "run", "LRSWEEP_PAUSE_SECONDS": "2"})
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        d = decision(directory)
        if d is not None and d["rounds"] and not d["stopped"]:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read()
    kill_group(proc)
    assert not (directory / "budget.parquet").exists() and not decision(directory)["stopped"]  # killed mid-way
    code, out = finish("resume", str(directory), "--num-cpus", "2")
    assert code == 0, out
    assert decision(directory) == decision(reference)
    for name in ("trials", "epochs", "budget"):
        got, want = (pd.read_parquet(d / f"{name}.parquet") for d in (directory, reference))
        keys = [c for c in ("strategy", "stage", "seed", "trial_index", "epoch") if c in want.columns]
        drop = [c for c in (*IDS_AND_TIMES, "sweep_id") if c in want.columns]
        pd.testing.assert_frame_equal(got.drop(columns=drop).sort_values(keys).reset_index(drop=True),
                                      want.drop(columns=drop).sort_values(keys).reset_index(drop=True))
