"""`lrsweep plan`: the runs a spec trains and its wall-time estimate, from a calibration on this machine
or from an earlier sweep's recorded times; through the CLI as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from results_fixture import write_fixture

ROOT = Path(__file__).resolve().parent.parent
PAPER_WORKLOADS = ("synthetic", "cifar10", "rte", "trec6", "imdb")
PAPER_18 = ("fixed_sgd", "cosine_sgd", "sgdr", "adam", "adamw", "adabound", "lars", "discriminative", "radam", "lion",
            "lookahead_adamw", "sam", "grokfast", "stlr_discriminative", "sam_discriminative", "dals", "dals_fast",
            "dals_acc")


def plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "plan", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_a_fixed_spec_is_calibrated_on_this_machine_and_its_runs_counted(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({"name": "tiny", "workloads": [{"synthetic": {"n_train": 256}}],
                                    "strategies": ["adam", "fixed_sgd"], "budget": {"trials": 3, "epochs": 2},
                                    "evaluation": {"seeds": 2}, "resources": {"population": 2}}))
    done = plan(str(spec), "--num-cpus", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "calibrated synthetic/adam:" in out and "calibrated synthetic/fixed_sgd:" in out
    assert "runs: 6 tune runs, then 4 seed runs" in out
    assert "wall time on 2 parallel trial slot(s), costs calibrated on this machine:" in out


def test_the_paper_spec_is_estimated_from_an_earlier_sweeps_times(tmp_path):
    write_fixture(str(tmp_path / "earlier"), workloads=PAPER_WORKLOADS, strategies=PAPER_18, seeds=(0, 1, 2))
    done = plan("sweeps/paper.yaml", "--from", str(tmp_path / "earlier"), "--gpus", "4")
    assert done.returncode == 0, done.stderr
    assert "calibrating" not in done.stdout
    for workload in PAPER_WORKLOADS:
        assert f"\n{workload}: 18 strategies x " in done.stdout
    assert "parallel trial slot(s), costs measured by the sweep in" in done.stdout


def test_a_selection_spec_gets_its_expected_seed_runs_from_a_pilot(tmp_path):
    write_fixture(str(tmp_path / "pilot"), workloads=("synthetic",), strategies=("dals", "sgdr", "adamw", "fixed_sgd"),
                  seeds=(0, 1, 2, 3))
    spec = tmp_path / "select.yaml"
    spec.write_text(yaml.safe_dump({"name": "select", "workloads": ["synthetic"],
                                    "strategies": ["dals", "sgdr", "adamw", "fixed_sgd"],
                                    "budget": {"trials": 4, "epochs": 8},
                                    "evaluation": {"seeds": "auto", "first_seeds": 5, "batch": 5, "max_seeds": 40}}))
    done = plan(str(spec), "--from", str(tmp_path / "pilot"), "--num-cpus", "2")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("runs:"))
    assert line.startswith("runs: 16 tune runs, then 20 to 160 seed runs (about ")
    expected = float(line.split("about ")[1].split()[0])
    assert 20 <= expected <= 160
    assert "expected" in done.stdout.splitlines()[-1]


def test_a_directory_without_results_is_refused_with_exit_2(tmp_path):
    done = plan("sweeps/quick.yaml", "--from", str(tmp_path / "nothing"))
    assert done.returncode == 2
    assert "no trials table there" in done.stderr
