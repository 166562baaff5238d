"""The report's "Where the variance comes from" section (`reports.variance_report`) on fixture sweeps: two
tuning studies (seeds 1000 j + s, a ``study`` column) with predictions, and a one-study sweep."""

from __future__ import annotations

import os

import numpy as np
import pytest
from results_fixture import add_predictions, write_fixture

from lrstats.studies import variance_split
from reports.document import Figure, Table
from reports.load import load_results
from reports.two_level import correct_matrices
from reports.variance_report import studies_of, variance_section, variance_table

SEEDS = (0, 1, 2, 1000, 1001, 1002)


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("studies"))
    write_fixture(d, workloads=("rte",), strategies=("dals", "adamw"), seeds=SEEDS, diverge=None, tune_trials=3,
                  epochs=3)
    add_predictions(d, rows=120)
    res = load_results([d])
    res.trials = res.trials.assign(study=(res.trials["seed"] // 1000).where(res.trials["stage"] == "seed", 0))
    return d, res


def test_the_table_is_variance_split_of_each_strategys_studies(two_studies):
    _, res = two_studies
    assert studies_of(res, "rte") == 2
    t = variance_table(res, "rte").set_index("strategy")
    runs = correct_matrices(res.predictions, "rte")["dals"]
    y = [np.stack([runs[s] for s in SEEDS[:3]]), np.stack([runs[s] for s in SEEDS[3:]])]
    want = variance_split([100 * a.mean(axis=1) for a in y], y)
    row = t.loc["dals"]
    assert (row["studies"], row["runs"], row["rows"]) == (2, 6, 120)
    assert row["mean"] == pytest.approx(want.mean) and row["ci_low"] == pytest.approx(want.ci_low)
    for key, name in (("tuning", "tuning"), ("seeds", "seeds"), ("rows", "test rows")):
        assert row[f"{key}_var"] == pytest.approx(want.component(name).variance, nan_ok=True)
        assert row[f"{key}_high"] == pytest.approx(want.component(name).high, nan_ok=True)
    assert row["covers"] == "tuning, seeds and test rows"
    assert row[["tuning_share", "seeds_share", "rows_share"]].sum() == pytest.approx(1.0)


def test_the_section_has_a_table_and_a_figure_with_two_studies(two_studies, tmp_path):
    _, res = two_studies
    sec = variance_section(str(tmp_path), res, ["rte"])
    tables = [b for b in sec.blocks if isinstance(b, Table)]
    figures = [b for b in sec.blocks if isinstance(b, Figure)]
    assert len(tables) == 1 and list(tables[0].frame["strategy"]) == ["adamw", "dals"]
    assert "tuning SD, pp (95%)" in tables[0].frame.columns
    assert len(figures) == 1 and os.path.exists(figures[0].png)
    assert set(sec.csvs["variance_split"]["strategy"]) == {"adamw", "dals"}


def test_a_one_study_sweep_gets_one_line(two_studies, tmp_path):
    _, res = two_studies
    res = load_results(res.sweep_dirs)  # no study column: every run is study 0
    sec = variance_section(str(tmp_path), res, ["rte"])
    assert [b.markdown() for b in sec.blocks[1:]] == [
        "One tuning study per pair: the tuning's share of the variance cannot be estimated from one study (it "
        "takes 2 or more: `budget.studies`), and every interval in this report holds the tuning fixed."]
