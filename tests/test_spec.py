"""Sweep spec validation: every malformed spec is refused by the CLI with exit status 2, a message
naming the field and the allowed values, all problems at once, and nothing written."""

from pathlib import Path

import pytest
import yaml

from sweeps.commands import cli
from sweeps.spec import SpecError, load_spec, parse_spec

SWEEPS = Path(__file__).resolve().parent.parent / "sweeps"

BASE = {
    "name": "t",
    "workloads": [{"synthetic": {"n_train": 256}}],
    "strategies": ["fixed_sgd", "adam", "dals"],
    "budget": {"trials": 3, "epochs": 2, "sampler": "tpe", "sampler_seed": 0},
    "evaluation": {"seeds": 2, "selection": "final"},
}


def spec_with(**changes) -> dict:
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node, *path, last = dotted.split("__")
        target = spec
        for key in [node, *path]:
            target = target.setdefault(key, {})
        if value is DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return spec


DELETE = object()


def top(field, value):
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    if value is DELETE:
        spec.pop(field)
    else:
        spec[field] = value
    return spec


MALFORMED = {
    "missing name": (top("name", DELETE), "name: got None; allowed: a non-empty name"),
    "bad name": (top("name", "a b/c"), "name: got 'a b/c'; allowed"),
    "unknown top field": ({**BASE, "budgets": {"synthetic/dals": 99}},
                           "budgets: unknown field; allowed fields: name"),
    "no workloads": (top("workloads", []), "workloads: must be a non-empty list"),
    "unknown workload": (top("workloads", ["mnist"]), "workloads[0]: unknown workload 'mnist'; allowed: "),
    "bad workload option": (top("workloads", [{"synthetic": {"colour": 1}}]),
                            "workloads[0].synthetic: workload 'synthetic' has no option 'colour'"),
    "workload twice": (top("workloads", ["synthetic", "synthetic"]),
                        "workloads[1]: workload 'synthetic' is listed twice"),
    "unknown strategy": (top("strategies", ["dals", "sgd_magic"]),
                          "strategies[1]: 'sgd_magic' matches no strategy; allowed: 'paper'"),
    "missing strategies": (top("strategies", DELETE), "strategies: is required; allowed: 'paper', 'modern', 'all'"),
    "missing budget": (top("budget", DELETE), "budget: is required"),
    "trials zero": (spec_with(budget__trials=0), "budget.trials: got 0; allowed: an integer >= 1"),
    "trials missing": (spec_with(budget__trials=DELETE),
                        "budget.trials: is required; allowed: an integer >= 1"),
    "epochs float": (spec_with(budget__epochs=2.5),
                      "budget.epochs: got 2.5; allowed: an integer >= 1 or null"),
    "bad sampler": (spec_with(budget__sampler="grid"),
                     "budget.sampler: got 'grid'; allowed: tpe, qmc, random"),
    "negative sampler seed": (spec_with(budget__sampler_seed=-1),
                               "budget.sampler_seed: got -1; allowed: an integer >= 0"),
    "per-pair budget": (spec_with(budget__per_pair={"dals": 10}),
                        "budget.per_pair: unknown field; allowed fields: trials, epochs, sampler"),
    "bad early stopping rule": (spec_with(budget__early_stopping={"rule": "hyperband"}),
                                "budget.early_stopping.rule: got 'hyperband'; allowed: asha, median"),
    "early stopping on test": (spec_with(budget__early_stopping={"metric": "test_accuracy"}),
                               "budget.early_stopping.metric: got 'test_accuracy'; allowed: val_accuracy"),
    "grace too long": (spec_with(budget__early_stopping={"grace_epochs": 2}),
                       "budget.early_stopping.grace_epochs: got 2; allowed: an integer from 1 to budget.epochs - 1"),
    "zero seeds": (spec_with(evaluation__seeds=0), "evaluation.seeds: got 0; allowed: an integer >= 1"),
    "selection on test": (spec_with(evaluation__selection="test"),
                           "evaluation.selection: got 'test'; allowed: final, best"),
    "gpu 1.5": (spec_with(resources__gpu=1.5), "resources.gpu: got 1.5; allowed: 0, a fraction in (0, 1]"),
    "cpu zero": (spec_with(resources__cpu=0), "resources.cpu: got 0; allowed: a number > 0"),
    "population zero": (spec_with(resources__population=0),
                        "resources.population: got 0; allowed: an integer from 1 to 1024, or 'auto'"),
    "population a word": (spec_with(resources__population="many"),
                          "resources.population: got 'many'; allowed: an integer from 1 to 1024, or 'auto'"),
    "population with early stopping": (
        spec_with(resources__population="auto", budget__early_stopping={"grace_epochs": 1}),
        "budget.early_stopping: cannot be combined with resources.population 'auto'; allowed: remove "
        "early_stopping, or set resources.population: 1"),
    "population of a fine-tune": (
        {**spec_with(resources__population=4), "workloads": ["synthetic", "rte"]},
        "resources.population: got 4, but the members of rte would run one after another, sharing no pass "
        "(rte: its model keeps buffers, which are per module); allowed: 1, or 'auto'"),
    "max_concurrent zero": (top("max_concurrent", 0),
                             "max_concurrent: got 0; allowed: an integer >= 1 or null"),
    "keep_checkpoints not a bool": (top("keep_checkpoints", "yes"),
                                    "keep_checkpoints: got 'yes'; allowed: true, false"),
    "override of another strategy": (top("search_space", {"sam": {"rho": [0.01, 0.1]}}),
                                     "search_space.sam: strategy is not in this sweep; allowed: fixed_sgd, adam, dals"),
    "override of a new hparam": (top("search_space", {"adam": {"rho": [0.01, 0.1]}}),
                                 "search_space.adam.rho: not a searched hyperparameter of adam; allowed: lr"),
    "override without canonical": (top("search_space", {"dals": {"lr": [0.05, 0.1]}}),
                                   "search_space.dals.lr: got [0.05, 0.1]; the range must contain the canonical "
                                   "value 0.03"),
    "override reversed": (top("search_space", {"dals": {"lr": [0.1, 0.01]}}),
                          "search_space.dals.lr: got [0.1, 0.01]; allowed: [low, high] with low < high"),
    "override outside allowed": (top("search_space", {"dals": {"momentum": [0.5, 1.5]}}),
                                 "search_space.dals.momentum: got [0.5, 1.5]; allowed values of momentum"),
    "momentum override up to its exclusive bound": (
        top("search_space", {"fixed_sgd": {"momentum": [0.5, 1.0]}}),
        "search_space.fixed_sgd.momentum: got [0.5, 1.0]; allowed values of momentum: [0, 1)"),
    "lookahead alpha override from its exclusive bound": (
        {**top("strategies", ["lookahead_adamw"]),
         "search_space": {"lookahead_adamw": {"lookahead_alpha": [0.0, 0.8]}}},
        "search_space.lookahead_adamw.lookahead_alpha: got [0.0, 0.8]; allowed values of lookahead_alpha: (0, 1]"),
    "fractional restart period": (
        {**top("strategies", ["sgdr"]), "search_space": {"sgdr": {"T_0_epochs": [5.5, 12]}}},
        "search_space.sgdr.T_0_epochs: got [5.5, 12]; allowed values of T_0_epochs: [1, 1000] int"),
    "too many seeds": (spec_with(evaluation__seeds=1001),
                       "evaluation.seeds: got 1001; allowed: an integer from 1 to 1000"),
    "sampler seed in the seed stage's range": (spec_with(budget__sampler_seed=1_000_000),
                                               "budget.sampler_seed: got 1000000; allowed: an integer from 0 to"),
    "not a mapping": (["name", "t"], "(top): must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_spec_exits_2_naming_the_field(case, tmp_path, capsys):
    raw, expected = MALFORMED[case]
    storage = tmp_path / "results"
    if isinstance(raw, dict):
        raw = {**raw, "storage": str(storage)}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert not storage.exists(), "nothing may be written for a bad spec"
    import ray

    assert not ray.is_initialized(), "a bad spec is refused before Ray starts"


def test_all_problems_are_reported_at_once():
    raw = spec_with(budget__trials=0, budget__sampler="grid", evaluation__seeds=0)
    raw["workloads"] = ["mnist"]
    with pytest.raises(SpecError) as err:
        parse_spec(raw)
    fields = [p.split(":")[0] for p in err.value.problems]
    assert fields == ["budget.trials", "budget.sampler", "workloads[0]", "evaluation.seeds"]


def test_unreadable_and_invalid_yaml_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(tmp_path / "missing.yaml")])
    assert e.value.code == 2 and "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(bad)])
    assert e.value.code == 2 and "not valid YAML" in capsys.readouterr().err


def test_defaults_globs_and_normalisation():
    spec = parse_spec({"name": "g", "workloads": ["synthetic"], "strategies": ["dals*", "adam"],
                       "budget": {"trials": 2}})
    assert spec.strategies == ("adam", "dals", "dals_fast", "dals_acc")  # registry order, each once
    assert spec.workloads[0].epochs == 80  # the workload's default epochs when budget.epochs is omitted
    assert (spec.evaluation.seeds, spec.evaluation.selection, spec.budget.sampler) == (5, "final", "tpe")
    assert spec.keep_checkpoints is False
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec and again.hash == spec.hash and len(spec.hash) == 16


def test_selection_words_pick_the_papers_18_the_modern_six_or_all_and_mix_with_names():
    def chosen(strategies):
        return parse_spec({"name": "s", "workloads": ["synthetic"], "strategies": strategies,
                           "budget": {"trials": 1}}).strategies

    paper, modern = chosen("paper"), chosen("modern")
    assert len(paper) == 18 and paper[0] == "fixed_sgd" and paper[-1] == "dals_acc"
    assert modern == ("adamw_wsd", "onecycle_sgd", "muon", "soap", "schedulefree_adamw", "prodigy")
    assert chosen("all") == paper + modern
    assert chosen(["muon", "paper"]) == (*paper, "muon")  # registry order, each once
    with pytest.raises(ValueError, match=r"strategies\[0\]: 'new' matches no strategy; allowed: 'paper' "
                                         r"\(the paper's 18\), 'modern' \(the six modern baselines\), 'all'"):
        chosen(["new"])


def test_hash_covers_the_protocol_only():
    a = parse_spec(BASE)
    assert parse_spec({**BASE, "name": "other", "storage": "/elsewhere", "max_concurrent": 2,
                       "keep_checkpoints": True}).hash == a.hash
    assert parse_spec(spec_with(budget__trials=4)).hash != a.hash
    assert parse_spec(spec_with(evaluation__seeds=3)).hash != a.hash


def test_overrides_and_early_stopping_parse():
    spec = parse_spec({**BASE, "search_space": {"dals": {"lr": [0.01, 0.1]}},
                       "budget": {**BASE["budget"], "epochs": 4,
                                  "early_stopping": {"rule": "asha", "grace_epochs": 1, "reduction_factor": 2}}})
    assert spec.overrides("dals") == {"lr": (0.01, 0.1)}
    assert spec.overrides("adam") == {}
    assert spec.budget.early_stopping.reduction_factor == 2


@pytest.mark.parametrize("name", ["quick", "synthetic", "paper", "modern"])
def test_shipped_specs_validate(name):
    spec = load_spec(SWEEPS / f"{name}.yaml")
    if name == "modern":  # the six modern baselines beside five of the paper's, on the synthetic task
        assert spec.strategies == ("fixed_sgd", "cosine_sgd", "adamw", "sam", "dals", "adamw_wsd", "onecycle_sgd",
                                   "muon", "soap", "schedulefree_adamw", "prodigy")
        assert [w.name for w in spec.workloads] == ["synthetic"]
        return
    assert len(spec.strategies) == 18
    if name == "paper":
        assert [w.name for w in spec.workloads] == ["synthetic", "cifar10", "rte", "trec6", "imdb"]
        assert [w.epochs for w in spec.workloads] == [80, 50, 5, 5, 3]
        assert (spec.budget.trials, spec.evaluation.seeds) == (16, 5) and 0 < spec.resources.gpu < 1
    if name == "synthetic":
        assert (spec.workloads[0].epochs, spec.budget.trials, spec.evaluation.seeds) == (80, 16, 5)


def test_every_command_has_help(capsys):
    for command in ([], ["run"], ["resume"], ["status"], ["submit"], ["strategies"], ["workloads"], ["report"]):
        with pytest.raises(SystemExit) as e:
            cli.main([*command, "--help"])
        assert e.value.code == 0
        assert "usage: lrsweep" in capsys.readouterr().out


def test_a_closed_pipe_ends_a_listing_quietly():
    """`lrsweep strategies | head -1` where the reader has gone: no traceback, SIGPIPE's status."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    proc = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "strategies"], cwd=SWEEPS.parent,
                          stdout=write, stderr=subprocess.PIPE, timeout=120)
    os.close(write)
    assert proc.returncode == 141, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr


def test_resume_and_status_of_a_non_sweep_exit_2(tmp_path, capsys):
    for command in ("resume", "status"):
        with pytest.raises(SystemExit) as e:
            cli.main([command, str(tmp_path)])
        assert e.value.code == 2 and "not a sweep directory" in capsys.readouterr().err


def test_submit_refuses_a_spec_outside_the_project(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(BASE))
    with pytest.raises(SystemExit) as e:
        cli.main(["submit", str(path), "--address", "http://127.0.0.1:1"])
    assert e.value.code == 2 and "must lie inside the project directory" in capsys.readouterr().err


def test_submit_runs_the_spec_from_the_uploaded_project():
    entrypoint, runtime_env = cli.job_request(SWEEPS / "paper.yaml", "s3://bucket/lrsweep")
    assert entrypoint == "python -m sweeps.commands.cli run sweeps/paper.yaml --address auto --storage s3://bucket/lrsweep"
    assert runtime_env["working_dir"] == str(SWEEPS.parent) and ".venv" in runtime_env["excludes"]


def test_population_size_is_the_spec_s_or_each_workload_s_own_under_auto():
    from sweeps.spec import population_size
    from trainables import get_workload

    auto = parse_spec({**spec_with(resources__population="auto"), "workloads": ["synthetic", "rte"]})
    assert [population_size(auto, w) for w in auto.workloads] == [get_workload("synthetic").population, 1]
    four = parse_spec(spec_with(resources__population=4))
    assert [population_size(four, w) for w in four.workloads] == [4]
    assert parse_spec(BASE).resources.population == 1  # off unless asked for
    assert four.hash == parse_spec(BASE).hash  # how runs are packed into trials is not the protocol
