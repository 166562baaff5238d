"""``budget.unit: gradient_evaluations``: every trial of every pair gets the same forward and backward
passes, so SAM (two per step) trains half the steps, with its schedule sized to its own steps."""

import pytest
import yaml

from strategies import get_strategy
from sweeps.commands import cli
from sweeps.spec import SpecError, parse_spec
from trainables import run_trial
from trainables.population import run_population

BASE = {"workload": "synthetic", "workload_options": {"n_train": 320}, "seed": 2, "epochs": 3, "stage": "seed",
        "budget_unit": "gradient_evaluations"}
STEPS_PER_EPOCH = 5  # 320 rows in batches of 64


def test_sam_trains_half_the_steps_of_sgd_for_the_same_gradient_evaluations():
    sgd = run_trial({**BASE, "strategy": "fixed_sgd"})
    sam = run_trial({**BASE, "strategy": "sam"})
    assert get_strategy("sam").passes_per_step == 2 and get_strategy("fixed_sgd").passes_per_step == 1
    assert [h["steps"] for h in sgd] == [5, 5, 5]
    assert [h["steps"] for h in sam] == [5, 2]  # 15 evaluations: 7 steps of two passes
    assert sum(h["grad_evals"] for h in sgd) == 15 and sum(h["grad_evals"] for h in sam) == 14
    # In epochs (the default) both train every batch of every epoch.
    assert [h["steps"] for h in run_trial({**BASE, "strategy": "sam", "budget_unit": "epochs"})] == [5, 5, 5]


def test_the_schedule_is_sized_to_the_strategys_own_steps(monkeypatch):
    """SAM with cosine_sgd's schedule, as a plugin would register it: over 15 evaluations it takes 7
    steps, and its cosine runs over those 7, so its last step (t = 6) is one seventh from the floor."""
    import dataclasses
    import math

    from strategies import registry
    from strategies.registry import ETA_MIN
    from trainables.population import budget_steps

    sam = get_strategy("sam")
    assert budget_steps(15, "gradient_evaluations", sam) == 7
    assert budget_steps(15, "epochs", sam) == 15
    assert budget_steps(1, "gradient_evaluations", sam) == 1  # never no step at all
    cosine = dataclasses.replace(sam, name="sam_cosine_test", make_schedule=get_strategy("cosine_sgd").make_schedule)
    monkeypatch.setitem(registry._BY_NAME, cosine.name, cosine)  # registered for this test only
    history = run_trial({**BASE, "strategy": "sam_cosine_test"})
    peak = sam.canonical()["lr"]
    at_t6_of_7 = ETA_MIN + (peak - ETA_MIN) * (1 + math.cos(math.pi * 6 / 7)) / 2
    assert history[-1]["lr"] == pytest.approx(at_t6_of_7, rel=1e-12)


def test_a_population_spends_the_same_budget_as_its_members_alone():
    configs = [{**BASE, "strategy": "sam", "seed": s} for s in (0, 1)]
    together = run_population(configs)
    for got, config in zip(together, configs, strict=True):
        alone = run_trial(config)
        assert [h["steps"] for h in got] == [h["steps"] for h in alone] == [5, 2]
        assert [h["test_accuracy"] for h in got] == [h["test_accuracy"] for h in alone]


def test_the_spec_names_the_unit_and_its_allowed_values_and_hashes_it(tmp_path):
    spec = {"name": "u", "workloads": ["synthetic"], "strategies": ["sam"], "budget": {"trials": 2, "epochs": 2},
            "storage": str(tmp_path)}
    default = parse_spec(spec)
    assert default.budget.unit == "epochs"
    counted = parse_spec({**spec, "budget": {**spec["budget"], "unit": "gradient_evaluations"}})
    assert counted.budget.unit == "gradient_evaluations" and counted.hash != default.hash
    assert parse_spec({**spec, "budget": {**spec["budget"], "unit": "epochs"}}).hash == default.hash
    with pytest.raises(SpecError, match=r"budget\.unit.*allowed: epochs, gradient_evaluations"):
        parse_spec({**spec, "budget": {**spec["budget"], "unit": "flops"}})


@pytest.mark.slow
def test_a_real_sweep_in_gradient_evaluations_gives_sam_half_the_steps(tmp_path):
    import pandas as pd

    spec = {"name": "evals", "workloads": [{"synthetic": {"n_train": 320}}], "strategies": ["fixed_sgd", "sam"],
            "budget": {"trials": 2, "epochs": 2, "sampler": "random", "unit": "gradient_evaluations"},
            "evaluation": {"seeds": 1}, "storage": str(tmp_path / "results")}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(path), "--num-cpus", "2"])
    assert e.value.code == 0
    directory = tmp_path / "results" / "evals"
    budget = pd.read_parquet(directory / "budget.parquet").set_index("strategy")
    trials = pd.read_parquet(directory / "trials.parquet")
    epochs = pd.read_parquet(directory / "epochs.parquet")
    assert set(budget["budget_unit"]) == {"gradient_evaluations"}
    # 2 epochs of the tune split's batches, the same passes for every trial of both pairs.
    per_trial = trials.query("stage == 'tune'").groupby("strategy")["grad_evals"].agg(["min", "max", "sum"])
    assert per_trial.loc["fixed_sgd", "min"] == per_trial.loc["fixed_sgd", "max"]
    assert per_trial.loc["sam", "min"] == per_trial.loc["sam", "max"]
    assert abs(per_trial.loc["sam", "max"] - per_trial.loc["fixed_sgd", "max"]) <= 1  # an odd count: one left
    assert budget.loc["fixed_sgd", "grad_evals"] == per_trial.loc["fixed_sgd", "sum"]
    steps = epochs.groupby(["strategy", "trial_id"])["steps"].sum().groupby("strategy").max()
    assert steps["sam"] == steps["fixed_sgd"] // 2
