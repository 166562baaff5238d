"""Same spec -> same Parquet: a tiny real sweep's tables equal values recorded on another machine.

The fixture ``same_parquet.json`` was recorded by running this sweep on the code before the
hyperparameters were resolved in one place (commit 0c2d5d7):
``PYTHONPATH=<that checkout>:tests python tests/test_same_parquet.py tests/same_parquet.json``.
The sweep covers a scratch workload, one with family overrides (CIFAR-10's SGD weight decay) and a
fine-tune one (text), so every input of the resolved hyperparameters is exercised.

What is compared how (``differences``):

- exactly: the ids (workload, strategy, stage, trial index, seed), the row counts, epochs planned
  and run, statuses, regimes, phases, the canonical flag and the chance accuracy (label counts only,
  no model in it);
- the sampled hyperparameters to 1e-12 relative: the sampler's draws are exact, but a log-scale
  value passes through libm's exp/log, which may differ in the last bit between CPUs (SIMD paths);
  any other draw differs by many orders of magnitude more;
- losses, learning rates and trust ratios to 1e-5 relative: float32 training sums in an order that
  depends on the CPU's vector width (an AVX-512/AMX Xeon gave 3e-7 relative after 2 epochs), 30x
  headroom;
- accuracies as counts of examples, within +-1 of the recorded count: an accuracy is correct/n, and
  a near-chance model's top two logits can be closer than that float32 drift, so one prediction
  may flip; n is each split's size, measured from the same data (``split_sizes``).
"""

import copy
import json
import math
import sys
import tempfile
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


def tiny_spec(root: Path) -> Path:
    """Write the tiny sweep's data and spec file under ``root``; return the spec's path."""
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
    return path


def split_sizes(spec_path: Path) -> dict[tuple[str, str], dict[str, int]]:
    """``{(workload, stage): {"train": rows trained per epoch, "scored": rows scored}}``: the
    denominators of the accuracies (the whole training split is one epoch: no dropped batch)."""
    from sweeps.spec import load_spec
    from trainables import get_workload
    from vocab.contracts import STAGES

    spec = load_spec(spec_path)
    sizes = {}
    for w in spec.workloads:
        for stage in STAGES:
            data = get_workload(w.name).stage_data(w.options_dict, stage, spec.data_dir)
            sizes[(w.name, stage)] = {"train": len(data.train), "scored": len(data.eval)}
    return sizes


def run_tiny_sweep(root: Path) -> dict:
    """Run the sweep through the CLI in-process; return its ``trials`` and ``epochs`` values as JSON data."""
    import pandas as pd

    from sweeps.commands import cli

    path = tiny_spec(root)
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


LOSS_RTOL = 1e-5
HPARAM_RTOL = 1e-12
RELATIVE = {"train_loss_final": LOSS_RTOL, "train_loss": LOSS_RTOL, "lr": LOSS_RTOL, "trust_ratio": LOSS_RTOL}
SCORED = ("val_accuracy_final", "val_accuracy_best", "test_accuracy_final", "test_accuracy_best", "val_accuracy",
          "test_accuracy")
ACCURACY_SPLIT = {**dict.fromkeys(SCORED, "scored"), "train_accuracy": "train"}


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-300)


def _hparams_differ(mine: str, theirs: str) -> bool:
    a, b = json.loads(mine), json.loads(theirs)
    if a.keys() != b.keys():
        return True
    return any(not (_close(a[k], b[k], HPARAM_RTOL) if isinstance(b[k], float) and isinstance(a[k], float)
                    else a[k] == b[k]) for k in b)


def _value_differs(column: str, mine, theirs, n: int | None) -> bool:
    if mine is None or theirs is None or column not in (*RELATIVE, *ACCURACY_SPLIT, "hparams"):
        return mine != theirs
    if column == "hparams":
        return _hparams_differ(mine, theirs)
    if column in RELATIVE:
        return not _close(mine, theirs, RELATIVE[column])
    return abs(mine - theirs) * n > 1 + 1e-9  # accuracies: counts within one example


def differences(got: dict, expected: dict, sizes: dict[tuple[str, str], dict[str, int]]) -> list[str]:
    """Every way ``got`` differs from ``expected`` beyond the rules of the module docstring."""
    problems = []
    for table in ("trials", "epochs"):
        if len(got[table]) != len(expected[table]):
            problems.append(f"{table}: {len(got[table])} rows, recorded {len(expected[table])}")
            continue
        for i, (mine, theirs) in enumerate(zip(got[table], expected[table], strict=True)):
            if mine.keys() != theirs.keys():
                problems.append(f"{table}[{i}]: columns {sorted(mine)}, recorded {sorted(theirs)}")
                continue
            split = sizes.get((theirs["workload"], theirs["stage"]), {})
            for column, value in theirs.items():
                n = split.get(ACCURACY_SPLIT.get(column, ""))
                if _value_differs(column, mine[column], value, n):
                    problems.append(f"{table}[{i}] {column}: {mine[column]!r}, recorded {value!r}")
    return problems


def test_the_same_spec_gives_the_same_parquet(tmp_path):
    expected = json.loads(FIXTURE.read_text())
    got = json.loads(json.dumps(run_tiny_sweep(tmp_path)))  # the same JSON round trip as the fixture
    assert differences(got, expected, split_sizes(tmp_path / "spec.yaml")) == []


# --- the comparison itself, on the recorded tables ------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[dict, dict]:
    """The fixture's tables and the split sizes of the data the sweep would train on."""
    return json.loads(FIXTURE.read_text()), split_sizes(tiny_spec(tmp_path_factory.mktemp("tiny")))


def _changed(tables: dict, table: str, column: str, change) -> dict:
    """A deep copy of ``tables`` with ``change(value, row)`` applied to ``column`` of every row that has a value."""
    out = copy.deepcopy(tables)
    for row in out[table]:
        if row[column] is not None:
            row[column] = change(row[column], row)
    return out


def test_the_split_sizes_are_the_specs(tmp_path):
    """The denominators follow from the spec and the data: CIFAR-10 5 x 8 training images, 16 held out,
    16 test; synthetic 6400 training rows (a fifth held out), 1600 test, training limited to n_train."""
    sizes = split_sizes(tiny_spec(tmp_path))
    assert sizes[("cifar10", "tune")] == {"train": 40 - 16, "scored": 16}
    assert sizes[("cifar10", "seed")] == {"train": 40, "scored": 16}
    assert sizes[("trec6", "tune")] == {"train": 32, "scored": 16}  # the dataset's own validation split
    assert sizes[("trec6", "seed")] == {"train": 32, "scored": 16}
    assert sizes[("synthetic", "tune")] == {"train": 256, "scored": 6400 // 5}
    assert sizes[("synthetic", "seed")] == {"train": 256, "scored": 1600}


@pytest.mark.parametrize("sign", [1, -1])
def test_floats_perturbed_by_1e_6_relative_still_compare_equal(recorded, sign):
    expected, sizes = recorded
    got = expected
    for table, columns in (("trials", TRIAL_COLUMNS), ("epochs", EPOCH_COLUMNS)):
        for column in columns:
            if column in RELATIVE or column in ACCURACY_SPLIT:
                got = _changed(got, table, column, lambda v, _: v * (1 + sign * 1e-6))
    assert got != expected  # something was perturbed
    assert differences(got, expected, sizes) == []


def test_an_accuracy_one_example_off_compares_equal_and_two_examples_off_does_not(recorded):
    expected, sizes = recorded

    def moved(examples):
        def change(value, row):
            n = sizes[(row["workload"], row["stage"])]["scored"]
            return value + examples / n if value + examples / n <= 1 else value - examples / n
        return change

    assert differences(_changed(expected, "trials", "val_accuracy_final", moved(1)), expected, sizes) == []
    assert differences(_changed(expected, "trials", "val_accuracy_final", moved(2)), expected, sizes)


@pytest.mark.parametrize(("table", "column", "change"), [
    ("trials", "trial_index", lambda v, _: v + 1),             # an id
    ("trials", "seed", lambda v, _: v + 1),                    # an id
    ("trials", "strategy", lambda v, _: v + "_x"),             # an id
    ("trials", "epochs_run", lambda v, _: v - 1),              # a count
    ("epochs", "epoch", lambda v, _: v + 1),                   # a count
    ("trials", "status", lambda v, _: "diverged"),
    ("trials", "chance_accuracy", lambda v, _: v * (1 + 1e-9)),  # label counts: exact
    ("trials", "hparams", lambda v, _: v.replace("0.", "0.1", 1)),  # a sampled hyperparameter
    ("trials", "train_loss_final", lambda v, _: v * (1 + 1e-4)),
])
def test_a_changed_id_count_status_or_hyperparameter_is_a_difference(recorded, table, column, change):
    expected, sizes = recorded
    changed = _changed(expected, table, column, change)
    assert changed != expected
    assert differences(changed, expected, sizes)
    assert differences(expected, changed, sizes)  # both ways


def test_a_sampled_hyperparameter_moved_by_1e_6_relative_is_a_difference(recorded):
    expected, sizes = recorded

    def nudge(value, _):
        hparams = json.loads(value)
        return json.dumps({k: v * (1 + 1e-6) if isinstance(v, float) else v for k, v in hparams.items()})

    changed = _changed(expected, "trials", "hparams", nudge)
    assert differences(changed, expected, sizes) and differences(expected, changed, sizes)


def test_a_missing_row_is_a_difference(recorded):
    expected, sizes = recorded
    fewer = {**expected, "epochs": expected["epochs"][:-1]}
    assert differences(fewer, expected, sizes) and differences(expected, fewer, sizes)


if __name__ == "__main__":  # record the fixture (see the module docstring)
    with tempfile.TemporaryDirectory() as tmp:
        Path(sys.argv[1]).write_text(json.dumps(run_tiny_sweep(Path(tmp)), indent=1) + "\n")
