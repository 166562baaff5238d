"""The durable record: a sweep SIGKILLed (its whole process group) at seeded random moments and
resumed after each ends with the tables of an uninterrupted sweep; damaged state files; one driver
per sweep; the outcomes of resume. Real `lrsweep` processes on a real local Ray."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "adam"],
        "budget": {"trials": 3, "epochs": 4, "sampler_seed": 0}, "evaluation": {"seeds": 2},
        "resources": {"cpu": 1}}
IDS_AND_TIMES = ["trial_id", "population_id", "wall_seconds", "step_seconds", "error_log", "seconds", "versions",
                 "device"]
KILL_SEED = os.environ.get("LRSWEEP_KILL_SEED", "0")
"""Seeds the kill moments and the damaged files; tests/soak.py sets it per repetition to spread them."""
RUNS = len(SPEC["strategies"]) * (SPEC["budget"]["trials"] + SPEC["evaluation"]["seeds"])
"""Tune trials and seed runs of the sweep, each one run record."""
KILLS = 3
"""At most this many kills per sweep (each lands after 1-3 more recorded runs of ``RUNS``)."""
KILL_SAMPLERS = os.environ.get("LRSWEEP_KILL_SAMPLERS", "random").split(",")
"""The samplers the kill test runs with: random in the suite, which a kill storm tests for the record's
and the processes' sake; a rebuilt QMC or TPE searcher asks point for point what an uninterrupted one
asks (tests/test_sweep_searcher.py), and tests/soak.py runs the storm with ``random,qmc``."""


def lrsweep(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", *args], cwd=cwd, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def write_spec(tmp_path: Path, name: str, sampler: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    spec = {**SPEC, "name": name, "storage": str(tmp_path / "results")}
    spec["budget"] = {**SPEC["budget"], "sampler": sampler}
    path.write_text(yaml.safe_dump(spec))
    return path


def finish(*args: str, cwd: Path = ROOT) -> tuple[int, str]:
    proc = lrsweep(*args, cwd=cwd)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def tables(directory: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("trials", "epochs", "budget"):
        df = pd.read_parquet(directory / f"{name}.parquet")
        df = df.drop(columns=[c for c in IDS_AND_TIMES if c in df.columns])
        keys = [c for c in ("workload", "strategy", "stage", "trial_index", "seed", "epoch") if c in df.columns]
        out[name] = df.sort_values(keys).reset_index(drop=True)
    return out


def assert_same_experiment(directory: Path, reference: Path) -> None:
    got, want = tables(directory), tables(reference)
    for name in want:
        pd.testing.assert_frame_equal(got[name].drop(columns=["sweep_id"]), want[name].drop(columns=["sweep_id"]))


def assert_exact_budget(directory: Path) -> None:
    trials = pd.read_parquet(directory / "trials.parquet")
    assert trials.trial_id.is_unique
    assert not trials.duplicated(["strategy", "stage", "trial_index"]).any()
    assert (trials[trials.stage == "tune"].groupby("strategy").size() == SPEC["budget"]["trials"]).all()
    assert (trials[trials.stage == "seed"].groupby("strategy").size() == SPEC["evaluation"]["seeds"]).all()
    epochs = pd.read_parquet(directory / "epochs.parquet")
    assert not epochs.duplicated(["trial_id", "epoch"]).any() and len(epochs) == trials.epochs_run.sum()
    assert pd.read_parquet(directory / "budget.parquet").complete.all()


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
    time.sleep(1)  # Ray's processes of that group are gone with it


def recorded(directory: Path) -> int:
    return len(list((directory / "record" / "runs").glob("*/*/*.json")))


class References:
    """Uninterrupted sweeps, one per sampler, each run the first time a test asks for it. Under
    ``LRSWEEP_REFERENCES`` (tests/soak.py sets it) they are kept and reused by later repetitions."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __getitem__(self, sampler: str) -> Path:
        directory = self.root / "results" / f"ref-{sampler}"
        if not (directory / "budget.parquet").exists():
            shutil.rmtree(directory, ignore_errors=True)
            code, out = finish("run", str(write_spec(self.root, f"ref-{sampler}", sampler)), "--num-cpus", "2")
            assert code == 0, out
        return directory


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    kept = os.environ.get("LRSWEEP_REFERENCES")
    return References(Path(kept) if kept else tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("sampler", KILL_SAMPLERS)
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_tables(tmp_path, references, sampler):
    rng = random.Random(f"kill-{sampler}-{KILL_SEED}")
    directory = tmp_path / "results" / "killed"
    spec = write_spec(tmp_path, "killed", sampler)
    # Each kill waits for a number of recorded trials, then lands at a random moment; the pause
    # hook holds checkpoint, run record and table writes open so some kills land inside them.
    pauses = ["checkpoint", "run", "tables", "checkpoint,run"]
    command = ["run", str(spec), "--num-cpus", "2"]
    kills = 0
    for _attempt in range(KILLS):
        env = {"LRSWEEP_PAUSE_AT": rng.choice(pauses), "LRSWEEP_PAUSE_SECONDS": "0.7"}
        proc = lrsweep(*command, env=env)
        # Always before the last run is recorded, so every kill lands while the sweep is alive.
        target = min(recorded(directory) + rng.randint(1, 3), RUNS - 1)
        deadline = time.time() + 300
        while proc.poll() is None and recorded(directory) < target and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 2.0))
        if proc.poll() is not None:
            out = proc.stdout.read()
            assert proc.returncode in (0, 2), out
            if proc.returncode == 2:
                assert "nothing to resume; tables are complete" in out
            break
        kill_group(proc)
        kills += 1
        command = ["resume", str(directory), "--num-cpus", "2"]
    else:
        code, out = finish(*command)
        assert code in (0, 2), out
    if not (directory / "budget.parquet").exists():
        code, out = finish("resume", str(directory), "--num-cpus", "2")
        assert code == 0, out
    assert kills >= 2
    assert_exact_budget(directory)
    assert_same_experiment(directory, references[sampler])


def test_resume_outcomes_are_clear_and_change_nothing(tmp_path, references):
    done = references["random"]
    before = sorted(p.name for p in done.iterdir())
    code, out = finish("resume", str(done))
    assert code == 2 and "nothing to resume; tables are complete" in out and "Traceback" not in out
    assert sorted(p.name for p in done.iterdir()) == before
    code, out = finish("resume", str(tmp_path))
    assert code == 2 and "is not a sweep directory" in out and "Traceback" not in out

    copy = tmp_path / "copy"
    shutil.copytree(done, copy)
    (copy / "budget.parquet").unlink()
    run = next((copy / "record" / "runs").glob("*/*/tune-1.json"))
    run.write_text(run.read_text()[:40])  # damaged from outside
    code, out = finish("resume", str(copy))
    assert code == 2 and "Traceback" not in out
    assert "tune-1.json cannot be read" in out and "delete it" in out
    assert not (copy / "budget.parquet").exists()

    spec = copy / "spec.yaml"
    spec.write_text("name: [unclosed\n")
    code, out = finish("resume", str(copy))
    assert code == 2 and "spec.yaml cannot be read" in out and "Traceback" not in out


def test_damaged_state_files_of_a_killed_sweep_resume_or_refuse_clearly(tmp_path, references):
    """Truncate each state file of a killed sweep at a random offset (then delete it), one at a
    time, on a copy: resume completes with the uninterrupted tables, or refuses with exit 2."""
    spec = write_spec(tmp_path, "hurt", "random")
    directory = tmp_path / "results" / "hurt"
    proc = lrsweep("run", str(spec), "--num-cpus", "2")
    deadline = time.time() + 300
    while proc.poll() is None and recorded(directory) < 5 and time.time() < deadline:
        time.sleep(0.1)
    kill_group(proc)
    assert not (directory / "budget.parquet").exists()
    rng = random.Random(f"damage-{KILL_SEED}")
    candidates = [p for p in directory.rglob("*") if p.is_file() and p.suffix != ".log"
                  and "experiment" not in p.parts]
    candidates += [p for p in (directory / "experiment").glob("*.json")] + \
        [p for p in (directory / "experiment").glob("*.pkl")]
    chosen = sorted(rng.sample(candidates, min(3, len(candidates))))
    for i, victim in enumerate(chosen):
        for how in ("truncate", "delete"):
            copy = tmp_path / f"copy{i}{how}"
            shutil.copytree(directory, copy)
            target = copy / victim.relative_to(directory)
            if how == "truncate":
                data = target.read_bytes()
                target.write_bytes(data[: rng.randrange(max(1, len(data)))])
            else:
                target.unlink()
            code, out = finish("resume", str(copy), "--num-cpus", "2")
            assert "Traceback" not in out, (victim, how, out[-3000:])
            if code == 2:
                assert "cannot be read" in out or "no longer validates" in out or "not a sweep" in out, out
                continue
            assert code == 0, (victim, how, out[-3000:])
            assert_exact_budget(copy)
            assert_same_experiment(copy, references["random"])


def test_a_second_driver_is_refused_and_a_stale_lease_is_taken_over(tmp_path, references):
    spec = write_spec(tmp_path, "leased", "random")
    directory = tmp_path / "results" / "leased"
    # The first driver is held inside the write of its first run record, so it is alive, holding the
    # lease, however long the second driver takes to start (a tiny sweep can otherwise finish first).
    first = lrsweep("run", str(spec), "--num-cpus", "2",
                    env={"LRSWEEP_PAUSE_AT": "run", "LRSWEEP_PAUSE_SECONDS": "600"})
    deadline = time.time() + 300
    while first.poll() is None and not any((directory / "record").rglob("*.tmp")) and time.time() < deadline:
        time.sleep(0.1)
    assert first.poll() is None, first.stdout.read()
    code, out = finish("resume", str(directory), "--num-cpus", "2")
    assert code == 2 and "is being driven by another lrsweep" in out and f"pid {first.pid}" in out
    assert "Traceback" not in out
    kill_group(first)
    holder = json.loads((directory / "lease").read_text())
    assert holder["pid"] == first.pid
    # From another working directory: the resume reads the record only, never Tune's staging files.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out = finish("resume", str(directory), "--num-cpus", "2", cwd=elsewhere)
    assert code == 0, out
    assert "taking over the stale lease" in out and f"pid {first.pid}" in out
    assert_exact_budget(directory)
    assert_same_experiment(directory, references["random"])


def test_a_reproduction_killed_mid_way_resumes_to_the_same_tables(tmp_path):
    """`lrsweep reproduce` SIGKILLed twice, each time after more seed runs are recorded, and resumed
    with `lrsweep resume`: its tables equal an uninterrupted reproduction's, and status reads it."""
    def repro_spec(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "name": name, "workloads": [{"synthetic": {"n_train": 256}}], "epochs": 4,
            "strategies": ["fixed_sgd", "adam"], "seeds": {"first": 42, "more": 2},
            "storage": str(tmp_path / "results"), "max_concurrent": 2}))
        return path

    code, out = finish("reproduce", str(repro_spec("whole")), "--num-cpus", "2")
    assert code == 0, out
    directory = tmp_path / "results" / "killed"
    command = ["reproduce", str(repro_spec("killed")), "--num-cpus", "2"]
    for target in (1, 3):
        proc = lrsweep(*command, env={"LRSWEEP_PAUSE_AT": "checkpoint", "LRSWEEP_PAUSE_SECONDS": "0.5"})
        deadline = time.time() + 300
        while proc.poll() is None and recorded(directory) < target and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read()
        kill_group(proc)
        command = ["resume", str(directory), "--num-cpus", "2"]
    assert not (directory / "trials.parquet").exists()
    code, out = finish("status", str(directory))
    assert code == 0 and "Traceback" not in out, out
    code, out = finish(*command)
    assert code == 0, out
    assert "resuming from the record" in out
    assert_same_experiment(directory, tmp_path / "results" / "whole")
