"""Driver costs that grew with a sweep's trials, gone: one Tune checkpoint per trial without Tune's
snapshot per checkpoint (``ray_setup.LatestCheckpointOnly``; a real sweep of the tiny benchmark workload on a
local Ray), and a FIFO choice among the live trials only (``schedulers.LiveFIFOScheduler``)."""

from pathlib import Path

import pytest
import torch

from sweeps.commands.launch import run_sweep
from sweeps.spec import parse_spec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
@pytest.mark.parametrize("keep", [False, True])
def test_each_trial_keeps_only_its_last_checkpoint(tmp_path, keep):
    spec = parse_spec({
        "name": "kept", "plugins": [str(ROOT / "benchmarks" / "tiny_workload.py")], "workloads": ["tiny"],
        "strategies": ["adam"], "budget": {"trials": 2, "epochs": 4, "sampler": "random"},
        "evaluation": {"seeds": 1}, "resources": {"cpu": 1, "gpu": 0, "population": 1},
        "keep_checkpoints": keep, "storage": str(tmp_path),
    })
    assert run_sweep(spec, num_cpus=2, out=lambda line: None) == 0
    trials = [d for d in (tmp_path / "kept" / "experiment").iterdir() if d.is_dir()]
    assert len(trials) == 3
    for trial in trials:
        # checkpoint_every is 1 at 4 epochs: four checkpoints were saved, the last one is kept
        kept = sorted(trial.glob("checkpoint_*"))
        assert [p.name for p in kept] == ["checkpoint_000003"], kept
        state = torch.load(kept[0] / "trial.pt", weights_only=False)
        assert state["epoch"] == 4 and bool(state.get("finished")) != keep  # the full state only when kept
    assert not list((tmp_path / "kept" / "record" / "checkpoints").rglob("*.pt"))


class _Trial:
    """The two things a scheduler's choice reads of a trial: its identity and its status."""

    def __init__(self, status: str) -> None:
        self.status = status


class _Live:
    def __init__(self, trials) -> None:
        self.trials = trials

    def get_live_trials(self):
        return set(self.trials)  # a set, as Tune's: no order to rely on


def test_the_live_fifo_scheduler_starts_the_first_added_pending_trial_then_paused_ones():
    from ray.tune.experiment import Trial

    from sweeps.engine.schedulers import LiveFIFOScheduler

    scheduler = LiveFIFOScheduler()
    first, second, third = _Trial(Trial.RUNNING), _Trial(Trial.PENDING), _Trial(Trial.PENDING)
    for t in (first, second, third):
        scheduler.on_trial_add(None, t)
    controller = _Live([third, second, first])
    assert scheduler.choose_trial_to_run(controller) is second
    second.status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is third
    third.status, first.status = Trial.RUNNING, Trial.PAUSED
    assert scheduler.choose_trial_to_run(controller) is first
    first.status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is None
    scheduler.on_trial_complete(None, first, {})
    assert first not in scheduler._added  # finished trials are forgotten: its memory stays bounded
