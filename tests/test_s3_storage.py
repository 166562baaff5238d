"""Sweeps on S3 as cluster users have it: a real S3-compatible server on 127.0.0.1 (``tests/s3_server.py``,
moto's standalone server in its own process; no AWS mocks in this one), the endpoint in the URI's
query string, driven through the real ``lrsweep`` CLI on a local Ray: ``run`` with a plugin shipped
through the bucket, ``status``, ``report``, and a SIGKILL of the driver followed at once by
``resume`` on the same host."""

from __future__ import annotations

import io
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3_server
import yaml
from patience import sigkill_when

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = s3_server.start(tmp_path_factory.mktemp("s3") / "server.log")
    try:
        yield server
    finally:
        s3_server.stop(server)


def lrsweep(s3, tmp_path: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.commands.cli", *args], cwd=tmp_path, env=_env(s3, tmp_path),
                          capture_output=True, text=True, timeout=timeout)


def _env(s3, tmp_path: Path) -> dict:
    return {**s3.env(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def _table(s3, prefix: str, name: str):
    with s3.filesystem().open_input_file(f"{s3_server.BUCKET}/{prefix}/{name}.parquet") as f:
        return pq.read_table(io.BytesIO(f.read())).to_pandas()


def test_a_plugin_sweep_on_s3_with_a_query_string_uri_runs_and_status_and_report_read_it(s3, tmp_path):
    user = tmp_path / "user_code"  # the plugin's only home besides the copy the sweep keeps in the bucket
    user.mkdir()
    shutil.copy(ROOT / "benchmarks" / "tiny_workload.py", user / "tiny_workload.py")
    spec = {"name": "plugin", "plugins": ["./tiny_workload.py"], "workloads": ["tiny"],
            "strategies": ["fixed_sgd", "adam"], "budget": {"trials": 2, "epochs": 2, "sampler": "random"},
            "evaluation": {"seeds": 2}, "resources": {"cpu": 1, "gpu": 0, "population": 1}}
    (user / "spec.yaml").write_text(yaml.safe_dump(spec))
    storage = s3.uri("a/")  # a trailing slash before the query, as a user may type it
    directory = s3.uri("a/plugin")

    done = lrsweep(s3, tmp_path, "run", str(user / "spec.yaml"), "--storage", storage, "--num-cpus", "2")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    files = s3.files("a/plugin")
    assert {"spec.yaml", "plugins/tiny_workload.py", "trials.parquet", "budget.parquet"} <= set(files), files
    assert not [f for f in files if f.startswith("record/checkpoints/")], "finished trials keep no checkpoint"
    assert not [f for f in s3.files("a") if "?" in f or "endpoint" in f], "the query joined a path"
    trials = _table(s3, "a/plugin", "trials")
    assert len(trials) == 8 and set(trials.workload) == {"tiny"}

    shutil.rmtree(user)  # status, report and resume import the plugin from the bucket's copy
    shown = lrsweep(s3, tmp_path, "status", directory)
    assert shown.returncode == 0 and "state: complete" in shown.stdout, shown.stdout + shown.stderr
    report = lrsweep(s3, tmp_path, "report", directory, "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "report.md").exists()
    again = lrsweep(s3, tmp_path, "resume", directory)
    assert again.returncode != 0 and "nothing to resume" in again.stderr, again.stdout + again.stderr


def test_a_killed_s3_sweep_resumes_at_once_on_the_same_host(s3, tmp_path):
    spec = {"name": "killed", "workloads": [{"synthetic": {"n_train": 512}}], "strategies": ["fixed_sgd", "adam"],
            "budget": {"trials": 3, "epochs": 2, "sampler": "tpe", "sampler_seed": 0}, "evaluation": {"seeds": 1},
            "resources": {"cpu": 1, "gpu": 0, "population": 1}, "storage": s3.uri("b")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    directory = s3.uri("b/killed")
    runs = lambda: [f for f in s3.files("b/killed") if f.startswith("record/runs/")]  # noqa: E731

    with open(tmp_path / "run.log", "w") as log:
        driver = subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", "run", str(tmp_path / "spec.yaml"),
                                   "--num-cpus", "2"], cwd=tmp_path, env=_env(s3, tmp_path),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sigkill_when(driver, lambda: len(runs()) >= 2, "2 finished trials on S3", tmp_path / "run.log",
                 progress=lambda: s3.files("b/killed"))
    killed_at = len(runs())
    assert "trials.parquet" not in s3.files("b/killed")

    resumed = lrsweep(s3, tmp_path, "resume", directory, "--num-cpus", "2")
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-4000:]
    assert "taking over the stale lease" in out and f"pid {driver.pid}" in out
    assert f"resuming from the record: {killed_at} trials finished" in out
    trials = _table(s3, "b/killed", "trials")
    tune = trials[trials.stage == "tune"]
    assert len(tune) == 6 and not tune.duplicated(["strategy", "trial_index"]).any()
    assert (tune.groupby("strategy").size() == 3).all()
    assert len(trials[trials.stage == "seed"]) == 2


def test_submit_passes_a_query_string_uri_through_whole():
    from sweeps.commands.cli import PROJECT_DIR, job_request

    uri = "s3://bucket/p?endpoint_override=127.0.0.1:9000&scheme=http&region=eu-west-1"
    entrypoint, _ = job_request(PROJECT_DIR / "sweeps" / "quick.yaml", uri)
    argv = shlex.split(entrypoint)
    assert argv[argv.index("--storage") + 1] == uri
