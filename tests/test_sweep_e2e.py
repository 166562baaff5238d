"""End to end on a real local Ray: two workloads (synthetic and a tiny offline DistilBERT text task),
three strategies, 3 trials x 2 epochs, 2 seeds; everything checked from the Parquet tables."""

import json
from pathlib import Path

import pytest
import yaml
from offline_data import text_spec_workload

from sweeps.commands import cli

pytestmark = pytest.mark.slow

STRATEGIES = ["fixed_sgd", "adam", "dals"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Run the sweep once through the CLI (in-process); return (sweep dir, spec dict, exit code)."""
    root = tmp_path_factory.mktemp("e2e")
    spec = {
        "name": "e2e",
        "workloads": [
            {"synthetic": {"n_train": 512}},
            text_spec_workload(root, {"train": 48, "validation": 16, "test": 24}),
        ],
        "strategies": STRATEGIES,
        "budget": {"trials": 3, "epochs": 2, "sampler": "tpe", "sampler_seed": 0},
        "evaluation": {"seeds": 2, "selection": "final"},
        "storage": str(root / "results"),
    }
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(path), "--num-cpus", "2"])
    return root / "results" / "e2e", spec, e.value.code, path


@pytest.fixture(scope="module")
def tables(sweep):
    import pandas as pd

    directory = sweep[0]
    return {name: pd.read_parquet(directory / f"{name}.parquet")
            for name in ("trials", "epochs", "budget", "layers", "predictions")}


def test_sweep_exits_0_and_status_says_complete(sweep, capsys):
    directory, _, code, _ = sweep
    assert code == 0
    with pytest.raises(SystemExit) as e:
        cli.main(["status", str(directory)])
    assert e.value.code == 0 and "state: complete" in capsys.readouterr().out


def test_exactly_the_budget_per_pair_and_trial_0_canonical(tables):
    from sweeps.spec import catalog

    tune = tables["trials"].query("stage == 'tune'")
    assert len(tune) == 2 * 3 * 3
    for (workload, strategy), rows in tune.groupby(["workload", "strategy"]):
        assert sorted(rows.trial_index) == [0, 1, 2]
        assert rows.trial_id.is_unique and (rows.epochs_planned == 2).all()
        first = rows.set_index("trial_index").loc[0]
        assert first.canonical and not rows.set_index("trial_index").loc[[1, 2]].canonical.any()
        options = {} if workload == "synthetic" else None
        if options is not None:
            assert json.loads(first.hparams) == catalog.resolved_canonical(workload, options, strategy)
    assert set(tune.status) <= {"ok", "diverged"}


def test_no_test_metric_in_any_tune_row(tables):
    trials, epochs = tables["trials"], tables["epochs"]
    tune = trials[trials.stage == "tune"]
    assert tune.test_accuracy_final.isna().all() and tune.test_accuracy_best.isna().all()
    assert tune.val_accuracy_final.notna().all()
    assert epochs[epochs.stage == "tune"].test_accuracy.isna().all()
    seed = trials[trials.stage == "seed"]
    assert seed.val_accuracy_final.isna().all() and seed.test_accuracy_final.notna().all()


def test_seed_runs_retrain_the_best_validation_config(tables):
    trials = tables["trials"]
    for (workload, strategy), rows in trials.groupby(["workload", "strategy"]):
        tune, seed = rows[rows.stage == "tune"], rows[rows.stage == "seed"]
        best = tune.sort_values(["val_accuracy_final", "trial_index"], ascending=[False, True]).iloc[0]
        assert sorted(seed.seed) == [0, 1] and sorted(seed.trial_index) == [0, 1]
        assert (seed.hparams == best.hparams).all(), (workload, strategy)
        assert (seed.canonical == best.canonical).all()


def test_budget_table_is_equal_across_pairs(tables):
    budget = tables["budget"]
    assert len(budget) == 6
    same = ["trials_planned", "trials_run", "sampler", "sampler_seed", "seeds_planned", "seeds_run", "spec_hash"]
    assert (budget[same].nunique() == 1).all()
    assert budget.complete.all() and (budget.trials_errored == 0).all()
    assert (budget.groupby("workload").epochs.nunique() == 1).all()


def test_epochs_table_has_one_row_per_trial_epoch(tables):
    epochs, trials = tables["epochs"], tables["trials"]
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert len(epochs) == trials.epochs_run.sum()
    assert set(epochs.trial_id) == set(trials.trial_id)
    dals = epochs[epochs.strategy == "dals"]
    assert dals.phase.notna().all() and epochs[epochs.strategy == "adam"].phase.isna().all()


def test_layers_table_has_one_row_per_run_epoch_and_layer_group(tables):
    from trainables import get_workload
    from trainables.workloads.synthetic import MLP

    layers, epochs = tables["layers"], tables["epochs"]
    assert not layers.duplicated(["trial_id", "epoch", "group"]).any()
    synthetic = layers[layers.workload == "synthetic"]
    groups = len(get_workload("synthetic").layer_groups(MLP()))
    assert len(synthetic) == groups * (epochs.workload == "synthetic").sum()
    assert (synthetic.groupby(["trial_id", "epoch"]).group.max() == groups - 1).all()
    assert (synthetic.grad_norm > 0).all() and (synthetic.update_ratio > 0).all() and (synthetic.lr > 0).all()
    # The top group's LR is the epochs table's lr; trust ratios exist for DALS only.
    top = synthetic[synthetic.group == groups - 1].merge(epochs, on=["trial_id", "epoch"])
    assert (top.lr_x == top.lr_y).all()
    assert synthetic[synthetic.strategy == "dals"].trust_ratio.notna().all()
    assert synthetic[synthetic.strategy != "dals"].trust_ratio.isna().all()


def test_trials_count_each_run_s_compute(tables):
    trials = tables["trials"]
    assert str(trials.grad_evals.dtype) == "int64" and (trials.grad_evals > 0).all()
    assert ((trials.step_seconds > 0) & (trials.step_seconds < trials.wall_seconds)).all()
    # None of these strategies evaluates twice per step: a stage's runs make the same passes per epoch.
    per_epoch = trials.grad_evals / trials.epochs_run
    assert (per_epoch.groupby([trials.workload, trials.stage]).nunique() == 1).all()


def test_every_reader_reads_the_tables(sweep):
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.parquet as pq

    directory: Path = sweep[0]
    for name in ("trials", "epochs", "budget", "layers", "predictions"):
        path = str(directory / f"{name}.parquet")
        n = len(pd.read_parquet(path))
        assert pq.read_table(path).num_rows == n
        assert pl.read_parquet(path).height == n
        assert duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0] == n
    versions = json.loads(pd.read_parquet(directory / "trials.parquet").versions.iloc[0])
    assert {"torch", "ray", "optuna", "lrsweep"} <= set(versions)


def test_predictions_give_every_seed_run_s_test_accuracy_exactly(tables):
    """Both workloads (the synthetic MLP's 1,600 test rows, the tiny trec6 text task's 24): one row per seed run."""
    from vocab.predictions import correct_vector

    seed = tables["trials"].query("stage == 'seed'").set_index("trial_id")
    predictions = tables["predictions"]
    assert sorted(predictions.trial_id) == sorted(seed.index)
    assert set(zip(predictions.workload, predictions.n_rows, strict=True)) == {("synthetic", 1600), ("trec6", 24)}
    for r in predictions.itertuples():
        assert correct_vector(r.correct, r.n_rows).sum() / r.n_rows == seed.loc[r.trial_id, "test_accuracy_final"]


def test_running_the_same_spec_again_exits_2(sweep, capsys):
    directory, _, _, path = sweep
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(path)])
    assert e.value.code == 2 and "lrsweep resume" in capsys.readouterr().err
    assert sorted(p.name for p in directory.iterdir()) == before


def test_tune_and_seed_stages_never_share_a_seed(tables):
    trials = tables["trials"]
    tune, seed = trials[trials.stage == "tune"], trials[trials.stage == "seed"]
    assert set(tune.seed) == {1_000_000}  # 1000000 + sampler_seed 0, every pair alike
    assert set(seed.seed) == {0, 1}
    assert not set(tune.seed) & set(seed.seed)
    assert set(trials.regime) == {"scratch", "finetune"}
    assert (trials.groupby("workload").regime.nunique() == 1).all()
    # The chance level is the majority-class rate of the scored split, measured by every trial.
    assert trials.chance_accuracy.between(0.0, 1.0, inclusive="right").all()


def test_report_of_the_real_sweep_matches_scipy_and_is_reproducible(sweep, tables, tmp_path):
    import numpy as np
    import pandas as pd
    import scipy.stats

    from reports import build_report

    directory = str(sweep[0])
    first = build_report([directory], str(tmp_path / "a"))
    second = build_report([directory], str(tmp_path / "b"))
    for name in ("markdown", "html"):
        assert Path(getattr(first, name)).read_bytes() == Path(getattr(second, name)).read_bytes()

    assert "layers_synthetic" in Path(first.markdown).read_text()  # the per-layer small multiples
    summary = pd.read_csv(first.csv["summary"])
    vs = pd.read_csv(first.csv["pairwise_vs_best"])
    seed = tables["trials"].query("stage == 'seed'")
    for row in summary.itertuples():
        acc = seed[(seed.workload == row.workload) & (seed.strategy == row.strategy)].test_accuracy_final
        if acc.nunique() > 1:  # identical seeds have the point interval
            lo, hi = scipy.stats.t.interval(0.95, df=len(acc) - 1, loc=acc.mean(), scale=scipy.stats.sem(acc))
            assert row.ci_high - row.ci_low == pytest.approx(hi - lo)
    for row in vs.itertuples():
        m = seed[seed.workload == row.workload].pivot_table(index="seed", columns="strategy",
                                                            values="test_accuracy_final")
        d = m[row.a] - m[row.b]
        if d.std() > 0:
            assert row.p_t == pytest.approx(scipy.stats.ttest_rel(m[row.a], m[row.b]).pvalue)
        else:
            assert np.isnan(row.p_t)
