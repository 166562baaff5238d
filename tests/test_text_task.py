"""A text task defined by name in the spec alone (no plugin): validated like a workload, registered on
every Ray worker, and its name carried by the results."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from offline_data import write_text_dataset, write_text_model

from sweeps.commands import cli
from sweeps.spec import SpecError, parse_spec


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_task")
    model = write_text_model(root / "model", "distilbert")
    write_text_dataset(root / "rt", "csv", sizes={"train": 40, "test": 16})
    return root, model


def _spec(root, model, **task) -> dict:
    text = {"name": "rotten_tomatoes", "dataset": "rt", "text_column": "text", "label_column": "label",
            "model": str(model), "max_length": 16, **task}
    return {"name": "rt", "workloads": [{"text": text}], "strategies": ["adam"],
            "budget": {"trials": 1, "epochs": 1}, "evaluation": {"seeds": 1}, "data_dir": str(root),
            "storage": str(root / "results")}


def test_the_spec_defines_the_task_and_round_trips(text_data):
    root, model = text_data
    spec = parse_spec(_spec(root, model))
    (workload,) = spec.workloads
    assert workload.name == "rotten_tomatoes" and workload.text and workload.options_dict["dataset"] == "rt"
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec and again.hash == spec.hash


def test_bad_text_tasks_name_the_field(text_data):
    root, model = text_data
    with pytest.raises(SpecError) as err:
        parse_spec({**_spec(root, model), "workloads": [
            {"text": {"name": "imdb", "dataset": "rt"}},
            {"text": {"dataset": "rt"}},
            {"text": {"name": "no_data"}},
            {"text": {"name": "typo", "dataset": "rt", "text_colum": "x"}},
        ]})
    problems = err.value.problems
    assert problems[0].startswith("workloads[0].text.name: 'imdb' is already a registered workload")
    assert problems[1].startswith("workloads[1].text.name: got None")
    assert problems[2].startswith("workloads[2].text: needs its data; allowed: dataset")
    assert problems[3].startswith("workloads[3].text: workload 'typo' has no option 'text_colum'; allowed options:")


@pytest.mark.slow
def test_a_sweep_of_the_named_task_reports_its_name(text_data, capsys):
    root, model = text_data
    path = root / "rt.yaml"
    path.write_text(yaml.safe_dump(_spec(root, model)))
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(path), "--num-cpus", "2"])
    out = capsys.readouterr().out
    assert e.value.code == 0, out
    trials = pd.read_parquet(root / "results" / "rt" / "trials.parquet")
    assert set(trials.workload) == {"rotten_tomatoes"} and (trials.status == "ok").all(), trials.error
    with pytest.raises(SystemExit) as e:
        cli.main(["status", str(root / "results" / "rt")])
    assert e.value.code == 0 and "rotten_tomatoes/adam" in capsys.readouterr().out
