"""`lrsweep reproduce`: its spec, the Bayes ceiling, the report from a Parquet fixture, and one real
end-to-end run (real Ray Tune, real Parquet) through the CLI."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrresults.store import read_table, write_table
from reports.reproduce import build_reproduction_report, read_ceilings, reproduction_rows, write_ceilings
from sweeps.commands.reproduce import parse_repro_spec
from sweeps.spec import SpecError

PROJECT = Path(__file__).resolve().parent.parent
T_975_2DF = 4.302652729749464  # Student t quantile 0.975 with 2 degrees of freedom


# --- the Bayes ceiling --------------------------------------------------------------------------

def test_bayes_ceiling_is_the_argmax_of_the_noisy_signal_on_the_test_rows():
    from trainables.workloads.synthetic import bayes_ceiling

    # Directly from DESIGN.md's definition of the data.
    g = torch.Generator().manual_seed(42)
    x = torch.randn(8000, 64, generator=g)
    y = (3 * x[:, :10]).argmax(dim=1)
    x = x + 0.1 * torch.randn(8000, 64, generator=g)
    correct = int((x[6400:, :10].argmax(dim=1) == y[6400:]).sum())
    assert bayes_ceiling() == correct / 1600
    assert 0.92 < bayes_ceiling() < 0.93  # DESIGN.md: 92.4%


# --- the spec -----------------------------------------------------------------------------------

def test_spec_expands_variants_and_seeds_and_reports_every_problem():
    spec = parse_repro_spec({"name": "r", "workloads": ["synthetic"], "strategies": ["*@paper_code", "lars"],
                             "seeds": {"first": 42, "more": 2}})
    assert len(spec.strategies) == 19 and spec.strategies[-1] == "lars"
    assert spec.seeds == (42, 43, 44) and spec.workloads[0].epochs == 80
    every = parse_repro_spec({"name": "r", "workloads": ["synthetic"], "strategies": ["*"]})
    assert len(every.strategies) == 18 and "muon" not in every.strategies  # the paper's only, never the modern
    with pytest.raises(SpecError, match=r"strategies\[0\]: 'muon' matches no strategy"):
        parse_repro_spec({"name": "r", "workloads": ["synthetic"], "strategies": ["muon"]})
    sweep = spec.as_sweep_spec()
    assert (sweep.budget.trials, sweep.budget.sampler, sweep.evaluation.seeds) == (0, "none", 3)
    with pytest.raises(SpecError) as err:
        parse_repro_spec({"name": "r", "protocol": "fair", "workloads": ["mnist"], "strategies": ["nope*"],
                          "seeds": {"more": -1}, "hparams": {"lars": {"lr": -1}}, "tuning": 3})
    text = str(err.value)
    for field in ("protocol: got 'fair'; allowed: paper", "workloads[0]: unknown workload 'mnist'",
                  "strategies[0]: 'nope*' matches no strategy", "seeds.more: got -1",
                  "tuning: unknown field"):
        assert field in text


# --- the report from a Parquet fixture -----------------------------------------------------------

def _trial(strategy, seed, best, final, stage="seed"):
    """A trials row; columns this test does not care about get a neutral value from the schema."""
    import pyarrow as pa

    from lrresults.schema import TABLES

    given = _given(strategy, seed, best, final, stage)
    neutral = {pa.string(): "scratch", pa.float64(): 0.0, pa.int32(): 0, pa.int64(): 0, pa.bool_(): False}
    return {c.name: given.get(c.name, None if c.nullable else neutral[c.type]) for c in TABLES["trials"]}


def _given(strategy, seed, best, final, stage):
    return {"sweep_id": "fixture", "spec_hash": "0" * 16, "workload": "synthetic", "strategy": strategy,
            "generation": "5", "stage": stage, "trial_id": f"{strategy}-{seed}", "trial_index": 0,
            "canonical": True, "seed": seed, "hparams": "{}", "status": "ok", "error": None,
            "val_accuracy_final": None, "val_accuracy_best": None, "test_accuracy_final": final,
            "test_accuracy_best": best, "train_loss_final": 0.1, "epochs_planned": 80, "epochs_run": 80,
            "wall_seconds": 1.0, "device": "cpu", "versions": json.dumps({})}


@pytest.fixture
def fixture_dirs(tmp_path):
    repro, fair = tmp_path / "repro", tmp_path / "fair"
    rows = [_trial("stlr_discriminative@paper_code", s, b, f)
            for s, b, f in ((42, 0.753, 0.750), (43, 0.760, 0.755), (44, 0.746, 0.740))]
    rows += [_trial("stlr_discriminative", s, b, f) for s, b, f in ((42, 0.84, 0.83), (43, 0.85, 0.84),
                                                                    (44, 0.86, 0.85))]
    rows += [_trial("fixed_sgd@paper_code", 42, 0.85875, 0.85)]
    write_table("trials", rows, str(repro))
    write_ceilings([{"workload": "synthetic", "ceiling": 0.924375, "rule": "argmax"}], str(repro))
    write_table("trials", [_trial("stlr_discriminative", s, 0.9, f) for s, f in ((0, 0.86), (1, 0.88))]
                + [_trial("stlr_discriminative", 0, None, None, stage="tune")], str(fair))
    return str(repro), str(fair)


def test_report_rows_from_parquet_match_hand_computed_numbers(fixture_dirs):
    repro, fair = fixture_dirs
    assert read_ceilings(repro) == {"synthetic": 0.924375}
    rows = {r.strategy: r for r in reproduction_rows([repro], [fair])}
    stlr = rows["stlr_discriminative"]
    assert (stlr.paper_table, stlr.reference_code, stlr.ceiling) == (95.9, 75.3125, pytest.approx(92.4375))
    # paper code: best 75.3, 76.0, 74.6 -> mean 75.3, SD 0.7; final 75.0, 75.5, 74.0 -> 74.8333
    half = T_975_2DF * 0.7 / math.sqrt(3)
    assert stlr.paper_code.best == pytest.approx(75.3)
    assert stlr.paper_code.best_ci == pytest.approx((75.3 - half, 75.3 + half))
    assert stlr.paper_code.final == pytest.approx(224.5 / 3)
    assert stlr.paper_code.first_seed_best == pytest.approx(75.3)
    assert stlr.corrected.best == pytest.approx(85.0) and stlr.corrected.final == pytest.approx(84.0)
    assert stlr.fair.final == pytest.approx(87.0) and stlr.fair.n == 2  # the tune row is not a seed run
    gaps = "; ".join(stlr.gaps)
    for label in ("above ceiling: table 95.9 > Bayes ceiling 92.4", "table vs code: +20.6",
                  "RNG/library: seed-42 rerun -0.01 vs committed (reproduced)", "seed: seed 42 +0.00 vs the 3-seed",
                  "defect: corrected +9.70 vs paper code", "selection on test: best-over-epochs +0.47",
                  "tuning: fair tuned final +3.00 vs untuned final"):
        assert label in gaps
    fixed = rows["fixed_sgd"]
    assert fixed.corrected is None and fixed.paper_code.n == 1 and math.isnan(fixed.paper_code.best_ci[0])
    assert not any(g.startswith(("seed:", "defect:")) for g in fixed.gaps)


def test_report_files_say_the_table_lies_above_the_ceiling_and_stlr_collapses(fixture_dirs, tmp_path):
    repro, fair = fixture_dirs
    md, page = build_reproduction_report([repro], [fair], str(tmp_path / "out"))
    text = Path(md).read_text()
    assert "the Bayes ceiling computed from the generated data is 92.44%; 2 of 2 published figures" in text
    assert "STLR's paper code collapses to 75.3%" in text and "corrected STLR reaches 85.0%" in text
    assert "| stlr_discriminative | 95.9 | 75.31 | 75.30 |" in text
    assert "<table>" in Path(page).read_text() and "arXiv 2604.27295" in text


# --- end to end through the CLI, real Ray Tune --------------------------------------------------

def _lrsweep(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "sweeps.commands.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_bad_reproduction_spec_exits_2_naming_the_field(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: r\nworkloads: [synthetic]\nstrategies: ['stlr_discriminative[paper_code]']\n")
    result = _lrsweep("reproduce", str(spec), cwd=tmp_path)
    assert result.returncode == 2
    assert "strategies[0]: 'stlr_discriminative[paper_code]' matches no strategy" in result.stderr
    assert not (tmp_path / "results").exists()


def test_reproduce_runs_the_paper_protocol_on_ray_and_writes_sweep_tables(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text(
        "name: tiny\nworkloads: [{synthetic: {n_train: 256}}]\nepochs: 2\n"
        "strategies: ['stlr_discriminative@paper_code', stlr_discriminative]\n"
        f"seeds: {{first: 42, more: 1}}\nstorage: {tmp_path / 'results'}\nmax_concurrent: 2\n")
    result = _lrsweep("reproduce", str(spec), "--num-cpus", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    root = tmp_path / "results" / "tiny"
    trials = read_table("trials", str(root)).to_pylist()
    assert sorted((t["strategy"], t["seed"]) for t in trials) == [
        ("stlr_discriminative", 42), ("stlr_discriminative", 43),
        ("stlr_discriminative@paper_code", 42), ("stlr_discriminative@paper_code", 43)]
    assert all(t["stage"] == "seed" and t["status"] == "ok" and t["epochs_run"] == 2 for t in trials)
    assert len(read_table("epochs", str(root))) == 8
    budget = read_table("budget", str(root)).to_pylist()
    assert all(b["trials_planned"] == 0 and b["seeds_run"] == 2 and b["complete"] for b in budget)
    # The same seed-42 run outside Ray gives the same numbers: the reproduction adds nothing.
    from trainables import run_trial

    direct = run_trial({"workload": "synthetic", "workload_options": {"n_train": 256}, "epochs": 2,
                        "strategy": "stlr_discriminative@paper_code", "seed": 42, "stage": "seed",
                        "rng_order": "paper"})
    ray_row = next(t for t in trials if t["strategy"].endswith("@paper_code") and t["seed"] == 42)
    assert ray_row["test_accuracy_final"] == direct[-1]["test_accuracy"]
    assert read_ceilings(str(root))["synthetic"] == pytest.approx(0.924375)
    assert (root / "report" / "reproduction.md").exists() and (root / "report" / "reproduction.html").exists()
    again = _lrsweep("reproduce", str(spec), cwd=tmp_path)  # the directory is taken: refused, exit 2
    assert again.returncode == 2 and "already holds a reproduction" in again.stderr


def test_reproduce_report_refuses_a_directory_without_tables(tmp_path, fixture_dirs):
    result = _lrsweep("reproduce-report", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2 and "no trials.parquet" in result.stderr
    repro, fair = fixture_dirs
    result = _lrsweep("reproduce-report", repro, "--fair", fair, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "reproduction.html").exists()


def test_cifar10_without_augmentation_trains_on_the_plain_normalised_images():
    from trainables.workloads.cifar10 import MEAN, STD, ImageSplit

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    index = torch.arange(4)
    plain = ImageSplit(images, torch.zeros(4, dtype=torch.int64), augment=False).to(torch.device("cpu"))
    expected = (images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.allclose(plain.batch(index, True, torch.Generator().manual_seed(0)), expected, atol=1e-5)
    augmented = ImageSplit(images, torch.zeros(4, dtype=torch.int64))
    assert not torch.allclose(augmented.batch(index, True, torch.Generator().manual_seed(0)), expected, atol=1e-5)


@pytest.mark.parametrize("name, corrected", [("reproduce-synthetic.yaml", 5), ("reproduce-cifar10.yaml", 5),
                                             ("reproduce-rte.yaml", 0)])
def test_shipped_reproduction_specs_validate(name, corrected):
    from sweeps.commands.reproduce import load_repro_spec

    spec = load_repro_spec(PROJECT / "sweeps" / name)
    assert len(spec.strategies) == 18 + corrected and spec.seeds == (42, 43, 44, 45, 46)
    assert sum(s.endswith("@paper_code") for s in spec.strategies) == 18
