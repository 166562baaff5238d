"""The report of a selection-design sweep speaks of the design that was run: no warning contradicts the
verdict (a selection that stopped with its guarantee is not told its seeds are too few for the margin,
which a fixed design of the same runs is), and the verdict's claims over seeds and test rows are one
table row each (strategy, behind whom, at how many seeds, what the seeds showed, whether it holds over
seeds and test rows, p), in the Markdown and in the HTML.

The fixture is a fixed-design sweep of 40 seeds per strategy, with predictions, cut to what Kim & Nelson's
procedure would have asked: each eliminated strategy keeps the seeds it had when it fell out, each
contender the seeds of the last screening; the budget table then records the selection design.
"""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pyarrow as pa
import pytest
from results_fixture import add_predictions, write_fixture

from lrresults.store import write_table
from lrstats.replay import replay
from lrstats.selection import SelectionSettings, decide
from reports.analysis import analyse
from reports.formatting import pval
from reports.load import load_results
from reports.render import build_report
from reports.seed_claims import selection_warnings
from reports.verdict import SelectionVerdict

STRATEGIES = ("dals", "sgdr", "adamw", "fixed_sgd")
#: True mean offsets (fractions): dals leads sgdr by 0.6 pp, beyond the 0.5 pp zone; the others trail far.
APART = {"dals": 0.0, "sgdr": -0.006, "adamw": -0.03, "fixed_sgd": -0.05}
#: dals and sgdr 0.1 pp apart: inside the zone, so a cap at the first stage (5 seeds) stops the procedure.
CLOSE = {"dals": 0.0, "sgdr": -0.001, "adamw": -0.03, "fixed_sgd": -0.05}


def fixed_sweep(directory: str, offsets: dict[str, float]) -> None:
    write_fixture(directory, workloads=("synthetic",), strategies=STRATEGIES, seeds=range(40), offsets=offsets,
                  tune_trials=3, epochs=4, diverge=None, seed_sd=0.004)
    add_predictions(directory, rows=1600)


def write(name: str, frame: pd.DataFrame, directory: str) -> None:
    write_table(name, pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), directory)


def as_selection(directory: str, settings: dict) -> object:
    """Cut the fixed sweep under ``directory`` to the seeds KN asks for under ``settings`` and record the
    selection design; returns KN's decision."""
    trials = pd.read_parquet(os.path.join(directory, "trials.parquet"))
    seed = trials[trials.stage == "seed"]
    rows = [(r.strategy, int(r.seed), 100 * float(r.test_accuracy_final)) for r in seed.itertuples()]
    d = replay(rows, SelectionSettings(**settings), STRATEGIES).decision
    assert d is not None and d.stopped
    given = {**d.eliminated, **dict.fromkeys(d.contenders, d.r)}
    dropped = set(seed.loc[[int(r.seed) >= given[r.strategy] for r in seed.itertuples()], "trial_id"])
    for name in ("trials", "epochs", "predictions"):
        table = pd.read_parquet(os.path.join(directory, f"{name}.parquet"))
        write(name, table[~table.trial_id.isin(dropped)], directory)
    budget = pd.read_parquet(os.path.join(directory, "budget.parquet"))
    budget = budget.assign(seed_design="selection", selection_settings=json.dumps(settings, sort_keys=True),
                           seeds_planned=settings["first_seeds"], seeds_run=budget.strategy.map(given),
                           seeds_asked=budget.strategy.map(given))
    write("budget", budget, directory)
    return d


def settings(max_seeds: int) -> dict:
    return {"indifference": 0.5, "confidence": 0.95, "first_seeds": 5, "batch": 5, "max_seeds": max_seeds}


def section(md: str, title: str) -> str:
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start:end if end > 0 else len(md)]


def warnings(md: str) -> list[str]:
    return [line[2:] for line in section(md, "Warnings").splitlines() if line.startswith("- ")]


def verdict_table(md: str) -> pd.DataFrame:
    """The verdict's claims table, as a reader sees it in the Markdown."""
    lines = [line for line in section(md, "Verdict").splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return pd.DataFrame(cells[2:], columns=cells[0])


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """name -> (markdown, html, decision or None, sweep directory): a selection that stopped with its guarantee,
    the same runs reported as a fixed design, and a selection the cap stopped."""
    out = {}
    for name, offsets, cap in (("fixed", APART, None), ("stopped", APART, 40), ("capped", CLOSE, 5)):
        directory = str(tmp_path_factory.mktemp(name))
        fixed_sweep(directory, offsets)
        budget = pd.read_parquet(os.path.join(directory, "budget.parquet"))
        decision = as_selection(directory, settings(cap or 40))
        if name == "fixed":  # the stopped selection's runs, reported as a fixed design
            write("budget", budget, directory)
            decision = None
        paths = build_report([directory], os.path.join(directory, "out"))
        with open(paths.markdown, encoding="utf-8") as f, open(paths.html, encoding="utf-8") as g:
            out[name] = (f.read(), g.read(), decision, directory)
    return out


def test_the_fixture_selection_stops_with_its_guarantee_where_a_fixed_design_warns_of_too_few_seeds(reports):
    md, _, _, directory = reports["fixed"]
    data = analyse(load_results([directory]), margin=0.005, seed=0, thresholds=None)
    assert data.verdicts["synthetic"].median_mdd() > 0.005  # the seeds cannot resolve the margin by t-test
    assert [w for w in warnings(md) if "seeds are too few for the +-0.5 pp margin" in w]
    _, _, d, _ = reports["stopped"]
    assert d.stopped and not d.capped and d.selected == "dals" and d.eliminated


def test_no_warning_contradicts_a_selection_that_stopped_with_its_guarantee(reports):
    md, _, d, _ = reports["stopped"]
    assert f"**Selected: {d.selected}** (" in section(md, "Verdict") and "Guarantee: " in md
    # The same runs: a fixed design is told its seeds are too few; the selection, which took as many as
    # the data needed to give its guarantee, is told nothing about its seeds at all.
    # (The tuning-curve warning measures a curve's rise against the margin: about the tuning, not the seeds.)
    seed_words = [w for w in warnings(md) if not w.startswith("synthetic: tuning curves")]
    assert warnings(md) and not [w for w in seed_words if "seeds" in w or "margin" in w]
    power = next(line for line in md.splitlines() if line.startswith("**Power**"))
    assert "the selection itself needs no such number of seeds, and its guarantee is in the verdict" in power


def test_a_selection_stopped_by_its_cap_is_warned_of_exactly_that(reports):
    md, _, d, _ = reports["capped"]
    assert d.capped and len(d.contenders) > 1
    assert f"**Selected: {d.selected}, without a guarantee.**" in section(md, "Verdict")
    about = [w for w in warnings(md) if "seeds" in w]
    assert about == [f"synthetic: the cap of 5 seeds per strategy stopped the selection with {len(d.contenders)} "
                     f"strategies in contention ({', '.join(d.contenders)}): the strategy it names carries no "
                     "guarantee. A higher max_seeds or a wider indifference zone (now 0.5 pp) lets Kim & Nelson's "
                     "procedure finish."]


def test_each_elimination_is_one_row_of_the_verdict_table_with_its_test_over_seeds_and_rows(reports):
    md, html, d, directory = reports["stopped"]
    table = verdict_table(md)
    assert list(table.columns) == ["strategy", "behind", "seeds", "over seeds", "over seeds and test rows",
                                   "p (seeds and rows)"]
    behind = {name: by for r in d.rounds for name, by in r.eliminated.items()}
    assert sorted(table.strategy) == sorted(d.eliminated)
    two = pd.read_csv(os.path.join(directory, "out", "csv", "two_level.csv"))
    for r in table.itertuples(index=False):
        strategy, winner, seeds, seed_words, rows_words, p = r
        assert winner == behind[strategy] and int(seeds) == d.eliminated[strategy]
        assert seed_words == "eliminated (KN)"
        pair = two[((two.a == strategy) & (two.b == winner)) | ((two.a == winner) & (two.b == strategy))].iloc[0]
        assert int(pair.seeds) == int(seeds)
        assert rows_words == ("**holds**" if pair.p_holm < 0.05 else "does not survive")
        assert p == pval(pair.p_holm)
    # Ordered as the elimination line: the most seeds first, then by name.
    order = list(zip(-table.seeds.astype(int), table.strategy, strict=True))
    assert order == sorted(order)
    # The HTML draws the same table inside the verdict box.
    box = html[html.index('<div class="box verdict"'):]
    box = box[:box.index("</div>")]
    assert "<th>behind</th>" in box and box.count("<tr>") == 1 + len(table)
    for r in table.itertuples(index=False):
        assert f"<tr><td>{r.strategy}</td><td>{r.behind}</td><td>{r.seeds}</td>" in box


def test_a_selection_not_yet_finished_is_warned_that_nothing_is_selected():
    s = SelectionSettings(**settings(40))
    scores = {"a": [80.0, 84.0, 76.0, 82.0, 78.0], "b": [81.0, 77.0, 83.0, 79.0, 80.0]}
    d = decide(scores, s)
    assert not d.stopped and d.closes_at
    v = SelectionVerdict("coin", 2, s, d)
    assert selection_warnings(v) == [
        f"coin: the selection has not finished ({d.reason}): nothing is selected and no guarantee holds yet; it "
        f"ends by {d.closes_at} seeds per strategy at the latest. `lrsweep resume` continues it."]
    assert selection_warnings(SelectionVerdict("coin", 2, s, None)) == []


def test_the_workload_tables_claims_over_test_rows_are_the_selections_eliminations(reports):
    md, _, d, _ = reports["stopped"]
    behind = {name: by for r in d.rounds for name, by in r.eliminated.items()}
    table = md[md.index("#### synthetic: over seeds and test rows"):]
    table = table[:table.index("\n####", 1)]
    lines = [line for line in table.splitlines() if line.startswith(f"| {d.selected} - ")]
    assert len(lines) == len(behind) + len(d.contenders) - 1  # the leader against every other strategy
    for line in lines:
        other = line.split(" | ")[0].removeprefix(f"| {d.selected} - ")
        claim = line.rstrip(" |").split(" | ")[-1]
        if behind.get(other) == d.selected:
            assert claim.startswith("eliminated: ") and ("holds" in claim or "does not survive" in claim), line
        else:  # eliminated behind another strategy, or never: the selection claims nothing against the leader
            assert claim == "no claim over seeds", line
