"""Tuning studies end to end with known truth, through real `lrsweep` processes on a real local Ray.

tests/plugins/known_truth.py's ``dial`` workload sets each strategy's expected accuracy as a function of its
learning rate: ``broad`` scores 88 % everywhere, ``narrow`` 95 % in a tenth of its range and 80 % elsewhere. As tuned by
a protocol of 3 random trials, ``narrow`` is expected to score 80 + 15 (1 - 0.9^2) = 82.85 %, so the
protocol-level best is ``broad``; but a study that happens to find the window scores ``narrow`` at 95 %.
A one-study sweep on such a study confidently puts ``broad`` below ``narrow`` over seeds; the same
workload tuned in several studies keeps ``broad`` among the strategies that could be the best, over
tuning and seeds, and does not claim it below ``narrow``.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import optuna
import pytest
import yaml
from test_sweep_durable import finish

import search_spaces as ss
from reports.analysis import analyse
from reports.load import load_results
from sweeps.search.searcher import IndexedRandomSampler
from sweeps.spec import catalog

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().parent / "plugins" / "known_truth.py"
TRIALS = 3


def truth():
    spec = importlib.util.spec_from_file_location("known_truth_for_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers dial, broad and narrow in this process too
    return module


def narrow_lrs(seed: int) -> list[float]:
    """The learning rates ``narrow``'s study with sampler seed ``seed`` asks for trials 1..TRIALS-1 (the
    sampler is pinned per index, so this is what the sweep's searcher asks)."""
    space = catalog.space("dial", {}, "narrow")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=IndexedRandomSampler(seed))
    lrs = []
    for index in range(1, TRIALS):
        study.sampler.pin(index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lrs.append(ss.define_by_run(space)(study.ask())["lr"])
    return lrs


def sweep(tmp_path: Path, name: str, sampler_seed: int, studies: int, seeds: int):
    spec = {"name": name, "plugins": [str(PLUGIN)], "workloads": ["dial"], "strategies": ["broad", "narrow"],
            "budget": {"trials": TRIALS, "epochs": 1, "sampler": "random", "sampler_seed": sampler_seed,
                       "studies": studies},
            "evaluation": {"seeds": seeds}, "resources": {"cpu": 1, "population": 8},
            "storage": str(tmp_path / "results")}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out = finish("run", str(path), "--num-cpus", "2")
    assert code == 0, out
    return analyse(load_results([str(tmp_path / "results" / name)]), margin=0.005, seed=0, thresholds=None)


def test_studies_keep_the_protocol_best_that_one_lucky_study_puts_below(tmp_path):
    module = truth()
    expected = module.protocol_truth(TRIALS)
    assert expected["narrow"] == pytest.approx(82.85) and expected["broad"] > expected["narrow"]
    found = {s: any(module.WINDOW[0] <= lr <= module.WINDOW[1] for lr in narrow_lrs(s)) for s in range(60)}
    lucky = min(s for s, hit in found.items() if hit)  # a tuning seed whose one study finds the window

    one = sweep(tmp_path, "one", lucky, studies=1, seeds=4)
    subset = {r.name for r in one.mcb["dial"] if r.could_be_best}
    assert one.verdicts["dial"].leaders[0].strategy == "narrow" and subset == {"narrow"}  # wrong, confidently

    studies = 6
    hits = sum(found[lucky + j] for j in range(studies))
    assert 0 < hits < studies, hits  # some of its studies find the window, as the protocol does
    many = sweep(tmp_path, "many", lucky, studies=studies, seeds=2)
    rows = {r.name: r for r in many.mcb["dial"]}
    assert rows["broad"].could_be_best and rows["broad"].n == studies  # the interval is over studies
    assert "broad" not in many.verdicts["dial"].worse
    scores = many.res.replicates().set_index(["strategy", "study"])["test_accuracy_final"]
    assert sorted(scores.loc["narrow"].round(2).map(lambda a: a > 0.9)) == [False] * (studies - hits) + [True] * hits
    # `lrsweep status` counts a pair's studies together and its interval is the report's, over studies.
    code, out = finish("status", str(tmp_path / "results" / "many"))
    assert code == 0 and "over studies" in out, out
    lead = next(line for line in out.splitlines() if line.startswith("dial/broad"))
    summary = many.summary.set_index("strategy").loc["broad"]
    assert (lead.split()[1], lead.split()[3]) == ("18/18", "12/12")  # 6 studies x 3 trials, 6 x 2 seeds
    assert f"[{100 * summary.ci_low:.1f}, {100 * summary.ci_high:.1f}]" in lead, (lead, summary)
