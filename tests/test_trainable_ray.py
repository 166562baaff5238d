"""The Ray Tune function trainable on a real local Ray: reports equal run_trial's, checkpoints resume."""

import pytest

from trainables import run_trial, trainable
from trainables.ray_trainable import load_checkpoint

pytestmark = pytest.mark.slow

CONFIG = {
    "workload": "synthetic", "workload_options": {"n_train": 256}, "strategy": "dals", "seed": 5, "epochs": 3,
}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def strip(metrics):
    keys = set(run_trial({**CONFIG, "epochs": 1})[0]) - {"seconds"}
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
    assert [strip(m) for m in reported] == [strip(m) for m in expected]
    # Every epoch left a checkpoint; resuming from the first one ends like the uninterrupted run.
    checkpoints = sorted(result.best_checkpoints, key=lambda pair: pair[1]["epoch"])
    assert [metrics["epoch"] for _, metrics in checkpoints] == [1, 2, 3]
    with checkpoints[0][0].as_directory() as directory:
        state = load_checkpoint(directory)
    assert state["epoch"] == 1
    assert [strip(m) for m in run_trial(CONFIG, resume=state)] == [strip(m) for m in expected]
