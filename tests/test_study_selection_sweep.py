"""The selection design over tuning studies (``budget.studies: auto``) end to end, through real `lrsweep`
processes on a real local Ray: one small sweep, killed (SIGKILL) after its first screening asked for more
studies, then resumed, stops with a study-level decision; the resumed driver asks for exactly the studies the
decision implies, and the decision equals a replay of the whole record by a fresh ``StudyRounds``.
(That a rebuilt searcher asks trial for trial what an uninterrupted one asks, at any kill point, is
tests/test_study_rounds.py's, without Ray.)

tests/plugins/known_truth.py's ``coin`` workload and ``oracle`` strategies have expected test accuracies set
by construction (90, 88.5 and 80 %), whatever their learning rate, so each study's score is its seed run's
and the truth is known: oracle90 leads oracle88 by 1.5 pp, more than the 1 pp zone, so KN over studies
selects it with probability at least 95% (the draws here are fixed by the seeds) and eliminates the others.
With k = 3, n0 = 4 studies and 95%, h^2 = 19.1 (`kn_constants`): a study difference of SD about 1.1 pp keeps
oracle88 in contention after the first stage, so it gets more studies, added by the searcher.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_sweep_durable import finish, kill_group, lrsweep

from sweeps.designs.rounds import StudyRounds, studies_asked

pytestmark = pytest.mark.slow

PLUGIN = Path(__file__).resolve().parent / "plugins" / "known_truth.py"
SELECTION = {"indifference": 1.0, "confidence": 0.95, "first_studies": 4, "batch": 2, "max_studies": 12}
SPEC = {"plugins": [str(PLUGIN)], "workloads": ["coin"], "strategies": ["oracle90", "oracle88", "oracle80"],
        "budget": {"trials": 1, "epochs": 1, "sampler": "random", "studies": "auto", "study_selection": SELECTION},
        "evaluation": {"seeds": 1}, "resources": {"cpu": 1, "population": 8}}


def record(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "record" / "selection" / "coin.json").read_text())
    except (FileNotFoundError, ValueError):  # not yet written, or mid-write
        return None


def test_a_selection_over_studies_killed_after_its_first_screening_resumes_to_its_decision(tmp_path):
    from lrstats.selection import SelectionSettings
    from reports import build_report
    from sweeps.observers.progress import status

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": "s", "storage": str(tmp_path / "results")}))
    directory = tmp_path / "results" / "s"
    # Each run record's write is held open, so the kill lands after the first screening and before the end.
    proc = lrsweep("run", str(spec), "--num-cpus", "2", env={"LRSWEEP_PAUSE_AT": "run", "LRSWEEP_PAUSE_SECONDS": "1"})
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        before = record(directory)
        if before is not None and before["decision"]["rounds"] and not before["decision"]["stopped"]:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read()
    kill_group(proc)
    assert not (directory / "budget.parquet").exists()
    code, out = finish("resume", str(directory), "--num-cpus", "2")
    assert code == 0, out

    after = record(directory)
    d = after["decision"]
    assert d["stopped"] and not d["capped"] and d["selected"] == "oracle90", d
    assert d["eliminated"]["oracle80"] == 4 and d["eliminated"]["oracle88"] > 4  # a second round was needed
    assert d["rounds"][0] == before["decision"]["rounds"][0]  # the screening before the kill stands
    assert [a for a in after["asked"] if a["strategy"] == "oracle88"][:2] == [
        {"strategy": "oracle88", "studies": [0, 4], "why": "the first stage: every strategy"},
        {"strategy": "oracle88", "studies": [4, 6], "why": "in contention after the screening at 4 studies"}]
    # Each study the decision asked for ran once, tuned and retrained (seed 1000 j), and no other.
    trials = pd.read_parquet(directory / "trials.parquet")
    settings = SelectionSettings(**{"indifference": 1.0, "confidence": 0.95, "first_seeds": 4, "batch": 2,
                                    "max_seeds": 12})
    fresh = StudyRounds(settings, {f"coin/{s}": ("coin", s) for s in SPEC["strategies"]}, per_study=1)
    for r in trials.query("stage == 'seed'").itertuples():
        fresh.scored(f"coin/{r.strategy}#study{r.study}", int(r.seed), 100 * r.test_accuracy_final)
    fresh.ask("coin")
    assert json.loads(fresh.record("coin")) == after  # the decision is a replay of the record, nothing more
    wanted = {(a.strategy, j) for a in studies_asked(fresh.workloads["coin"].decision, SPEC["strategies"], 4)
              for j in a.studies}
    for stage in ("tune", "seed"):
        ran = trials.query(f"stage == '{stage}'")
        assert sorted(zip(ran.strategy, ran.study, strict=True)) == sorted(wanted), stage
    assert sorted(trials.query("stage == 'seed' and strategy == 'oracle90'").seed) == [1000 * j for j in range(6)]
    budget = pd.read_parquet(directory / "budget.parquet").set_index("strategy")
    assert budget.complete.all() and (budget.seed_design == "study_selection").all()
    assert budget.studies.to_dict() == {"oracle90": d["r"], "oracle88": d["eliminated"]["oracle88"], "oracle80": 4}

    build_report([str(directory)])
    text = (directory / "report" / "report.md").read_text()
    assert f"Selected: oracle90 after {d['r']} tuning studies" in text
    assert "Kim & Nelson's KN with the tuning study as the replicate" in text
    assert "oracle80 at 4 (behind oracle90)" in text
    verdict = pd.read_csv(directory / "report" / "csv" / "verdict.csv").set_index("strategy").verdict.to_dict()
    assert verdict == {"oracle90": "selected", "oracle88": "eliminated", "oracle80": "eliminated"}
    lines = []
    assert status(str(directory), out=lines.append) == 0
    assert f"selection over studies, coin: {d['reason']}" in lines and "state: complete" in lines, lines
