"""The Python API (`lrsweep.run_sweep` / `resume_sweep`): a real sweep on an embedded local Ray, from
a spec mapping, returning the sweep directory; bad specs raise before anything is written."""

from pathlib import Path

import pandas as pd
import pytest

import lrsweep


def _spec(tmp_path: Path) -> dict:
    return {
        "name": "api",
        "workloads": [{"synthetic": {"n_train": 256}}],
        "strategies": ["adam"],
        "budget": {"trials": 2, "epochs": 1},
        "evaluation": {"seeds": 1},
        "storage": str(tmp_path / "results"),
    }


def test_a_bad_spec_raises_spec_error_and_writes_nothing(tmp_path):
    spec = {**_spec(tmp_path), "strategies": ["no_such_strategy"], "budget": {"trials": 0}}
    with pytest.raises(lrsweep.SpecError) as err:
        lrsweep.run_sweep(spec)
    assert any(p.startswith("strategies[0]") for p in err.value.problems)
    assert any(p.startswith("budget.trials") for p in err.value.problems)
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_run_sweep_returns_the_sweep_directory_and_resume_refuses_a_finished_one(tmp_path):
    lines: list[str] = []
    directory = lrsweep.run_sweep(_spec(tmp_path), num_cpus=2, out=lines.append)
    assert directory == tmp_path / "results" / "api"
    assert pd.read_parquet(directory / "budget.parquet").complete.all()
    assert any(line.startswith("complete:") for line in lines)
    before = {p: p.stat().st_mtime_ns for p in directory.glob("*.parquet")}
    with pytest.raises(lrsweep.SweepError, match="nothing to resume; tables are complete"):
        lrsweep.resume_sweep(directory, num_cpus=2, out=lines.append)
    assert {p: p.stat().st_mtime_ns for p in directory.glob("*.parquet")} == before
    with pytest.raises(lrsweep.SweepError, match="already holds a sweep"):
        lrsweep.run_sweep(_spec(tmp_path))
