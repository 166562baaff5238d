"""Resume: SIGKILL the driver of a running sweep, `lrsweep resume DIR`, and every trial appears
exactly once in the results (no finished trial re-run, no planned trial missing)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from patience import STALL_S, run_while_progressing, sweep_progress, tune_done, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SPEC = {
    "name": "resume",
    "workloads": [{"synthetic": {"n_train": 512}}],
    "strategies": ["fixed_sgd", "adam", "dals"],
    "budget": {"trials": 3, "epochs": 2, "sampler": "tpe", "sampler_seed": 0},
    "evaluation": {"seeds": 2},
}


def lrsweep(*args: str, log: Path) -> subprocess.Popen:
    """``lrsweep ARGS`` in its own session, its output into ``log`` (a pipe nobody reads could fill up)."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", *args], cwd=ROOT, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT, text=True)


@pytest.mark.timeout(1800)  # slow under load is no failure: the waits fail on a stall (patience.STALL_S)
@pytest.mark.parametrize("population", [1, 2])
def test_sigkill_then_resume_runs_every_trial_exactly_once(tmp_path, population):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**SPEC, "storage": str(tmp_path / "results"),
                                         "resources": {"cpu": 1, "population": population}}))
    directory = tmp_path / "results" / "resume"

    log = tmp_path / "run.log"
    driver = lrsweep("run", str(spec_path), "--num-cpus", "2", log=log)
    try:
        wait_for(lambda: tune_done(directory) >= 3 or driver.poll() is not None, STALL_S,
                 what="3 finished tune trials", progress=lambda: sweep_progress(directory))
        assert driver.poll() is None, f"the sweep ended before it could be killed:\n{log.read_text()}"
        driver.send_signal(signal.SIGKILL)  # the driver only; its Ray processes share its fate
        driver.wait(timeout=30)
    finally:
        time.sleep(2)
        try:  # whatever is left of the session this test started (its own process group)
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed_at = tune_done(directory)
    assert not (directory / "trials.parquet").exists(), "killed before the sweep finished"
    # Tune's own checkpoints are a cache: the resume reads lrsweep's record only.
    shutil.rmtree(directory / "experiment")

    resumed = run_while_progressing([sys.executable, "-m", "sweeps.commands.cli", "resume", str(directory),
                                     "--num-cpus", "2"],
                                    lambda: sweep_progress(directory), tmp_path / "resume.log", cwd=ROOT)
    out = resumed.stdout
    assert resumed.returncode == 0, out
    assert "resuming from the record" in out
    # Tune's own result loggers are off (the record is the sweep's), and so is its warning about them.
    assert "Failed to fetch metrics" not in out
    assert not [p for p in (directory / "experiment").rglob("*")
                if p.name.startswith("events.out.tfevents") or p.name in ("result.json", "progress.csv")]

    trials = pd.read_parquet(directory / "trials.parquet")
    tune = trials[trials.stage == "tune"]
    assert len(tune) == 9 and tune.trial_id.is_unique
    assert not tune.duplicated(["strategy", "trial_index"]).any()
    assert (tune.groupby("strategy").size() == 3).all()
    assert (tune[tune.trial_index == 0].canonical).all()
    seed = trials[trials.stage == "seed"]
    assert len(seed) == 6 and not seed.duplicated(["strategy", "seed"]).any()
    epochs = pd.read_parquet(directory / "epochs.parquet")
    assert not epochs.duplicated(["trial_id", "epoch"]).any() and len(epochs) == trials.epochs_run.sum()
    predictions = pd.read_parquet(directory / "predictions.parquet").set_index("trial_id")  # one per seed run
    assert sorted(predictions.index) == sorted(seed.trial_id)
    accuracy = seed.set_index("trial_id").test_accuracy_final[predictions.index]
    assert (predictions.n_correct / predictions.n_rows == accuracy).all()
    budget = pd.read_parquet(directory / "budget.parquet")
    assert budget.complete.all() and (budget.trials_run == 3).all()
    assert tune.groupby("population_id").size().max() == population
    # Trials finished before the kill were not trained again: each has one run record, written once.
    assert len(list((directory / "record" / "runs").glob("*/*/*.json"))) == len(trials.population_id.unique())
    assert killed_at >= 3
