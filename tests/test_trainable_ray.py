"""The Ray Tune function trainable on a real local Ray: reports equal run_trial's, checkpoints resume."""

import pytest

from trainables import run_trial, trainable
from trainables.ray_trainable import load_checkpoint
from vocab.contracts import TIMINGS

pytestmark = pytest.mark.slow

CONFIG = {
    "workload": "synthetic", "workload_options": {"n_train": 256}, "strategy": "dals", "seed": 5, "epochs": 3,
}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    # "local": a Ray of its own, never a `ray start` cluster that /tmp/ray/ray_current_cluster still names
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def flat(metrics):
    """``metrics`` as Tune's metrics dataframe holds them: a nested dict flattened (``hparams/lr``)."""
    out = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    out.update({f"{k}/{name}": x for k, v in metrics.items() if isinstance(v, dict) for name, x in v.items()})
    return out


def strip(metrics):
    keys = set(flat(run_trial({**CONFIG, "epochs": 1})[0])) - set(TIMINGS)
    return {k: metrics[k] for k in keys}


def test_a_tune_trial_reports_run_trial_metrics_and_checkpoints(ray_local, tmp_path):
    from ray import tune

    tuner = tune.Tuner(
        trainable,
        param_space=CONFIG,
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="one", verbose=0),
    )
    result = tuner.fit()[0]
    assert result.error is None
    reported = result.metrics_dataframe.to_dict("records")
    expected = run_trial(CONFIG)
    assert [strip(m) for m in reported] == [strip(flat(m)) for m in expected]
    # Every epoch left a checkpoint; resuming from the first one ends like the uninterrupted run.
    checkpoints = sorted(result.best_checkpoints, key=lambda pair: pair[1]["epoch"])
    assert [metrics["epoch"] for _, metrics in checkpoints] == [1, 2, 3]
    with checkpoints[0][0].as_directory() as directory:
        state = load_checkpoint(directory)
    assert state["epoch"] == 1
    resumed = run_trial(CONFIG, resume=state)
    assert [strip(flat(m)) for m in resumed] == [strip(flat(m)) for m in expected]


def test_without_final_state_the_last_checkpoint_is_a_finished_marker(ray_local, tmp_path):
    from ray import tune

    config = {**CONFIG, "checkpoint_final_state": False}
    result = tune.Tuner(trainable, param_space=config,
                        run_config=tune.RunConfig(storage_path=str(tmp_path), name="light", verbose=0)).fit()[0]
    assert result.error is None
    checkpoints = sorted(result.best_checkpoints, key=lambda pair: pair[1]["epoch"])
    with checkpoints[-1][0].as_directory() as directory:
        final = load_checkpoint(directory)
    assert set(final) == {"finished", "epoch", "histories"} and final["finished"] and final["epoch"] == 3
    assert [h["epoch"] for h in final["histories"][0]] == [1, 2, 3]
    with checkpoints[1][0].as_directory() as directory:
        assert load_checkpoint(directory)["members"][0]["model"]  # a mid-way checkpoint still holds the full state


def test_a_trial_restored_from_a_finished_marker_returns_without_training(ray_local, tmp_path, monkeypatch):
    """Tuner.restore of a trial whose final report landed but whose TERMINATED state did not: the
    trainable finds the marker, reports its epochs again (so the driver has every one) and returns
    without training (Tune's checkpoint lookup and report stood in for)."""
    import torch
    from ray import tune

    (tmp_path / "checkpoint_000002").mkdir()
    history = [{"epoch": e, "val_accuracy": 0.1 * e} for e in (1, 2, 3)]
    torch.save({"finished": True, "epoch": 3, "history": history}, tmp_path / "checkpoint_000002" / "trial.pt")
    reports = []
    monkeypatch.setattr(tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(
        str(tmp_path / "checkpoint_000002")))
    monkeypatch.setattr(tune, "report", lambda *args, **kwargs: reports.append(args))
    monkeypatch.setattr("trainables.ray_trainable._held_resources", lambda config: {})  # not in a worker
    monkeypatch.setattr("trainables.ray_trainable.run_population", lambda *a, **k: pytest.fail("trained again"))
    trainable(CONFIG)
    assert reports == [(h,) for h in history]
