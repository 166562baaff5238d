"""The report with and without a ``predictions`` table: a sweep written before it reports as before (the
fixture sweep has none), and one with it gets the leader's and each comparison's uncertainty over seeds
and test rows, and a statement per verdict claim."""

import os

import pandas as pd
import pytest
from results_fixture import add_predictions, write_fixture

from reports.cli import main
from reports.formatting import pval
from reports.render import build_report
from reports.two_level import HOLDS


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The same fixture sweep twice: as written before predictions existed, and with them."""
    out = {}
    for name in ("without", "with"):
        d = str(tmp_path_factory.mktemp(name))
        write_fixture(d, workloads=("synthetic", "rte"), strategies=("dals", "adamw", "fixed_sgd"), diverge=None)
        if name == "with":
            add_predictions(d)
        paths = build_report([d], os.path.join(d, "out"))
        with open(paths.markdown, encoding="utf-8") as f:
            out[name] = (d, paths, f.read())
    return out


def test_a_sweep_without_predictions_reports_as_before(sweeps, capsys):
    directory, paths, md = sweeps["without"]
    assert not os.path.exists(os.path.join(directory, "predictions.parquet"))
    assert "over seeds and test rows" not in md.lower() and "two_level" not in paths.csv
    assert main([directory, "--out", os.path.join(directory, "cli")]) == 0  # `lrsweep report`


def test_the_report_gives_each_leader_and_comparison_over_seeds_and_test_rows(sweeps):
    directory, paths, md = sweeps["with"]
    for workload in ("synthetic", "rte"):
        assert f"#### {workload}: over seeds and test rows" in md
    assert md.count("**Over seeds and test rows** (per-row predictions)") == 2
    two = pd.read_csv(paths.csv["two_level"])
    summary = pd.read_csv(paths.csv["summary"])
    for workload, t in two.groupby("workload"):
        lead = t.iloc[0]
        best = summary[(summary.workload == workload) & (summary.outcome == "best")].iloc[0]
        assert lead.a == best.strategy and pd.isna(lead.b)
        assert lead["mean"] == pytest.approx(best["mean"], abs=1e-12)  # the same runs, the same mean
        assert lead.seed_ci_low == pytest.approx(best.ci_low, abs=1e-12)  # seeds only: the report's t interval
        assert lead.ci_low <= lead.seed_ci_low and lead.ci_high >= lead.seed_ci_high
        assert len(t) == 1 + 3  # the leader, then all 3 pairs (the Holm family)


def _pair(table: pd.DataFrame, workload: str, x: str, y: str) -> pd.Series:
    return table[(table.workload == workload) & (((table.a == x) & (table.b == y)) | ((table.a == y) & (table.b == x)))
                 ].iloc[0]


def test_each_verdict_claim_is_a_row_saying_whether_it_survives_the_test_sample(sweeps):
    _, paths, md = sweeps["with"]
    verdict = pd.read_csv(paths.csv["verdict"])
    worse = verdict[verdict.verdict == "worse"]
    assert len(worse)  # the fixture's strategies differ enough for some claims
    two = pd.read_csv(paths.csv["two_level"])
    pairs = pd.read_csv(paths.csv["pairwise_all"])
    for r in worse.itertuples():
        for winner in r.detail.removeprefix("below ").split():
            rows, seeds = (_pair(t, r.workload, r.strategy, winner) for t in (two, pairs))
            holds = "**holds**" if rows.p_holm < 0.05 else "does not survive"
            assert (f"| {r.strategy} | {winner} | {rows.seeds} | shown worse (Holm p {pval(seeds.p_t_holm)}) | "
                    f"{holds} | {pval(rows.p_holm)} |") in md
    assert md.count("| strategy | behind | seeds | over seeds | over seeds and test rows | p (seeds and rows) |") == 2
    assert HOLDS not in md.split("## Verdict")[1].split("## Protocol")[0]  # the table's words, not a paragraph
