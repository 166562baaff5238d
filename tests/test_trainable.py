"""run_trial: every strategy, metrics, determinism, resume equivalence, divergence, config checks."""

import io
import math

import pytest
import torch

import strategies
import trainables
from trainables import LOSS_CAP, WorkloadError, run_trial
from vocab.contracts import TIMINGS

SMALL = {"workload": "synthetic", "workload_options": {"n_train": 320}, "seed": 3, "epochs": 2}


def without_time(history):
    return [{k: v for k, v in m.items() if k not in TIMINGS} for m in history]


def assert_finite_metrics(m):
    for key, value in m.items():
        if isinstance(value, float):
            assert math.isfinite(value), (key, value)


@pytest.mark.parametrize("name", [s.name for s in strategies.list_strategies()])
def test_every_strategy_trains_two_epochs_of_synthetic(name):
    history = run_trial({**SMALL, "strategy": name})
    assert [m["epoch"] for m in history] == [1, 2]
    for m in history:
        assert {"epoch", "train_loss", "train_accuracy", "val_accuracy", "lr", "seconds", "status", "device"} <= set(m)
        assert "test_accuracy" not in m and m["device"] == "cpu" and m["seconds"] > 0
        assert m["status"] == "ok", m
        assert 0 <= m["train_accuracy"] <= 1 and 0 <= m["val_accuracy"] <= 1 and m["lr"] > 0
        assert_finite_metrics(m)
    if strategies.get_strategy(name).family == "dals":
        assert {"phase", "trust_ratio"} <= set(history[-1])
    # One gradient evaluation per step, two for ASAM (ascent pass, then the perturbed pass).
    steps = math.ceil(320 / trainables.get_workload("synthetic").batch_size)  # n_train rows train
    passes = 2 if name in ("sam", "sam_discriminative") else 1
    assert strategies.get_strategy(name).passes_per_step == passes  # what a budget in evaluations divides by
    assert [m["grad_evals"] for m in history] == [steps * passes] * 2
    assert [m["steps"] for m in history] == [steps] * 2
    assert all(0 < m["step_seconds"] < m["seconds"] for m in history)


def test_seed_stage_reports_test_accuracy_and_learns():
    history = run_trial({**SMALL, "strategy": "adam", "stage": "seed", "epochs": 3, "workload_options": {}})
    assert all("test_accuracy" in m and "val_accuracy" not in m for m in history)
    assert history[-1]["test_accuracy"] > 0.5  # well above the 0.1 of chance after 3 epochs of 6400 rows


def test_same_seed_same_metrics_and_another_seed_differs():
    config = {**SMALL, "strategy": "dals"}
    first, second = run_trial(config), run_trial(config)
    assert without_time(first) == without_time(second)
    assert without_time(run_trial({**config, "seed": 4})) != without_time(first)


@pytest.mark.parametrize("name", ["sgdr", "dals_acc", "lookahead_adamw", "sam"])
def test_a_resumed_trial_ends_like_an_uninterrupted_one(name):
    config = {**SMALL, "strategy": name, "epochs": 3}
    saved = {}

    def keep_epoch_1(metrics, progress):
        if progress.epoch == 1:  # serialise as the Ray checkpoint does, then stop caring
            buffer = io.BytesIO()
            torch.save(progress.snapshot(), buffer)
            saved["state"] = buffer.getvalue()

    uninterrupted = run_trial(config, on_epoch=keep_epoch_1)
    state = torch.load(io.BytesIO(saved["state"]), weights_only=False)
    assert state["epoch"] == 1 and len(state["members"][0]["history"]) == 1
    resumed = run_trial(config, resume=state)
    assert without_time(resumed) == without_time(uninterrupted)


def test_an_absurd_learning_rate_diverges_with_finite_metrics():
    history = run_trial({**SMALL, "strategy": "fixed_sgd", "hparams": {"lr": 10.0}, "epochs": 5})
    assert history[-1]["status"] == "diverged" and len(history) < 5
    assert all(m["status"] == "ok" for m in history[:-1])
    assert history[-1]["train_loss"] == LOSS_CAP
    for m in history:
        assert_finite_metrics(m)
        assert 0 <= m["val_accuracy"] <= 1


def test_on_epoch_sees_each_dict_and_the_final_flag():
    seen = []
    history = run_trial({**SMALL, "strategy": "fixed_sgd"}, on_epoch=lambda m, p: seen.append((m, p.final)))
    assert [m for m, _ in seen] == history and [f for _, f in seen] == [False, True]


def test_torch_threads_follow_cpus_and_are_restored():
    before = torch.get_num_threads()
    seen = []
    run_trial({**SMALL, "strategy": "fixed_sgd", "epochs": 1, "cpus": 1},
              on_epoch=lambda m, p: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"stage": "test"}, ValueError, "'stage' must be one of"),
        ({"epochs": 0}, ValueError, "'epochs' must be an int >= 1"),
        ({"learning_rate": 0.1}, ValueError, "unknown trial config key 'learning_rate'"),
        ({"device": "tpu"}, ValueError, "'device' must be one of"),
        ({"workload": "mnist"}, WorkloadError, "unknown workload 'mnist'"),
        ({"workload_options": {"n_train": -1}}, WorkloadError, "'n_train' = -1"),
        ({"strategy": "sgd"}, strategies.StrategyError, "sgd"),
        ({"hparams": {"lr": -1.0}}, strategies.StrategyError, "lr"),
    ],
)
def test_bad_configs_are_rejected_clearly(change, error, message):
    with pytest.raises(error, match=message):
        run_trial({**SMALL, "strategy": "fixed_sgd", **change})


def test_canonical_hparams_take_regime_and_overrides_from_the_workload():
    from sweeps.spec.catalog import resolved_canonical

    sgd = strategies.get_strategy("fixed_sgd")
    assert resolved_canonical("synthetic", {}, "fixed_sgd") == sgd.canonical("scratch")
    assert resolved_canonical("cifar10", {}, "fixed_sgd")["weight_decay"] == 5e-4
    assert resolved_canonical("cifar10", {}, "dals")["weight_decay"] == strategies.get_strategy("dals").canonical()[
        "weight_decay"
    ]
    adam_ft = resolved_canonical("rte", {}, "adam")
    assert adam_ft["lr"] == 2e-5 and adam_ft["ft_warmup_frac"] == 0.1
    assert resolved_canonical("rte", {}, "fixed_sgd")["lr"] == 1e-3
    scratch = resolved_canonical("rte", {"pretrained": False}, "adam")
    assert scratch == strategies.get_strategy("adam").canonical("scratch")


def test_each_epoch_reports_the_hparams_the_trial_resolved():
    cifar = trainables.get_workload("cifar10").family_overrides
    given = strategies.resolve_hparams(strategies.get_strategy("fixed_sgd"), "scratch", cifar, {"weight_decay": 0.0})
    assert given["weight_decay"] == 0.0, "sampled values win over the workload's overrides"
    history = run_trial({**SMALL, "strategy": "fixed_sgd", "hparams": {"lr": 0.02}})
    expected = {**strategies.get_strategy("fixed_sgd").canonical(), "lr": 0.02}
    assert [m["hparams"] for m in history] == [expected] * len(history)


def test_trainable_is_exported():
    assert callable(trainables.trainable) and callable(trainables.run_trial)
