"""Plugins end to end: docs/WORKLOADS.md's "Adding a workload" example and its strategy plugin, saved to files
in a directory that is on no one's sys.path, run as a sweep with the real `lrsweep` CLI on a real
local Ray; then `status`, `report` and `resume` on the sweep directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = (REPO / "docs" / "WORKLOADS.md").read_text()
LRSWEEP = str(Path(sys.executable).parent / "lrsweep")


def _blocks(section: str, language: str) -> list[str]:
    """The ``language`` code blocks of a docs/WORKLOADS.md section, in order."""
    text = WORKLOADS[WORKLOADS.index(section):]
    text = text[: min(text.find(mark, 1) % len(text) for mark in ("\n# ", "\n## ", "\n### "))]
    parts = text.split(f"```{language}\n")[1:]
    return [part[: part.index("```")] for part in parts]


def _env() -> dict:
    """The CLI's environment: the project on PYTHONPATH (as installed), never the plugin directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.pop("LRSWEEP_PLUGINS", None)
    return env


def _lrsweep(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([LRSWEEP, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def plugin_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin")
    plugin_dir = root / "user_code"  # not on sys.path: only the spec (and --plugin) name it
    plugin_dir.mkdir()
    workload_code = _blocks("## Adding a workload", "python")[0]
    spec_text = _blocks("## Adding a workload", "yaml")[0]
    strategy_code, = _blocks("## Plugins", "python")
    (plugin_dir / "halfspace.py").write_text(workload_code)
    (plugin_dir / "plain_sgd.py").write_text(strategy_code)
    spec = yaml.safe_load(spec_text)
    spec["strategies"] = [*spec["strategies"], "plain_sgd"]
    (plugin_dir / "halfspace.yaml").write_text(yaml.safe_dump(spec))
    elsewhere = root / "elsewhere"  # the commands' working directory, which Ray puts on workers' path
    elsewhere.mkdir()
    done = _lrsweep("run", str(plugin_dir / "halfspace.yaml"), "--plugin", str(plugin_dir / "plain_sgd.py"),
                    "--storage", str(root / "results"), "--num-cpus", "2", cwd=elsewhere)
    return root / "results" / spec["name"], spec, done, elsewhere


def test_the_plugin_is_not_importable_without_lrsweep(plugin_sweep):
    _, _, _, elsewhere = plugin_sweep
    probe = subprocess.run([sys.executable, "-c", "import halfspace"], cwd=elsewhere, env=_env(),
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


def test_the_readme_workload_and_a_plugin_strategy_sweep_to_completion(plugin_sweep):
    import pandas as pd

    directory, spec, done, _ = plugin_sweep
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "complete: every pair got 2 trials and 2 seeds" in done.stdout
    trials = pd.read_parquet(directory / "trials.parquet")
    assert set(trials.workload) == {"halfspace"} and set(trials.strategy) == set(spec["strategies"])
    assert (trials.status == "ok").all(), trials[["strategy", "error"]]
    budget = pd.read_parquet(directory / "budget.parquet")
    assert budget.complete.all() and (budget.trials_run == 2).all() and (budget.seeds_run == 2).all()
    plain = trials[(trials.strategy == "plain_sgd") & (trials.stage == "tune")]
    assert sorted(plain.trial_index) == [0, 1] and plain.canonical.sum() == 1  # tuned like a built-in
    assert sorted(p.name for p in (directory / "plugins").iterdir()) == ["halfspace.py", "plain_sgd.py"]
    assert yaml.safe_load((directory / "spec.yaml").read_text())["plugins"] == ["halfspace", "plain_sgd"]


def test_status_report_and_resume_work_on_the_plugin_sweep(plugin_sweep):
    directory, _, done, elsewhere = plugin_sweep
    assert done.returncode == 0
    shown = _lrsweep("status", str(directory), cwd=elsewhere, timeout=120)
    assert shown.returncode == 0 and "state: complete" in shown.stdout, shown.stderr
    assert "halfspace/plain_sgd" in shown.stdout
    report = _lrsweep("report", str(directory), cwd=elsewhere, timeout=300)
    assert report.returncode == 0, report.stderr[-4000:]
    text = (directory / "report" / "report.md").read_text()
    assert "halfspace" in text and "plain_sgd" in text
    resumed = _lrsweep("resume", str(directory), "--num-cpus", "2", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    assert "complete: every pair got 2 trials and 2 seeds" in resumed.stdout


def test_a_missing_plugin_is_a_spec_error_naming_it(tmp_path):
    spec = {"name": "x", "plugins": ["./nope.py", "no_such_module_xyz"], "workloads": ["halfspace_missing"],
            "strategies": ["adam"], "budget": {"trials": 1}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    done = _lrsweep("run", str(tmp_path / "s.yaml"), "--storage", str(tmp_path / "results"), cwd=tmp_path,
                    timeout=120)
    assert done.returncode == 2
    assert "plugins[0]: './nope.py': no such file" in done.stderr
    assert "plugins[1]: 'no_such_module_xyz': no module" in done.stderr
    assert "workloads[0]: unknown workload 'halfspace_missing'" in done.stderr
    assert not (tmp_path / "results").exists()


def test_an_interrupted_plugin_sweep_resumes_from_its_own_copy_of_the_plugins(tmp_path):
    """SIGKILL the driver mid-sweep, move the plugin files away, `lrsweep resume`: the sweep directory's
    copies are imported (driver and workers) and every pair gets its budget, each trial once."""
    import shutil
    import signal
    import time

    import pandas as pd
    from test_sweep_resume import tune_done

    code = tmp_path / "user_code"
    code.mkdir()
    (code / "halfspace.py").write_text(_blocks("## Adding a workload", "python")[0])
    (code / "plain_sgd.py").write_text(_blocks("## Plugins", "python")[0])
    spec = yaml.safe_load(_blocks("## Adding a workload", "yaml")[0])
    spec.update(plugins=["./halfspace.py", "./plain_sgd.py"], strategies=["adam", "plain_sgd"],
                budget={"trials": 4, "epochs": 20})
    (code / "spec.yaml").write_text(yaml.safe_dump(spec))
    directory = tmp_path / "results" / spec["name"]
    driver = subprocess.Popen([LRSWEEP, "run", str(code / "spec.yaml"), "--storage", str(tmp_path / "results"),
                               "--num-cpus", "2"], cwd=tmp_path, env=_env(), start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while tune_done(directory) < 2 and driver.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert driver.poll() is None, f"the sweep ended before it could be killed:\n{driver.stdout.read()}"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        time.sleep(2)
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not (directory / "trials.parquet").exists(), "killed before the sweep finished"
    shutil.rmtree(code)  # the sweep must not need the user's files any more
    resumed = _lrsweep("resume", str(directory), "--num-cpus", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    assert "resuming the experiment" in resumed.stdout
    trials = pd.read_parquet(directory / "trials.parquet")
    assert trials.trial_id.is_unique and (trials.status == "ok").all(), trials[["trial_id", "error"]]
    assert not trials.duplicated(["strategy", "stage", "trial_index"]).any()
    assert pd.read_parquet(directory / "budget.parquet").complete.all()
