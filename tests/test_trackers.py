"""Every registered tracker answers the one protocol (``sweeps.trackers.base.Tracker``), each tested
alone with its real library on a tiny hand-made run, writing local files only; and the one registry
is what the spec and ``--track`` check a tracker's name against, with the same error. No Ray."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sweeps.observers.tracking import TAG_COLUMNS, with_tracking
from sweeps.spec import SpecError, parse_spec
from sweeps.trackers import TRACKER_CLASSES, TRACKERS, SweepInfo, TrackedRun, Tracker

ROOT = Path(__file__).resolve().parent.parent
BASE = {"name": "tracked", "workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd"],
        "budget": {"trials": 2, "epochs": 3}, "evaluation": {"seeds": 2}}
LOCAL = {"wandb": {"mode": "offline"}}
"""Options that keep a tracker on local files (every other tracker's defaults already do)."""


def run(index: int, status: str = "ok") -> TrackedRun:
    tags = {c: "-" for c in TAG_COLUMNS}
    tags.update(pair="synthetic/fixed_sgd", stage="tune", workload="synthetic", strategy="fixed_sgd", seed="0",
                spec_hash="abc123", trial_index=str(index), status=status)
    epochs = ((1, {"val_accuracy": 0.25, "train_loss": 2.0, "layers/lr/group0": 0.1}),
              (2, {"val_accuracy": 0.5, "train_loss": 1.5, "layers/lr/group0": 0.05}))
    return TrackedRun(f"synthetic/fixed_sgd/tune-{index}", f"synthetic/fixed_sgd tune {index}",
                      {"lr": 0.1, "betas": [0.9, 0.99], "epochs_planned": 2}, tags, epochs)


@pytest.fixture
def local_env(monkeypatch, tmp_path):
    """Every library's home and cache under ``tmp_path``; W&B offline, MLflow without retries."""
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "home" / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return tmp_path


@pytest.mark.parametrize("name", list(TRACKER_CLASSES))
def test_each_tracker_answers_the_protocol_and_logs_a_run_once_across_sessions(name, local_env):
    sweep_dir = local_env / "sweep"
    sweep_dir.mkdir()
    sweep = SweepInfo("tracked", "abc123", str(sweep_dir), str(sweep_dir))
    report = local_env / "report"
    report.mkdir()
    (report / "report.md").write_text("# r\n\n## Verdict\n\nnone wins.\n")
    (report / "report.html").write_text("<p>none wins.</p>")
    options = LOCAL.get(name, {})

    first = TRACKER_CLASSES[name](sweep, options)
    assert isinstance(first, Tracker) and first.info is TRACKERS[name] and isinstance(first.where, str)
    assert first.log(run(0)) is True
    assert first.log(run(0)) is False  # asked again in the same session
    assert first.log(run(1, status="error")) is True
    first.log_report(str(report), "## Verdict\n\nnone wins.")
    first.close()

    again = TRACKER_CLASSES[name](sweep, options)  # a later session: its store says what it holds
    assert [again.log(run(0)), again.log(run(1)), again.log(run(2))] == [False, False, True]
    again.close()
    assert any(sweep_dir.iterdir())  # its default store is local, in the sweep's folder


def test_mlflow_takes_a_run_over_its_batch_limits_whole(local_env):
    """More than 100 params and 1000 metric values: ``MlflowClient.log_batch`` splits them itself."""
    from mlflow import MlflowClient

    sweep = SweepInfo("tracked", "abc123", str(local_env), str(local_env))
    big = run(0)
    params = {f"p{i}": i for i in range(150)}
    epochs = tuple((e, {f"layers/lr/group{i}": e + i / 1000 for i in range(600)}) for e in (1, 2))
    tracker = TRACKER_CLASSES["mlflow"](sweep, {})
    assert tracker.log(TrackedRun(big.key, big.name, params, big.tags, epochs))
    tracker.close()
    client = MlflowClient(f"sqlite:///{local_env / 'mlflow.db'}")
    logged = client.get_run(tracker.runs[big.key].run_id)
    assert logged.info.status == "FINISHED" and logged.data.params == {k: str(v) for k, v in params.items()}
    history = client.get_metric_history(logged.info.run_id, "layers/lr/group599")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.599), (2, 2.599)]
    assert len(logged.data.metrics) == 600


def test_the_trackers_import_nothing_of_the_project_above_vocab():
    """So the spec's validation (below ``sweeps.observers.tracking``) reads the registry without an import circle."""
    from test_import_layers import imports, modules

    found = modules()
    for name, path in found.items():
        if name.startswith("sweeps.trackers"):
            assert all(m.startswith(("sweeps.trackers", "vocab")) for m in imports(name, path, set(found))), name


def test_the_registry_matches_the_extras_and_imports_no_tracker_library():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(TRACKERS) <= set(extras), "each tracker is an optional extra of its name (TrackerInfo.install)"
    assert all(info.installed() for info in TRACKERS.values())  # the dev extra installs every one
    code = ("import sys, sweeps.spec, sweeps.trackers; "
            "print(sorted({'mlflow', 'wandb', 'tensorboard', 'torch'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


def test_an_unknown_tracker_gets_the_same_error_in_the_spec_and_in_track():
    allowed = ", ".join(TRACKERS)
    with pytest.raises(SpecError) as in_spec:
        parse_spec({**BASE, "tracking": {"comet": True, "wandb": {"mode": "cloud"}}})
    with pytest.raises(SpecError) as in_track:
        with_tracking(parse_spec(BASE), ["comet", "wandb={mode: cloud}"])
    assert in_spec.value.problems == [f"tracking.comet: unknown tracker; allowed: {allowed}",
                                      "tracking.wandb.mode: got 'cloud'; allowed: online, offline, disabled"]
    assert in_track.value.problems == [p.replace("tracking.", "--track.", 1) for p in in_spec.value.problems]
    assert in_track.value.source == "--track"
