"""``benchmarks/cuda_check.py``, the one call a session lent a GPU makes, runs here on the CPU first:
every section, as a subprocess, writing its figures to one file. A broken script would cost a lent
GPU's minutes; a broken section must not hide the others' figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "cuda_check.py"
SECTIONS = ("device", "trainable", "forward", "update", "alone", "memory", "sweep", "benchmark")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_every_section_runs_on_the_cpu_and_writes_one_file(tmp_path):
    out = tmp_path / "figures" / "cuda_check.txt"
    done = _run("--device", "cpu", "--quick", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = out.read_text().splitlines()
    verdicts = {line.split(":")[0][3:]: line for line in lines if line.startswith("== ")}
    assert list(verdicts) == list(SECTIONS)
    assert verdicts["memory"].startswith("== memory: SKIP (CUDA memory statistics only)")
    assert all(": ok (" in v for k, v in verdicts.items() if k != "memory"), verdicts
    assert lines[-1] == f"cuda_check: {len(SECTIONS)} of {len(SECTIONS)} sections ok"
    # The figures each section promises, as a reader of the file finds them.
    text = "\n".join(lines)
    for expected in ("run_trial synthetic: 2 epoch(s) ok on cpu", "run_trial cifar10:", "run_trial trec6:",
                     "text path: logits torch.float32", "forward ConvNet K=4 stacked-grouped: max |logit",
                     "update fixed_sgd: stacked vs per-member Steppers, max |accuracy gap| 0.00e+00",
                     "alone cifar10 adam seed 1: population vs run_trial, max |accuracy gap| 0.00e+00",
                     "sweep: 8 runs in", "devices ['cpu']", "benchmark |   K=2 "):
        assert expected in text, expected


def test_a_failed_section_is_recorded_and_the_run_exits_1(tmp_path):
    out = tmp_path / "cuda_check.txt"
    done = _run("--device", "cpu", "--quick", "--seconds", "0", "--sections", "device,benchmark", "--out", str(out))
    assert done.returncode == 1
    lines = out.read_text().splitlines()
    assert lines[1].startswith("== device: ok")
    assert lines[2].startswith("== benchmark: FAIL: AssertionError: no time left for population.py")
    assert lines[-1] == "cuda_check: 1 of 2 sections ok; failed: benchmark"


def test_bad_arguments_name_the_field_and_exit_2(tmp_path):
    done = _run("--device", "cpu", "--sections", "device,gpus", "--out", str(tmp_path / "x.txt"))
    assert done.returncode == 2 and "--sections: unknown ['gpus']; allowed: ['device'" in done.stderr
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    done = _run("--out", str(tmp_path / "x.txt"))
    assert done.returncode == 2 and "--device cuda: no CUDA device is visible" in done.stderr
