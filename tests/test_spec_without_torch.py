"""Validating a spec imports no torch (nor Ray): a misspelt name is refused in a fraction of a second."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, sys
from sweeps.spec import SpecError, parse_spec
good = {"name": "ok", "strategies": "all", "budget": {"trials": 2, "epochs": 2},
        "workloads": ["synthetic", {"cifar10": {"val_size": 100}}, "trec6",
                      {"text": {"name": "rt", "dataset": "./rt"}}],
        "search_space": {"fixed_sgd": {"lr": [0.0005, 0.05]}, "sgdr": {"T_0_epochs": [5, 12]}}}
pairs = len(parse_spec(good).pairs())
try:
    parse_spec({**good, "strategies": ["fixed_sdg"]})
    refused = False
except SpecError:
    refused = True
print(json.dumps({"pairs": pairs, "refused": refused, "loaded": [m for m in ("torch", "ray") if m in sys.modules]}))
"""


def test_parsing_a_good_and_a_bad_spec_imports_neither_torch_nor_ray():
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == {"pairs": 96, "refused": True, "loaded": []}


def test_lrsweep_run_refuses_a_misspelt_strategy_without_torch(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\nworkloads: [synthetic]\nstrategies: [fixed_sdg]\nbudget: {trials: 2}\n")
    code = ("import sys\nfrom sweeps.commands import cli\ntry:\n    cli.main(['run', sys.argv[1]])\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(spec)], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["2", "False", "False"], out.stderr
    assert "'fixed_sdg' matches no strategy" in out.stderr
