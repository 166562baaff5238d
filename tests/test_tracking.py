"""Trackers fed from the record, read back with each tracker's own library: one small real sweep
with TensorBoard, a real `mlflow server` on 127.0.0.1 and W&B offline, its driver SIGKILLed and
resumed, the server stopped mid-way through the resume and `lrsweep track` run after it. Every
run must then be in every tracker exactly once, with the metrics, params and tags of the Parquet
tables. The spec section's validation is tested without Ray."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import patience
import psutil
import pytest
import yaml

from sweeps.observers.tracking import epoch_scalars, report_verdict
from sweeps.spec import SpecError, parse_spec
from sweeps.spec.tracking import TRACKERS, TrackerInfo

ROOT = Path(__file__).resolve().parent.parent
BASE = {"name": "tracked", "workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "dals"],
        "budget": {"trials": 2, "epochs": 3}, "evaluation": {"seeds": 2}, "resources": {"cpu": 1, "population": 2}}
RUNS = 8  # 2 pairs x (2 tune trials + 2 seeds), as 4 population trials of 2 members


# --- the spec section, no Ray -------------------------------------------------------------------

def test_tracking_is_validated_and_not_in_the_hash():
    plain = parse_spec(BASE)
    tracked = parse_spec({**BASE, "tracking": {"tensorboard": True, "mlflow": {"experiment": "x", "timeout": 5},
                                               "wandb": False}})
    assert plain.hash == tracked.hash
    assert [t.name for t in tracked.tracking] == ["tensorboard", "mlflow"]
    assert parse_spec(yaml.safe_load(tracked.to_yaml())) == tracked
    assert "tracking" not in plain.to_dict()
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, "tracking": {"tensorbored": True, "mlflow": {"uri": "x"}, "wandb": {"mode": "cloud"}}})
    assert err.value.problems == [
        "tracking.tensorbored: unknown tracker; allowed: tensorboard, mlflow, wandb",
        "tracking.mlflow.uri: unknown field; allowed fields: tracking_uri, experiment, timeout",
        "tracking.wandb.mode: got 'cloud'; allowed: online, offline, disabled"]


def test_a_tracker_not_installed_is_refused_with_its_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(TRACKERS, "mlflow", TrackerInfo("mlflow", "lrsweep_no_such_library", ("experiment",), ""))
    with pytest.raises(SpecError, match=r"tracking.mlflow: the lrsweep_no_such_library library is not installed; "
                                        r"install it with `pip install -e '.\[mlflow\]'`"):
        parse_spec({**BASE, "tracking": {"mlflow": True}})
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({**BASE, "storage": str(tmp_path)}))
    proc = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "run", str(spec), "--track", "comet"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "unknown tracker; allowed: tensorboard, mlflow, wandb" in proc.stderr
    assert not (tmp_path / "tracked").exists()


def test_epoch_scalars_and_the_verdict_section():
    row = {"epoch": 2, "val_accuracy": 0.5, "status": "ok", "phase": 1.0, "lr": float("nan"), "grad_evals": 4,
           "hparams": {"lr": 0.1}, "layers": {"lr": [0.1, 0.2], "trust_ratio": None}}
    assert epoch_scalars(row) == {"val_accuracy": 0.5, "phase": 1.0, "grad_evals": 4.0,
                                  "layers/lr/group0": 0.1, "layers/lr/group1": 0.2}
    page = "# r\n\nintro\n\n## Verdict\n\n**w** wins.\n\n## Protocol\n\nx\n"
    assert report_verdict(page) == "## Verdict\n\n**w** wins."


def test_a_tracking_server_that_never_answers_holds_the_driver_for_its_timeout_only(tmp_path):
    from sweeps.observers.tracking import Observer, finish
    from sweeps.record.storage import SweepDir

    with socket.socket() as silent:  # the kernel accepts its connections; nothing ever answers them
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        spec = parse_spec({**BASE, "tracking": {"mlflow": {"tracking_uri": uri, "timeout": 2}}})
        lines: list[str] = []
        observer = Observer(spec, SweepDir(str(tmp_path / "tracked")), lines.append)
        started = time.monotonic()
        assert finish(observer) is False
        waited = time.monotonic() - started
    assert waited < 2 + 5, waited  # its timeout, and the tracking process stopped, not waited for
    assert observer.process.poll() is not None
    assert lines[0].startswith("warning: the trackers did not take every run within 2s") and len(lines) == 1, lines
    assert f"lrsweep track {tmp_path / 'tracked'}" in lines[0]


# --- one sweep, killed, resumed, its server stopped, then `lrsweep track` ----------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 with a sqlite store, started and stopped at will."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.proc = root, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}", "--workers", "1",
             "--artifacts-destination", str(self.root / "artifacts")],
            cwd=self.root, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def lrsweep(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", *args], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def recorded(directory: Path) -> int:
    """Population trials in the record (each holds 2 runs)."""
    return len(list((directory / "record" / "runs").glob("*/*/*.json")))


def wait_for(proc: subprocess.Popen, condition, what: str, output: Output | None = None) -> None:
    deadline = time.time() + 300
    while not condition():
        assert proc.poll() is None, f"lrsweep ended before {what}:\n{output.text() if output else proc.stdout.read()}"
        assert time.time() < deadline, f"no {what} in 300 s"
        time.sleep(0.2)


class Output:
    """A process's output lines, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines = proc, []
        self.thread = threading.Thread(target=lambda: self.lines.extend(proc.stdout), daemon=True)
        self.thread.start()

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def text(self, timeout: float = 300) -> str:
        self.proc.wait(timeout=timeout)
        self.thread.join(timeout=10)
        return "".join(self.lines)


def tracking_process(driver: int) -> psutil.Process:
    """A driver's tracking process (``sweeps.observers.tracking.serve``), waited for up to 60 s."""
    def find() -> psutil.Process | None:
        for child in psutil.Process(driver).children():
            with contextlib.suppress(psutil.Error):  # a child that has just ended
                if "sweeps.observers.tracking import serve" in " ".join(child.cmdline()):
                    return child
        return None

    return patience.wait_for(find, 60, interval=0.2, what=f"the tracking process of driver {driver}")


def ended(process: psutil.Process, within: float) -> bool:
    """Whether ``process`` exits (a zombie counts: its new parent may never reap it) within ``within`` s."""
    def gone() -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    try:
        return patience.wait_for(gone, within, interval=0.2, what="the tracking process to end")
    except AssertionError:
        return False


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep directory and what each step printed (see the module docstring). While the resumed
    driver runs, `lrsweep status --watch` runs in a tmux pane (a real terminal) and piped."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    tmp = tmp_path_factory.mktemp("tracking")
    server = MlflowServer(tmp)
    server.start()
    spec = {**BASE, "storage": str(tmp / "results"),
            "tracking": {"tensorboard": True, "mlflow": {"tracking_uri": server.uri, "timeout": 30},
                         "wandb": {"mode": "offline", "project": "lrsweep-test"}}}
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp / "wandb-home"), "WANDB_SILENT": "true"}
    directory = tmp / "results" / "tracked"
    session = f"lrsweep-watch-{os.getpid()}"
    procs = []
    try:
        # Each checkpoint write pauses the trial (the kill tests' hook), so trials stay in flight a while.
        paused = {"LRSWEEP_PAUSE_AT": "checkpoint", "LRSWEEP_PAUSE_SECONDS": "1.0"}
        first = lrsweep("run", str(tmp / "spec.yaml"), "--num-cpus", "2", env={**env, **paused})
        procs.append(first)
        wait_for(first, lambda: recorded(directory) >= 1, "a recorded trial")
        time.sleep(1.0)  # the tracking process takes it, or the kill lands mid-log: either is exactly once
        tracker = tracking_process(first.pid)
        os.kill(first.pid, signal.SIGKILL)  # the driver alone, as the kernel's OOM killer would
        first.wait(timeout=60)
        assert recorded(directory) < RUNS // 2, "the first driver finished before its kill"
        tracker_ended = ended(tracker, within=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)  # the rest of its group: the embedded Ray
        time.sleep(1)
        second = lrsweep("resume", str(directory), "--num-cpus", "2", env={**env, **paused})
        procs.append(second)
        resumed = Output(second)
        piped = lrsweep("status", str(directory), "--watch", "--interval", "0.5", env={})
        procs.append(piped)
        piped_out = Output(piped)
        command = (f"cd {ROOT} && COLUMNS=150 PYTHONPATH={ROOT} {sys.executable} -m sweeps.commands.cli status "
                   f"{directory} --watch --interval 0.5; sleep 600")
        tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "40", command)
        panes = [""]
        wait_for(second, lambda: panes.append(tmux("capture-pane", "-p", "-t", session)) or " epoch " in panes[-1],
                 "a run in flight in the watch view", resumed)
        pane = panes[-1]
        server.stop()  # mid-sweep: the resumed driver's trackers are connected, its trials running
        resumed_text = resumed.text()
        assert second.returncode == 0, resumed_text
        piped_text = piped_out.text(timeout=120)
        server.start()
        tracked = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "track", str(directory)], cwd=ROOT,
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                 timeout=300)
        assert tracked.returncode == 0, tracked.stdout + tracked.stderr
        yield {"dir": directory, "mlflow": server.uri, "tracker_ended": tracker_ended, "resumed": resumed_text,
               "tracked": tracked.stdout, "pane": pane, "piped": piped_text, "piped_code": piped.returncode}
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def parquet(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(directory / "trials.parquet"), pd.read_parquet(directory / "epochs.parquet")


def score(stage: str) -> str:
    return "val_accuracy" if stage == "tune" else "test_accuracy"


def run_key(row) -> str:
    return f"{row.workload}/{row.strategy}/{row.stage}-{row.trial_index}"


@pytest.mark.slow
def test_the_tracking_process_ends_with_its_killed_driver(sweep):
    # Its stdin closes with the driver: it closes its trackers and exits, never an orphan on the head node.
    assert sweep["tracker_ended"]


@pytest.mark.slow
def test_a_stopped_server_costs_one_warning_and_the_sweep_finishes(sweep):
    trials, _ = parquet(sweep["dir"])
    assert len(trials) == RUNS and pd.read_parquet(sweep["dir"] / "budget.parquet").complete.all()
    warnings = [line for line in sweep["resumed"].splitlines() if line.startswith("warning: tracker mlflow")]
    assert len(warnings) == 1, sweep["resumed"]
    assert "lrsweep track" in warnings[0]
    logged = {line.split(":")[0]: int(line.split()[1]) for line in sweep["tracked"].splitlines()
              if "runs logged" in line}
    assert logged["mlflow"] >= 2 and logged["tensorboard"] == logged["wandb"] == 0, sweep["tracked"]


@pytest.mark.slow
def test_status_watch_shows_runs_in_flight_in_a_terminal_and_plain_lines_when_piped(sweep):
    pane = sweep["pane"]
    assert "synthetic/fixed_sgd" in pane and "synthetic/dals" in pane
    [flight] = [line for line in pane.splitlines() if line.startswith("in flight:")]
    assert int(flight.split()[2]) >= 1
    assert any(" epoch " in line and "/3" in line for line in pane.splitlines())
    piped = sweep["piped"]
    assert sweep["piped_code"] == 0 and "\x1b[" not in piped
    assert piped.count("--- ") >= 2 and "in flight: none (the sweep has ended)" in piped
    assert "state: complete" in piped


@pytest.mark.slow
def test_tensorboard_events_hold_every_run_once_with_the_parquet_epochs(sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trials, epochs = parquet(sweep["dir"])
    runs = sorted(str(Path(p).relative_to(sweep["dir"] / "tensorboard")) for p in
                  glob.glob(str(sweep["dir"] / "tensorboard" / "*" / "*" / "*-*")))
    assert runs == sorted(run_key(r) for r in trials.itertuples())
    for r in trials.itertuples():
        events = EventAccumulator(str(sweep["dir"] / "tensorboard" / run_key(r))).Reload()
        [event_file] = glob.glob(str(sweep["dir"] / "tensorboard" / run_key(r) / "events.out.*"))
        assert event_file  # one file: the run was written once
        got = [(e.step, e.value) for e in events.Scalars(score(r.stage))]
        mine = epochs[epochs.trial_id == r.trial_id].sort_values("epoch")
        assert [s for s, _ in got] == mine.epoch.tolist()
        assert [v for _, v in got] == pytest.approx(mine[score(r.stage)].tolist(), rel=1e-6)  # float32 events
        assert len(events.Scalars("layers/lr/group0")) == len(mine)


def assert_mlflow_holds_the_sweep(client, directory: Path) -> None:
    """One finished MLflow run per Parquet run, with its metrics per epoch, params and tags, under a
    parent run holding the report and the verdict."""
    experiment = client.get_experiment_by_name("tracked")
    found = client.search_runs([experiment.experiment_id], "tags.`lrsweep.kind` = 'run'", max_results=1000)
    trials, epochs = parquet(directory)
    assert sorted(r.data.tags["lrsweep.key"] for r in found) == sorted(run_key(r) for r in trials.itertuples())
    by_id = {r.data.tags["trial_id"]: r for r in found}
    assert set(by_id) == set(trials.trial_id)
    for row in trials.itertuples():
        run = by_id[row.trial_id]
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert (tags["stage"], tags["workload"], tags["strategy"], tags["seed"], tags["spec_hash"], tags["pair"]) == \
            (row.stage, row.workload, row.strategy, str(row.seed), row.spec_hash, f"{row.workload}/{row.strategy}")
        hparams = json.loads(row.hparams)
        assert {k: run.data.params[k] for k in hparams} == {k: json.dumps(v) for k, v in hparams.items()}
        history = client.get_metric_history(run.info.run_id, score(row.stage))
        mine = epochs[epochs.trial_id == row.trial_id].sort_values("epoch")
        assert sorted((m.step, m.value) for m in history) == list(zip(mine.epoch, mine[score(row.stage)],
                                                                      strict=True))
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) == len(mine)
    [parent] = client.search_runs([experiment.experiment_id], "tags.`lrsweep.kind` = 'sweep'")
    assert {r.data.tags["mlflow.parentRunId"] for r in found} == {parent.info.run_id}
    names = [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert "report/report.html" in names and "report/plots" in names
    assert parent.data.tags["mlflow.note.content"].startswith("## Verdict")


@pytest.mark.slow
def test_the_mlflow_server_holds_each_run_once_with_the_parquet_metrics_params_tags_and_the_report(sweep):
    from mlflow import MlflowClient

    assert_mlflow_holds_the_sweep(MlflowClient(sweep["mlflow"]), sweep["dir"])


@pytest.mark.slow
def test_lrsweep_track_fills_a_local_mlflow_store_from_the_record(sweep):
    """`--track mlflow` replaces the spec's server by the default store, sqlite in the sweep dir."""
    from mlflow import MlflowClient

    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "track", str(sweep["dir"]),
                           "--track", "mlflow"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"mlflow: {RUNS} runs logged, 0 already there" in proc.stdout
    client = MlflowClient(f"sqlite:///{sweep['dir'] / 'mlflow.db'}")
    assert_mlflow_holds_the_sweep(client, sweep["dir"])
    assert (sweep["dir"] / "mlartifacts").is_dir()  # the report beside the store, not under the cwd


def wandb_records(path: str) -> list:
    """The records of a W&B offline run file: LevelDB log blocks (32 KiB, 7-byte chunk headers) after
    W&B's 7-byte header, each record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks, buffered = 7, [], b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind in (2, 3):
            buffered += chunk
        elif kind == 4:
            chunks.append(buffered + chunk)
            buffered = b""
    records = []
    for chunk in chunks:
        record = pb.Record()
        record.ParseFromString(chunk)
        records.append(record)
    return records


@pytest.mark.slow
def test_wandb_offline_files_hold_every_run_once_with_the_parquet_history(sweep):
    trials, epochs = parquet(sweep["dir"])
    runs = {}
    for path in glob.glob(str(sweep["dir"] / "wandb" / "offline-run-*" / "*.wandb")):
        records = wandb_records(path)
        [start] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        if start.job_type == "report":
            continue
        config = {i.key: json.loads(i.value_json) for i in start.config.update}
        history = {int(r.history.step.num): {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                             for i in r.history.item}
                   for r in records if r.WhichOneof("record_type") == "history"}
        assert start.run_group == "tracked"
        assert config["lrsweep"]["trial_id"] not in runs, "a run logged twice"
        runs[config["lrsweep"]["trial_id"]] = (start, config, history)
    assert set(runs) == set(trials.trial_id)
    for row in trials.itertuples():
        start, config, history = runs[row.trial_id]
        assert start.job_type == row.stage and f"seed={row.seed}" in start.tags
        assert {k: config[k] for k in json.loads(row.hparams)} == json.loads(row.hparams)
        mine = epochs[epochs.trial_id == row.trial_id].sort_values("epoch")
        assert sorted(history) == mine.epoch.tolist()
        assert [history[e][score(row.stage)] for e in sorted(history)] == mine[score(row.stage)].tolist()


@pytest.mark.slow
def test_the_verdict_so_far_is_the_reports_verdict_marked_provisional(sweep, tmp_path):
    """A copy of the finished sweep without its tables reads as a sweep still running: its verdict so far
    (from the record's seed runs) is the report's own verdict, marked provisional."""
    from sweeps.observers.watch import PROVISIONAL, Verdicts, provisional_verdict, view_lines

    running = tmp_path / "tracked"
    running.mkdir()
    for name in ("spec.yaml", "progress.json"):
        shutil.copy(sweep["dir"] / name, running / name)
    shutil.copytree(sweep["dir"] / "record", running / "record")
    seeds, lines = provisional_verdict(str(running))
    assert seeds == 4
    report = (sweep["dir"] / "report" / "report.md").read_text()
    assert lines == [line for line in report_verdict(report).splitlines()[1:] if line.strip()]
    view, over = view_lines(str(running), Verdicts(str(running)))
    assert not over and PROVISIONAL in view and "in flight: 0 trial(s)" in view
    assert view[view.index(PROVISIONAL) + 1:] == [f"  {line}" for line in lines]


def test_the_watch_rides_out_a_storage_that_stops_answering(monkeypatch):
    """Between two readable views, reads that fail with a storage fault keep the last view under a line
    saying since when and why; a read that fails for another reason is not hidden."""
    import errno

    from sweeps.observers import watch

    script = [(["view 1"], False), OSError(errno.EIO, "Input/output error"),
              OSError("AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 7"), (["view 2"], True)]

    def view_lines(directory, verdict):
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    monkeypatch.setattr(watch, "load_sweep_spec", lambda directory: None)
    monkeypatch.setattr(watch, "view_lines", view_lines)
    out: list[str] = []
    assert watch.watch("s3://bucket/sweep", interval=0, out=out.append) == 0
    shown = [line for line in out if not line.startswith("--- ")]
    assert len(shown) == 6 and shown[0] == shown[2] == shown[4] == "view 1" and shown[5] == "view 2", shown
    notices = [re.fullmatch(r"the storage cannot be read since (\d\d:\d\d:\d\d) \((.*)\); retrying", line)
               for line in (shown[1], shown[3])]
    assert notices[0][1] == notices[1][1]  # since the first failed read
    assert "Input/output error" in notices[0][2] and "AWS Error NETWORK_CONNECTION" in notices[1][2]

    script[:] = [PermissionError(errno.EACCES, "Permission denied")]
    with pytest.raises(PermissionError):
        watch.watch("/sweeps/locked", interval=0, out=out.append)
