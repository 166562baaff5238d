"""Tune's own result loggers and periodic snapshots are off only while lrsweep fits its experiment (the
sweep's results are the record)."""

import logging
import os

from sweeps.engine.ray_setup import tune_defaults_for_fit

NAME = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"


def test_the_loggers_are_off_inside_and_tunes_defaults_come_back(monkeypatch, caplog):
    monkeypatch.delenv(NAME, raising=False)
    analysis = logging.getLogger("ray.tune.analysis.experiment_analysis")
    with tune_defaults_for_fit():
        assert os.environ[NAME] == "1"
        with caplog.at_level(logging.WARNING, logger=analysis.name):
            analysis.warning("Failed to fetch metrics for 2 trial(s):\n- a: FileNotFoundError(...)")
            analysis.warning("something else")
    assert NAME not in os.environ
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    analysis.warning("Failed to fetch metrics for 1 trial(s)")  # outside: Tune's warning again
    assert caplog.records[-1].getMessage().startswith("Failed to fetch metrics")


def test_a_users_setting_wins(monkeypatch):
    monkeypatch.setenv(NAME, "0")
    with tune_defaults_for_fit():
        assert os.environ[NAME] == "0"
    assert os.environ[NAME] == "0"


def test_no_periodic_experiment_snapshot_inside_and_tunes_default_after(monkeypatch):
    # A snapshot rewrites every trial's state: its cost grew with the trials done (issue 35).
    monkeypatch.delenv("TUNE_GLOBAL_CHECKPOINT_S", raising=False)
    with tune_defaults_for_fit():
        assert float(os.environ["TUNE_GLOBAL_CHECKPOINT_S"]) == float("inf")
    assert "TUNE_GLOBAL_CHECKPOINT_S" not in os.environ
