"""A sweep that cannot give every pair its budget (a trial errors beyond its retries) says so: the
budget table marks that pair complete=False, the error is recorded, and `lrsweep run` exits 1."""

import pandas as pd
import pytest
import yaml

from sweeps.commands import cli

pytestmark = pytest.mark.slow


def test_errored_trials_make_the_pair_incomplete_and_exit_1(tmp_path, capsys):
    missing_model = tmp_path / "no-such-model"  # the text trial fails to load it, every retry
    files = {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")}
    for path in files.values():
        pd.DataFrame({"text": ["a good film", "a bad film"] * 4, "label": [1, 0] * 4}).to_csv(path, index=False)
    spec = {
        "name": "broken",
        "workloads": [{"synthetic": {"n_train": 256}},
                      {"trec6": {"model": str(missing_model), "data_files": files, "label_column": "label"}}],
        "strategies": ["fixed_sgd"],
        "budget": {"trials": 1, "epochs": 1},
        "evaluation": {"seeds": 1},
        "storage": str(tmp_path / "results"),
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(path), "--num-cpus", "2"])
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert "INCOMPLETE trec6/fixed_sgd: 0/1 tune trials" in out

    directory = tmp_path / "results" / "broken"
    budget = pd.read_parquet(directory / "budget.parquet").set_index("workload")
    assert budget.loc["synthetic"].complete and not budget.loc["trec6"].complete
    assert (budget.loc["trec6", "trials_errored"], budget.loc["trec6", "seeds_run"]) == (1, 0)
    trials = pd.read_parquet(directory / "trials.parquet")
    broken = trials[trials.workload == "trec6"]
    assert list(broken.status) == ["error"]
    # The exception itself, unwrapped: no Ray wrapper, no colour codes; the traceback is in the log.
    error, log = broken.error.iloc[0], broken.error_log.iloc[0]
    assert error.startswith("WorkloadError: could not load the tokenizer of model"), error
    assert str(missing_model) in error and "\x1b" not in error and "RayTaskError" not in error and "ray::" not in error
    text = open(log).read()
    assert log.startswith(str(directory / "errors"))
    assert text.startswith(f"trial {broken.trial_id.iloc[0]} failed: {error}")
    assert 'trainables/workloads/text.py", line' in text and "in load_tokenizer" in text  # the frames
    assert "\x1b" not in text
    assert trials[trials.workload == "synthetic"].error_log.isna().all()
    assert "ERROR WorkloadError: could not load the tokenizer" in out, out
