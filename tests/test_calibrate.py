"""Calibrated lr ranges (spec section ``calibrate``, `sweeps.engine.calibrate`): the spec field, and end to end
on a real local Ray with tests/plugins/lr_cliff.py, whose validation and test accuracy is a known
function of the learning rate. ``cliff_above``'s best learning rates [0.5, 2] lie a decade above its
default range [5e-4, 0.05]; ``cliff_inside``'s [0.005, 0.02] inside it."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweeps.commands import cli
from sweeps.engine import calibrate
from sweeps.record.storage import SweepDir, SweepError
from sweeps.spec import SpecError, parse_spec
from sweeps.spec.calibration import Calibration

PLUGIN = Path(__file__).resolve().parent / "plugins" / "lr_cliff.py"
ROOT = Path(__file__).resolve().parent.parent
TRIALS = 10
# The tuned configuration's expected accuracy is within this of the best possible (100%): with
# trial 0 at 0.005 and 9 QMC trials log-uniform in a calibrated range of about 2.2 decades, one trial
# lies within about 0.25 decade below lr* = 0.5 or on the plateau: 1 - 0.25 / 4 = 94%.
MARGIN = 0.10
BEST_LR = {"cliff_inside": 0.005, "cliff_above": 0.5}  # the lowest lr of each strategy's exact plateau


def _spec(name: str, root: Path, calibrate: bool) -> dict:
    return {"name": name, "plugins": [str(PLUGIN)], "workloads": ["tilt"], "strategies": list(BEST_LR),
            "budget": {"trials": TRIALS, "epochs": 1, "sampler": "qmc", "sampler_seed": 0},
            "evaluation": {"seeds": 2}, "resources": {"cpu": 1, "population": TRIALS},
            "storage": str(root / "results"),
            **({"calibrate": {"hparam": "lr", "steps": 150, "min_lr": 1e-4, "max_lr": 10}} if calibrate else {})}


def test_the_section_parses_names_bad_fields_and_leaves_existing_hashes_alone():
    base = {"name": "s", "workloads": ["synthetic"], "strategies": ["fixed_sgd", "adam"], "budget": {"trials": 2}}
    assert parse_spec({**base, "calibrate": "lr"}).calibrate == Calibration()
    assert parse_spec({**base, "calibrate": {"steps": 50, "seed": 3}}).calibrate == Calibration(steps=50, seed=3)
    with pytest.raises(SpecError) as e:
        parse_spec({**base, "calibrate": {"hparam": "momentum", "steps": 5, "min_lr": 0, "max_lr": -1, "x": 1},
                    "search_space": {"adam": {"lr": [1e-4, 1e-2]}}})
    text = str(e.value)
    for expected in ("calibrate.x: unknown field; allowed fields: hparam, steps, min_lr, max_lr, seed",
                     "calibrate.hparam: got 'momentum'; allowed: lr",
                     "calibrate.steps: got 5; allowed: an integer >= 20",
                     "calibrate.min_lr: got 0; allowed: a finite number > 0",
                     "calibrate.max_lr: got -1; allowed: a finite number > 0"):
        assert expected in text
    with pytest.raises(SpecError, match=r"search_space.adam.lr: cannot be combined with calibrate"):
        parse_spec({**base, "calibrate": "lr", "search_space": {"adam": {"lr": [1e-4, 1e-2]}}})
    # Hashes lrsweep computed for sweeps/quick.yaml (as it was before the section existed) then (spec, protocol).
    quick = parse_spec({"name": "quick", "workloads": ["synthetic"], "strategies": "paper",
                        "budget": {"trials": 5, "epochs": 10, "sampler": "tpe", "sampler_seed": 0},
                        "evaluation": {"seeds": "auto", "indifference": 0.5, "confidence": 0.95, "first_seeds": 10,
                                       "batch": 16, "max_seeds": 100, "selection": "final"},
                        "resources": {"cpu": 1, "gpu": 0, "population": "auto"}, "storage": "./results"})
    assert (quick.hash, quick.protocol_hash(quick.workloads[0])) == ("14112a2217306b45", "7799ee36ac1d5e5c")
    calibrated = parse_spec({**quick.to_dict(), "calibrate": "lr"})
    assert calibrated.hash != quick.hash and calibrated.protocol_hash(calibrated.workloads[0]) != "7799ee36ac1d5e5c"
    assert parse_spec(calibrated.to_dict()) == calibrated  # the normalised spec keeps it (a resume reads it)


def _run(root: Path, name: str, calibrate: bool) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_spec(name, root, calibrate)))
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(path), "--num-cpus", "2"])
    assert e.value.code == 0
    return root / "results" / name


def expected_accuracy(lr: float, best: float) -> float:
    """By hand from the plugin's construction: the boundary is turned by (pi / 4) log10(best / lr),
    at most pi / 2 (chance), below ``best``; exact up to 4 best; flipped (0%) above."""
    if lr > 4 * best:
        return 0.0
    return 1 - min(math.pi / 2, math.pi / 4 * max(0.0, math.log10(best / lr))) / math.pi


@pytest.mark.slow
def test_calibration_finds_a_range_a_decade_above_the_default_and_the_edge_warning_the_one_short_pair(tmp_path):
    from reports.analysis import analyse
    from reports.formatting import value
    from reports.load import load_results
    from reports.sections import protocol_section, warnings_section

    def section(make, directory: Path):  # a report's section, without the figures a full report draws
        data = analyse(load_results([str(directory)]), margin=0.005, seed=0, thresholds=(0.6,))
        return make(str(tmp_path / "report"), data)

    # Without calibration: the edge warning fires for cliff_above, and only for it.
    plain = _run(tmp_path, "plain", calibrate=False)
    edges = section(warnings_section, plain).csvs["edge_optima"]
    found = list(zip(edges["strategy"], edges["hparam"], edges["bound"], strict=True))
    assert found == [("cliff_above", "lr", "upper")]
    tuned = pd.read_parquet(plain / "trials.parquet").query("stage == 'seed' and strategy == 'cliff_above'")
    assert max(expected_accuracy(json.loads(h)["lr"], 0.5) for h in tuned["hparams"]) <= 0.75  # by hand

    # With calibration: the range contains lr* and the tuned lr scores within MARGIN of the best possible.
    calibrated = _run(tmp_path, "calibrated", calibrate=True)
    budget = pd.read_parquet(calibrated / "budget.parquet").set_index("strategy")
    record = json.loads((calibrated / "calibration.json").read_text())
    for strategy, best in BEST_LR.items():
        space = json.loads(budget.loc[strategy, "search_space"])["lr"]
        cal = json.loads(budget.loc[strategy, "calibration"])
        assert cal == record["pairs"][f"tilt/{strategy}"] and (space["low"], space["high"]) == (cal["low"], cal["high"])
        assert json.loads(budget.loc[strategy, "default_search_space"])["lr"] == {"low": 5e-4, "high": 0.05,
                                                                                   "scale": "log"}
        assert space["low"] <= best <= space["high"] and space["low"] <= 0.005 <= space["high"]
        seeds = pd.read_parquet(calibrated / "trials.parquet").query(f"stage == 'seed' and strategy == '{strategy}'")
        lr = json.loads(seeds["hparams"].iloc[0])["lr"]
        expected = expected_accuracy(lr, best)
        assert expected >= 1 - MARGIN, (strategy, lr, expected)
        # The measured test accuracy is the formula's, up to the 4000 test rows' sampling (SE <= 0.8 pp).
        assert seeds["test_accuracy_final"].to_numpy() == pytest.approx(expected, abs=0.025)
        assert cal["epochs"] == pytest.approx(cal["steps"] / math.ceil(3600 / 64))  # 4000 rows less 10% held out
    # A resumed or extended sweep reads the ranges back and runs no range test again; another
    # procedure than the one recorded is refused.
    said: list[str] = []
    spec = parse_spec(_spec("calibrated", tmp_path, calibrate=True))
    assert calibrate.calibrate(spec, SweepDir(str(calibrated)), said.append) == record["pairs"] and said == []
    with pytest.raises(SweepError, match="was calibrated by"):
        calibrate.calibrate(replace(spec, calibrate=Calibration(steps=151)), SweepDir(str(calibrated)))
    sec = section(protocol_section, calibrated)
    text = " ".join(str(getattr(b, "text", "")) + " ".join(map(str, getattr(b, "items", []))) for b in sec.blocks)
    assert "Calibrated lr ranges (an LR range test per pair before tuning" in text
    for strategy in BEST_LR:
        lr = json.loads(budget.loc[strategy, "search_space"])["lr"]
        assert f"tilt/{strategy} [{value(lr['low'])}, {value(lr['high'])}] (default [0.0005, 0.05])" in text
    assert "Cost, apart from the tuning budget:" in text


def test_the_protocol_lists_calibrated_beside_default_ranges_and_sums_the_cost_by_hand():
    from reports.sections import calibration_lines
    from sweeps.engine.calibrate import cost_line

    def record(low, high, steps, evals):
        return {"hparam": "lr", "low": low, "high": high, "default_low": 1e-3, "default_high": 0.1, "steps": steps,
                "steps_planned": 300, "min_lr": 1e-6, "max_lr": 10.0, "seed": 0, "grad_evals": evals,
                "epochs": steps / 90, "seconds": 2.5}

    calibrated = {"synthetic/fixed_sgd": record(0.01, 0.506, 265, 265), "synthetic/sam": record(0.02, 0.3, 300, 600)}
    budget = pd.DataFrame([{"workload": "synthetic", "strategy": k.split("/")[1], "calibration": json.dumps(v)}
                           for k, v in calibrated.items()] + [{"workload": "synthetic", "strategy": "adam",
                                                               "calibration": None}])
    (line,) = calibration_lines(budget)
    assert "up to 300 steps from 1e-06 to 10, seed 0" in line
    assert ("synthetic/fixed_sgd [0.01, 0.506] (default [0.001, 0.1]); synthetic/sam [0.02, 0.3] (default "
            "[0.001, 0.1])") in line
    # 265 + 300 steps over 90 batches per epoch = 6.28 epochs; SAM's two passes per step: 265 + 600.
    assert line.endswith("Cost, apart from the tuning budget: 565 steps = 6.28 epochs, 865 gradient evaluations, "
                         "5 s summed over the tests.")
    assert cost_line(calibrated) == ("calibration cost (apart from the tuning budget): 2 range tests, 565 steps = "
                                     "6.28 epochs, 865 gradient evaluations, 5.0 s summed over the tests")
    assert calibration_lines(budget.drop(columns="calibration")) == []
