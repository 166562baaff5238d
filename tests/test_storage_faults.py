"""Storage that fails mid-sweep, as it fails for cluster users: a disk that fills up (a small tmpfs
mounted in a private mount namespace) and an S3 server that goes away (moto's standalone server,
``tests/s3_server.py``, reached through a relay that goes down and comes back). Through the real
CLI on a local Ray, each time: the driver stops with exit status 3 and a message naming the storage,
the record it leaves reads back whole with no trial recorded as failed by the fault, and after the
fault clears ``lrsweep resume`` completes with every pair's budget."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3_server
import yaml
from patience import wait_for

from sweeps.commands.cli import STORAGE_FAILED
from sweeps.record.durable import Record
from sweeps.record.storage import SweepDir
from vocab.members import trial_members

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"plugins": ["./tiny_workload.py"], "workloads": ["tiny"], "strategies": ["fixed_sgd", "adam", "cosine_sgd"],
        "budget": {"trials": 4, "epochs": 4, "sampler": "random"}, "evaluation": {"seeds": 3},
        "resources": {"cpu": 1, "gpu": 0, "population": 1}}
TUNE_RUNS, SEED_RUNS = 3 * 4, 3 * 3


def _user_dir(tmp_path: Path, name: str, **extra) -> Path:
    user = tmp_path / "user"
    user.mkdir()
    shutil.copy(ROOT / "benchmarks" / "tiny_workload.py", user / "tiny_workload.py")
    (user / "spec.yaml").write_text(yaml.safe_dump({"name": name, **SPEC, **extra}))
    return user


def _assert_record_intact(sweep: SweepDir) -> int:
    """Every run the stopped sweep recorded reads back, finished whole, none failed by the storage;
    return how many there are."""
    runs = Record(sweep).runs()
    for run in runs.values():
        assert run.error is None, (run.key, run.error)
        (config, _), = trial_members(run.config)
        assert [h["epoch"] for h in run.history] == list(range(1, config["epochs"] + 1)), run.key
    return len(runs)


def _assert_full_budget(trials, budget) -> None:
    assert (trials["status"] == "ok").all(), trials[["trial_id", "status", "error"]]
    assert not trials.duplicated(["strategy", "stage", "trial_index"]).any()
    assert (trials.stage == "tune").sum() == TUNE_RUNS and (trials.stage == "seed").sum() == SEED_RUNS
    assert budget["complete"].all(), budget


# -- a full disk ------------------------------------------------------------------------------------

SCENARIO = r"""
set -u
mount -t tmpfs -o size={small} lrsweep-full {store} || exit 99
{python} -m sweeps.commands.cli run spec.yaml --storage {store} --num-cpus 2 > run.log 2>&1; echo $? > run.code
cp -a {store}/full stopped
mount -o remount,size=256m {store}
{python} -m sweeps.commands.cli resume {store}/full --num-cpus 2 > resume.log 2>&1; echo $? > resume.code
cp -a {store}/full resumed
"""


def _private_mounts() -> list[str] | None:
    """unshare flags for a private mount namespace (a user namespace too, unless root); None if refused."""
    flags = ["--mount", "--propagation", "private"] if os.geteuid() == 0 else \
        ["--user", "--map-root-user", "--mount", "--propagation", "private"]
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", *flags, "true"], capture_output=True, timeout=30)
    return flags if probe.returncode == 0 else None


@pytest.mark.timeout(400)
def test_a_full_disk_stops_the_sweep_with_status_3_and_resume_completes_once_space_is_freed(tmp_path):
    flags = _private_mounts()
    assert flags is not None, "cannot create a private mount namespace here (needs root or user namespaces)"
    user = _user_dir(tmp_path, "full")
    store = tmp_path / "store"
    store.mkdir()
    # 160 KiB: the spec, the journal and the first trials' files fit; the running trials' checkpoints
    # do not (a sweep of this spec holds ~500 KiB at its peak).
    script = SCENARIO.format(small="160k", store=store, python=sys.executable)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(["unshare", *flags, "sh", "-c", script], cwd=user, env=env, timeout=360, check=True)

    stopped_log = (user / "run.log").read_text()
    assert (user / "run.code").read_text().strip() == str(STORAGE_FAILED), stopped_log[-4000:]
    assert f"lrsweep: storage error: the sweep's storage {store}/full failed" in stopped_log, stopped_log[-4000:]
    assert "No space left on device" in stopped_log and f"lrsweep resume {store}/full" in stopped_log
    assert "Traceback (most recent call last):\n  File \"" not in stopped_log.split("lrsweep: storage error")[-1]
    recorded = _assert_record_intact(SweepDir(str(user / "stopped")))
    assert 0 < recorded < TUNE_RUNS + SEED_RUNS, f"the disk filled before the first trial or after the last: {recorded}"
    assert not list((user / "stopped").glob("**/.*.tmp")), "a half-written file was left behind"

    resumed_log = (user / "resume.log").read_text()
    assert (user / "resume.code").read_text().strip() == "0", resumed_log[-4000:]
    assert f"resuming from the record: {recorded} trials finished" in resumed_log
    tables = {n: pq.read_table(user / "resumed" / f"{n}.parquet").to_pandas() for n in ("trials", "budget")}
    _assert_full_budget(tables["trials"], tables["budget"])


# -- an S3 server that goes away -------------------------------------------------------------------

@pytest.fixture()
def s3(tmp_path):
    server = s3_server.start(tmp_path / "server.log")
    try:
        yield server
    finally:
        s3_server.stop(server)


@pytest.mark.timeout(500)
def test_an_s3_server_gone_mid_sweep_stops_it_with_status_3_and_resume_completes_once_it_is_back(s3, tmp_path):
    relay = s3_server.Outage(s3)  # the sweep reaches the server through it; down, it refuses connections
    user = _user_dir(tmp_path, "outage", storage=relay.uri("o"))
    directory = relay.uri("o/outage")
    env = {**s3.env(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    runs = lambda: [f for f in s3.files("o/outage") if f.startswith("record/runs/")]  # noqa: E731
    try:
        with open(tmp_path / "run.log", "w") as log:
            driver = subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", "run", "spec.yaml",
                                       "--num-cpus", "2"],
                                      cwd=user, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            wait_for(lambda: len(runs()) >= 3 or driver.poll() is not None, 240, what="3 finished trials on S3")
            assert driver.poll() is None, (tmp_path / "run.log").read_text()[-4000:]
            relay.down()
            code = driver.wait(timeout=300)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
        stopped_log = (tmp_path / "run.log").read_text()
        assert code == STORAGE_FAILED, stopped_log[-4000:]
        assert f"lrsweep: storage error: the sweep's storage {directory} failed" in stopped_log, stopped_log[-4000:]
        assert f"lrsweep resume '{directory}'" in stopped_log  # quoted: a shell would cut the URI at its '&'
        # While it is down, a storage that cannot be read is said so, never taken for "not a sweep".
        status = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "status", directory], cwd=user, env=env,
                                capture_output=True, text=True, timeout=240)
        assert status.returncode == STORAGE_FAILED, status.stdout + status.stderr
        assert status.stderr.startswith("lrsweep: storage error: OSError: ") and "AWS Error" in status.stderr
        assert "not a sweep" not in status.stderr + status.stdout

        relay.up()
        recorded = _assert_record_intact(SweepDir(directory))
        assert 3 <= recorded < TUNE_RUNS + SEED_RUNS
        resumed = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "resume", directory, "--num-cpus", "2"],
                                 cwd=user, env=env, capture_output=True, text=True, timeout=300)
    finally:
        relay.close()
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-4000:]
    assert "taking over the stale lease" in out and f"pid {driver.pid}" in out  # at once, on this host
    assert f"resuming from the record: {recorded} trials finished" in out
    tables = {}
    for name in ("trials", "budget"):
        with s3.filesystem().open_input_file(f"{s3_server.BUCKET}/o/outage/{name}.parquet") as f:
            tables[name] = pq.read_table(io.BytesIO(f.read())).to_pandas()
    _assert_full_budget(tables["trials"], tables["budget"])
