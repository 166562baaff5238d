"""One loop: ``run_trial`` is a population of one, bit-identical to the separate solo loop it replaced.

The old loop is kept as a reference path (``tests/reference_trial.py``) and both run here, in the same
session on the same machine, so every float is compared exactly: a fixture recorded on one CPU and
compared bit for bit on another would fail on rounding, not on the code.
"""

import io

import pytest
import torch
from offline_data import write_cifar10
from reference_trial import run_reference_trial
from torch import nn

from strategies import list_strategies
from trainables import Workload, get_workload, register_workload, run_trial
from trainables.workloads import synthetic
from vocab.contracts import TIMINGS
from vocab.predictions import KEY as PREDICTIONS

SMALL = {"n_train": 256}


def _config(strategy, epochs=2, **extra):
    return {"workload": "synthetic", "workload_options": SMALL, "strategy": strategy, "seed": 3,
            "epochs": epochs, "stage": "seed", **extra}


def _without_clocks(history):
    # The old loop recorded neither per-layer diagnostics nor a seed run's test predictions.
    return [{k: v for k, v in h.items() if k not in TIMINGS and k not in ("layers", PREDICTIONS)} for h in history]


@pytest.mark.parametrize("strategy", [s.name for s in list_strategies()] + ["sgdr@paper_code"])
def test_a_trial_of_one_run_equals_the_old_solo_loop_for_every_strategy(strategy):
    config = _config(strategy)
    assert _without_clocks(run_trial(config)) == _without_clocks(run_reference_trial(config))


def test_the_papers_rng_order_and_a_diverging_run_equal_the_old_loop():
    paper = _config("fixed_sgd@paper_code", epochs=2, rng_order="paper")
    assert _without_clocks(run_trial(paper)) == _without_clocks(run_reference_trial(paper))
    diverging = {**_config("fixed_sgd", epochs=5, hparams={"lr": 10.0}), "workload_options": {"n_train": 2048}}
    new = run_trial(diverging)
    assert _without_clocks(new) == _without_clocks(run_reference_trial(diverging))
    assert new[-1]["status"] == "diverged"


def test_a_model_with_buffers_and_dropout_and_the_convnet_equal_the_old_loop(tmp_path):
    register_workload(Workload(
        name="buffers_and_dropout", description="BatchNorm and dropout", regime="scratch", default_epochs=1,
        batch_size=64, load_data=synthetic.load_data,
        build_model=lambda options, data: nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                                        nn.Dropout(0.3), nn.Linear(16, 10)),
        layer_groups=lambda m: [list(m.parameters())], options=get_workload("synthetic").options,
    ), replace=True)
    config = {**_config("sam"), "workload": "buffers_and_dropout"}
    assert _without_clocks(run_trial(config)) == _without_clocks(run_reference_trial(config))
    write_cifar10(tmp_path, per_batch=32, n_test=64)
    convnet = {"workload": "cifar10", "strategy": "dals", "seed": 1, "epochs": 1, "stage": "tune",
               "data_dir": str(tmp_path), "workload_options": {"verify_checksums": False, "val_size": 32}}
    assert _without_clocks(run_trial(convnet)) == _without_clocks(run_reference_trial(convnet))


def test_a_checkpoint_of_the_old_loop_resumes_in_the_new_one_to_the_same_end():
    """Checkpoints written before runs became populations of one still load, and go on exactly."""
    config = _config("dals", epochs=3)
    saved = {}

    def keep_epoch_1(metrics, progress):
        if progress.epoch == 1:
            buffer = io.BytesIO()
            torch.save(progress.snapshot(), buffer)
            saved["state"] = buffer.getvalue()

    uninterrupted = run_reference_trial(config, on_epoch=keep_epoch_1)
    old_state = torch.load(io.BytesIO(saved["state"]), weights_only=False)
    assert "model" in old_state and "members" not in old_state  # the old format
    assert _without_clocks(run_trial(config, resume=old_state)) == _without_clocks(uninterrupted)
