"""The verdict against known truths: it finds a real 3 pp gap, shows near-equal strategies equivalent, and
under a global null calls some strategy worse in at most 5% of simulated sweeps (issue #18)."""

import html
import re

import pandas as pd
import pytest
import scipy.stats
from results_fixture import make_rows, write_fixture

from reports import analysis, build_report, tables
from reports.load import Results, load_results
from reports.options import DEFAULT_MARGIN
from reports.verdict import any_called_worse

MARGIN = DEFAULT_MARGIN  # the TOST equivalence margin, 0.5 pp
SEEDS = tuple(range(10))
#: Seed noise (fractions): 0.3 pp per seed shared by all strategies (pairing removes it), 0.1 pp each run's
#: own and 0.1 pp on each epoch; paired differences then have an SD of about 0.2 pp.
NOISE = {"shared_sd": 0.003, "seed_sd": 0.001, "epoch_sd": 0.001}
#: True mean offsets: three equal, lion 0.05 pp below them, fixed_sgd 3 pp below.
TRUTH = {"dals": 0.0, "adamw": 0.0, "sgdr": 0.0, "lion": -0.0005, "fixed_sgd": -0.03}
REPLICATES = 400
NULL_STRATEGIES = ("dals", "adamw", "sgdr", "lion")


def test_verdict_finds_the_worse_strategy_and_the_equivalent_ones(tmp_path):
    """One sweep from known truths through the report: only fixed_sgd is shown worse, the other non-leaders
    equivalent within the margin (an exact verdict that about 90% of draws give; rng_seed 0, the default)."""
    sweep = str(tmp_path / "sweep")
    write_fixture(sweep, workloads=("synthetic",), strategies=tuple(TRUTH), seeds=SEEDS, tune_trials=3,
                  diverge=None, offsets=TRUTH, **NOISE)
    paths = build_report([sweep], str(tmp_path / "out"), margin=MARGIN)
    data = analysis.analyse(load_results([sweep]), margin=MARGIN, seed=0, thresholds=None)
    v = data.verdicts["synthetic"]

    means = data.summary.set_index("strategy")["mean"]
    assert means["dals"] - means["fixed_sgd"] == pytest.approx(0.03, abs=0.003)  # the fixture hit the truth
    leaders = {lead.strategy for lead in v.leaders}
    equal = set(TRUTH) - {"fixed_sgd"}
    assert leaders <= equal and len(leaders) == 1
    assert list(v.worse) == ["fixed_sgd"] and set(v.worse["fixed_sgd"]) == equal
    assert set(v.equivalent) == equal - leaders
    assert v.inconclusive == () and v.untested == () and v.margin == MARGIN

    with open(paths.html, encoding="utf-8") as f:
        box = re.search(r'<div class="box verdict" id="verdict">(.*?)</div>', f.read(), re.S).group(1)
    text = html.unescape(re.sub(r"<[^>]+>", "", box))
    (leader,) = leaders
    assert f"Highest mean final test accuracy: {leader} " in text
    assert "Shown worse (1 of 4;" in text and f": fixed_sgd (below {', '.join(sorted(equal))})." in text
    assert (f"Shown equivalent to the leader within +-{100 * MARGIN:g} pp (TOST, Holm over all pairs): "
            f"{', '.join(sorted(equal - leaders))}.") in text
    assert "Inconclusive" not in text


def _null_verdict(rng_seed: int):
    """One simulated sweep with every strategy equal in truth, in memory, through the tables and verdict
    functions `analysis.analyse` uses (no Parquet, figures or HTML)."""
    rows = make_rows(workloads=("synthetic",), strategies=NULL_STRATEGIES, seeds=SEEDS, tune_trials=1, epochs=2,
                     diverge=None, rng_seed=rng_seed, offsets=dict.fromkeys(NULL_STRATEGIES, 0.0), **NOISE)
    res = Results([], *(pd.DataFrame(rows[name]) for name in ("trials", "epochs", "budget")))
    all_pairs = tables.pairwise_all(res, margin=MARGIN)
    summary, vs_best = tables.summary_and_vs_best(res, margin=MARGIN, all_pairs=all_pairs)
    return analysis.verdicts(summary, all_pairs, vs_best, MARGIN)["synthetic"]


def test_global_null_calls_a_strategy_worse_in_at_most_5_percent_of_400_sweeps():
    """400 simulated sweeps of 4 equal strategies x 10 seeds: the count whose verdict calls any strategy
    worse must not exceed the one-sided binomial bound of a 5% rate (99th percentile of Binomial(400, 0.05))."""
    bound = int(scipy.stats.binom.ppf(0.99, REPLICATES, 0.05))
    called = sum(any_called_worse(_null_verdict(10_000 + r)) for r in range(REPLICATES))
    assert called <= bound, (f"{called} of {REPLICATES} null replicates ({called / REPLICATES:.1%}) called a "
                             f"strategy worse; a 5% family-wise error allows at most {bound}")

