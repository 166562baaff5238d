"""Same spec -> same Parquet: a tiny real sweep's metrics and hyperparameters, pinned bit for bit.

The fixture ``same_parquet.json`` was recorded by running this sweep on the code before the
hyperparameters were resolved in one place (commit 0c2d5d7):
``PYTHONPATH=<that checkout>:tests python tests/test_same_parquet.py tests/same_parquet.json``.
The sweep covers a scratch workload, one with family overrides (CIFAR-10's SGD weight decay) and a
fine-tune one (text), so every input of the resolved hyperparameters is exercised.
"""

import json
import sys
from pathlib import Path

import pytest
import yaml
from offline_data import text_spec_workload, write_cifar10

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).with_name("same_parquet.json")
KEY = ["workload", "strategy", "stage", "trial_index", "seed"]
TRIAL_COLUMNS = ["generation", "regime", "canonical", "hparams", "status", "val_accuracy_final",
                 "val_accuracy_best", "test_accuracy_final", "test_accuracy_best", "chance_accuracy",
                 "train_loss_final", "epochs_planned", "epochs_run"]
EPOCH_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "lr", "phase",
                 "trust_ratio", "status"]


def run_tiny_sweep(root: Path) -> dict:
    """Run the sweep through the CLI in-process; return its ``trials`` and ``epochs`` values as JSON data."""
    import pandas as pd

    from sweeps import cli

    spec = {
        "name": "pinned",
        "workloads": [
            {"synthetic": {"n_train": 256}},
            {"cifar10": {"verify_checksums": False, "val_size": 16}},
            text_spec_workload(root, {"train": 32, "validation": 16, "test": 16}),
        ],
        "strategies": ["fixed_sgd", "adam", "dals_acc"],
        "budget": {"trials": 2, "epochs": 2, "sampler": "tpe", "sampler_seed": 0},
        "evaluation": {"seeds": 1, "selection": "final"},
        "storage": str(root / "results"),
        "data_dir": str(write_cifar10(root / "cifar", per_batch=8, n_test=16)),
    }
    path = root / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        cli.main(["run", str(path), "--num-cpus", "2"])
    except SystemExit as e:
        assert e.code == 0, f"the sweep exited {e.code}"
    directory = root / "results" / "pinned"
    trials = pd.read_parquet(directory / "trials.parquet")
    epochs = pd.read_parquet(directory / "epochs.parquet")
    return {
        "trials": _rows(trials, KEY, TRIAL_COLUMNS),
        "epochs": _rows(epochs, [*KEY[:3], "seed"], EPOCH_COLUMNS, trials),
    }


def _rows(table, key: list[str], columns: list[str], trials=None) -> list[dict]:
    """The table's ``key`` + ``columns`` as plain dicts in key order (floats kept exact by JSON's repr)."""
    if trials is not None:  # epochs rows carry no trial_index: take it from the trial they belong to
        table = table.merge(trials[["trial_id", "trial_index"]], on="trial_id")
        key = [*key, "trial_index"]
    rows = table[key + columns].sort_values(key + (["epoch"] if "epoch" in columns else [])).astype(object)
    return [{k: (None if v is None or v != v else v) for k, v in row.items()}
            for row in rows.where(rows.notna(), None).to_dict("records")]


def test_the_same_spec_gives_the_same_parquet(tmp_path):
    expected = json.loads(FIXTURE.read_text())
    got = json.loads(json.dumps(run_tiny_sweep(tmp_path)))  # the same JSON round trip as the fixture
    for table in ("trials", "epochs"):
        assert len(got[table]) == len(expected[table])
        for mine, theirs in zip(got[table], expected[table], strict=True):
            assert mine == theirs


if __name__ == "__main__":  # record the fixture (see the module docstring)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(sys.argv[1]).write_text(json.dumps(run_tiny_sweep(Path(tmp)), indent=1) + "\n")
