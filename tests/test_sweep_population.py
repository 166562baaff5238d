"""Populations in a real sweep: with a sampler whose points do not depend on the order of asks and
tells (random), a sweep with ``resources.population: 3`` gives the plain sweep's tables run for run,
its seed runs' test predictions included."""

import numpy as np
import pandas as pd
import pytest

import lrsweep

pytestmark = pytest.mark.slow

SPEC = {
    "workloads": [{"synthetic": {"n_train": 256}}],
    "strategies": ["fixed_sgd", "sam", "dals"],
    "budget": {"trials": 4, "epochs": 2, "sampler": "random", "sampler_seed": 0},
    "evaluation": {"seeds": 3},
}
# What may differ between the two sweeps: ids, timings, the sweep's name.
VOLATILE = ["sweep_id", "trial_id", "population_id", "wall_seconds", "step_seconds", "seconds", "versions"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("population")
    out: dict[int, dict] = {}
    for population in (3, 1):
        lines: list[str] = []
        spec = {**SPEC, "name": f"p{population}", "storage": str(root),
                "resources": {"cpu": 1, "population": population}}
        directory = lrsweep.run_sweep(spec, num_cpus=2, out=lines.append)
        tables = {t: pd.read_parquet(directory / f"{t}.parquet")
                  for t in ("trials", "epochs", "budget", "predictions")}
        out[population] = {"tables": tables, "lines": lines}
    return out


def _runs(tables: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trials and epochs keyed by what a run is (pair, stage, index), not by Tune's ids."""
    trials = tables["trials"]
    index = trials[["trial_id", "trial_index"]]
    epochs = tables["epochs"].merge(index, on="trial_id")
    key = ["workload", "strategy", "stage", "trial_index"]
    trials = trials.drop(columns=[c for c in VOLATILE if c in trials]).sort_values(key).reset_index(drop=True)
    epochs = epochs.drop(columns=[c for c in VOLATILE if c in epochs]).sort_values([*key, "epoch"])
    return trials, epochs.reset_index(drop=True)


def test_population_sweep_equals_the_plain_sweep_run_for_run(sweeps):
    pop_trials, pop_epochs = _runs(sweeps[3]["tables"])
    one_trials, one_epochs = _runs(sweeps[1]["tables"])
    assert len(pop_trials) == 3 * (4 + 3)
    pd.testing.assert_frame_equal(pop_trials, one_trials, check_exact=True)
    pd.testing.assert_frame_equal(pop_epochs, one_epochs, check_exact=True)
    budget = sweeps[3]["tables"]["budget"]
    assert budget.complete.all() and (budget.trials_run == 4).all() and (budget.seeds_run == 3).all()


def test_every_seed_run_s_test_accuracy_is_recomputed_exactly_from_its_predictions(sweeps):
    """Both paths (members of a population, runs alone): one predictions row per seed run, whose
    correctness bits give its test accuracy exactly, and whose classes agree with those bits."""
    from trainables.workloads.synthetic import N_TRAIN, generate
    from vocab.predictions import correct_vector, predicted_vector

    labels = generate()[1][N_TRAIN:].numpy()
    by_path = {}
    for population in (3, 1):
        trials, predictions = (sweeps[population]["tables"][t] for t in ("trials", "predictions"))
        seed_runs = trials[trials.stage == "seed"].set_index("trial_id")
        assert sorted(predictions.trial_id) == sorted(seed_runs.index) and len(predictions) == 9
        for r in predictions.itertuples():
            correct = correct_vector(r.correct, r.n_rows)
            predicted = predicted_vector(r.predicted, r.width)
            assert r.n_rows == 1600 == len(labels) and r.n_classes == 10 and r.width == 1
            assert correct.sum() / r.n_rows == seed_runs.loc[r.trial_id, "test_accuracy_final"]
            assert r.n_correct == correct.sum() and (correct == (predicted == labels)).all()
            assert r.epoch == seed_runs.loc[r.trial_id, "epochs_run"] and r.seed == seed_runs.loc[r.trial_id, "seed"]
            assert len(r.predicted) == 1600 and len(r.correct) == 200  # the size docs/RESULTS.md states
        by_path[population] = predictions.sort_values(["strategy", "seed"])[["predicted", "correct"]]
    assert np.array_equal(by_path[3].to_numpy(), by_path[1].to_numpy())  # populations are exact


def test_members_share_their_trial_and_a_run_alone_is_its_own_population(sweeps):
    trials = sweeps[3]["tables"]["trials"]
    sizes = trials.groupby(["strategy", "stage", "population_id"]).size()
    # 4 tune trials in populations of 3 + 1; 3 seeds in one population of 3.
    assert sorted(sizes.groupby(level=[0, 1]).apply(sorted).tolist()) == [[1, 3], [1, 3], [1, 3], [3], [3], [3]]
    alone = trials[trials.population_id.map(trials.population_id.value_counts()) == 1]
    assert (alone.trial_id == alone.population_id).all()
    assert trials.trial_id.is_unique
    plain = sweeps[1]["tables"]["trials"]
    assert (plain.trial_id == plain.population_id).all()


def test_progress_names_the_population_and_gives_an_eta(sweeps):
    lines = sweeps[3]["lines"]
    assert any("(3 runs in one population)" in line and ", ETA ~" in line for line in lines)
    assert any(line.startswith("[seed 3/9]") and "ok 3 best test_accuracy=" in line for line in lines)
