"""Starting Ray and the run side of a Tune experiment, shared by sweeps (``sweeps.engine.experiment``) and
reproductions (``sweeps.commands.reproduce``): the cluster connection, quiet output, trial names, storage,
retries, checkpoints kept and the progress callback."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ray.tune import Callback

from lrresults import crashpoints
from sweeps.engine.trial_entry import LOG_DIR_VAR
from sweeps.observers.progress import Progress, trial_error
from sweeps.record.durable import Record, RunRecord
from sweeps.record.results import dedupe_epochs, describe_error
from sweeps.record.storage import EXPERIMENT, StorageWatch, SweepDir
from sweeps.spec import Spec, plugins

__all__ = ["LOOPBACK", "MAX_FAILURES", "SNAPSHOT_PERIOD_S", "LatestCheckpointOnly", "RecordWriter",
           "init_ray", "loopback_node", "quiet_tune", "retry_trials_lost_in_reset", "run_config", "trial_dirname",
           "tune_defaults_for_fit"]

LOOPBACK = "127.0.0.1"
"""The node address of the embedded Ray: it listens on this machine only."""
MAX_FAILURES = 2
"""Times Tune retries a crashed trial (from its last checkpoint) before it counts as errored."""


def init_ray(address: str | None, num_cpus: int | None, spec: Spec | None = None,
             sweep: SweepDir | None = None) -> bool:
    """Start an embedded local Ray (``address`` None), listening on loopback only (``loopback_node``),
    or connect to a cluster; True if we started it.

    The job's runtime_env carries the spec's plugins to every worker (``sweeps.spec.plugins``). Inside a
    Ray Job sent by ``lrsweep submit`` the job's own runtime_env carries them already, and Ray
    refuses a driver runtime_env that sets the same fields again. The spec's text tasks travel as
    names (``LRSWEEP_TEXT_TASKS``).
    """
    import ray

    if ray.is_initialized():
        return False
    env = plugins.runtime_env(spec.plugins, [w.name for w in spec.workloads if w.text]) if spec else {}
    if sweep is not None and sweep.is_local:  # trials' library chatter (LOG_DIR_VAR) into the sweep dir
        env.setdefault("env_vars", {})[LOG_DIR_VAR] = sweep.path("logs")
    env.setdefault("env_vars", {}).update(crashpoints.worker_env())  # the kill tests' hook, off by default
    if os.environ.get(plugins.ENV_VAR):  # a job from `lrsweep submit`: its runtime_env ships the plugins
        env.pop("py_modules", None)
        env.get("env_vars", {}).pop(plugins.ENV_VAR, None)
    quiet = {"log_to_driver": bool(os.environ.get("LRSWEEP_TRIAL_LOGS")), "logging_level": "WARNING",
             "runtime_env": {k: v for k, v in env.items() if v} or None}
    if address is None:
        # "local" always starts a private Ray: never join a cluster someone started on this machine.
        with loopback_node():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK,
                     **quiet)
    else:
        ray.init(address=address, **quiet)
    return True


@contextmanager
def loopback_node() -> Iterator[None]:
    """While Ray starts, let its node address be loopback: Ray 2.60 binds its servers (GCS, raylet,
    workers' and driver's gRPC, agents, autoscaler metrics) to the node address.

    Ray replaces a loopback ``_node_ip_address`` by the machine's routable address unless
    ``ray_constants.ENABLE_RAY_CLUSTER`` is false (its macOS / Windows default, env
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, read once at import), so the flag is off for the start
    only: a later ``--address`` connection in this process is unaffected.
    """
    import ray._private.ray_constants as ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def trial_dirname(trial) -> str:
    """Trial directories named by trial id: Tune's default name embeds the whole (long) config."""
    return trial.trial_id


def quiet_tune() -> None:
    """One line per finished trial is our progress output; keep Tune's own output out of the log."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0 fully


SNAPSHOT_PERIOD_S: str | None = "inf"
"""Tune's experiment snapshot period inside ``fit`` (``TUNE_GLOBAL_CHECKPOINT_S``): never, but the one
Tune forces when the experiment ends. A resume reads lrsweep's record, never Tune's snapshot, and a
snapshot rewrites every trial's state, so its cost grows with the trials done (issue 35)."""


SNAPSHOT_SYNC_TIMEOUT_S = 60
"""The longest the driver waits for Tune's experiment snapshot to reach a URI storage."""


@contextmanager
def tune_defaults_for_fit() -> Iterator[None]:
    """Inside: Tune adds none of its own CSV, JSON and TensorBoard copies of every result, and takes
    no periodic experiment snapshot (``SNAPSHOT_PERIOD_S``); a user's own setting of either
    variable wins. The record (sweeps.record.durable) is the sweep's, and the TensorBoard histograms of the
    per-layer lists cost the driver about 4 s of CPU per population trial of 80 epochs, taken from
    the trials' cores (BENCHMARKS.md). Set only around ``fit`` so that other Tune runs in the process
    (and servers it starts) keep Tune's defaults."""
    wanted = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_GLOBAL_CHECKPOINT_S": SNAPSHOT_PERIOD_S}
    before = {name: os.environ.get(name) for name in wanted}
    for name, value in wanted.items():
        if value is not None:
            os.environ.setdefault(name, value)
    analysis = logging.getLogger("ray.tune.analysis.experiment_analysis")
    analysis.addFilter(_no_missing_metrics)
    try:
        with retry_trials_lost_in_reset():
            yield
    finally:
        analysis.removeFilter(_no_missing_metrics)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)


@contextmanager
def retry_trials_lost_in_reset() -> Iterator[None]:
    """Inside: Tune retries a trial whose reused actor died while taking it (``reset``) as it retries
    any other crashed trial.

    Ray 2.60's Tune retries a trial that fails while RUNNING, and one whose new actor fails in its
    creation (``TuneController._actor_failed`` sets it RUNNING first for that reason). A trial handed a
    cached actor (``reuse_actors``) is still PENDING while the actor resets, so when that actor's
    node or process dies then, ``_process_trial_failure`` errors the trial for good with its retries
    unused (seen in the suite: a worker node killed as its actor took the next seed run). This does
    for a failed reset what ``_actor_failed`` does for a failed creation; tests/test_lost_reset.py
    reproduces the failure with Tune alone.
    """
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

    original = TuneController._trial_task_failure

    def _trial_task_failure(self, trial, exception):
        if trial in self._resetting_trials and trial.status == Trial.PENDING:
            self._resetting_trials.discard(trial)
            self._set_trial_status(trial, Trial.RUNNING)
        return original(self, trial, exception)

    TuneController._trial_task_failure = _trial_task_failure
    try:
        yield
    finally:
        TuneController._trial_task_failure = original


def _no_missing_metrics(record: logging.LogRecord) -> bool:
    """Drop the ResultGrid's warning that trials have no result.json: without the loggers none has."""
    return not record.getMessage().startswith("Failed to fetch metrics")


TUNE_KEYS = frozenset({"config", "date", "hostname", "node_ip", "pid", "timestamp", "time_this_iter_s",
                       "time_total_s", "time_since_restore", "iterations_since_restore", "training_iteration",
                       "trial_id", "done", "checkpoint_dir_name", "should_checkpoint", "experiment_tag"})
"""What Tune adds to every reported result: not the trial's, and not recorded."""


class RecordWriter(Callback):
    """The driver's side of the durable record: each trial's reported epochs, kept in memory, and
    its run record written whole when Tune reports it finished or errored (after its retries). A
    trial resumed from a checkpoint reports that checkpoint's epochs again first, so the epochs of
    every session end up here. ``observer`` (``sweeps.observers.tracking.Observer.run_finished``) is handed each
    run record once it is written."""

    def __init__(self, record: Record, journal: Callable[[], None] | None = None,
                 observer: Callable[[RunRecord], None] | None = None, watch: StorageWatch | None = None) -> None:
        self.record, self.journal, self.observer = record, journal, observer
        self.watch = watch or StorageWatch()
        self.histories: dict[str, list[dict]] = {}

    def _push_journal(self) -> None:
        if self.journal is not None:
            try:
                self.journal()
            except OSError as err:
                self.watch.failed(err)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.histories[trial.trial_id] = []
        self._push_journal()  # its point was just asked: the journal has it

    def on_step_begin(self, iteration, trials, **info) -> None:
        # Raised here, the fault ends Tune's loop at once: a stop (``Stopper.stop_all``) would go on to
        # Tune's final snapshot and its listing of the storage, each waiting out the storage's timeouts.
        if self.watch.fault is not None:
            raise self.watch.fault

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self.watch.stopping(trial_error(trial))  # a retry cannot write either: stop at once

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.histories.setdefault(trial.trial_id, []).append({k: v for k, v in result.items() if k not in TUNE_KEYS})

    def _write(self, trial, error: BaseException | None) -> None:
        history = tuple(dedupe_epochs(self.histories.pop(trial.trial_id, [])))
        if self.watch.stopping(error):
            return  # not recorded: it runs again on resume
        summary, full = describe_error(error) if error is not None else (None, None)
        run = RunRecord(trial.trial_id, trial.config, history, summary, full)
        try:
            self.record.write_run(run)
        except OSError as err:
            self.watch.failed(err)
            return
        self._push_journal()
        if self.observer is not None:
            self.observer(run)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._write(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._write(trial, trial_error(trial) or RuntimeError("the trial failed (its error could not be read)"))


class LatestCheckpointOnly(Callback):
    """Deletes a trial's previous Tune checkpoint when it saves a new one, so each trial keeps one.

    ``CheckpointConfig(num_to_keep=1)`` keeps one too, but then Tune snapshots the whole experiment
    (every trial's state, rewritten) and syncs it after every trial checkpoint: a cost per trial
    that grew with the trials done (issue 35, BENCHMARKS.md). Tune calls this before it takes the
    new checkpoint as the trial's latest, so ``trial.checkpoint`` is still the one it replaces; a
    retry after a crashed worker restores the new one, and a resume reads the record's own copy.
    """

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        previous = trial.checkpoint
        if previous is None or previous.path == checkpoint.path:
            return
        try:
            previous.filesystem.delete_dir(previous.path)
        except (FileNotFoundError, OSError) as err:  # a leftover costs disk, never a result
            logging.getLogger(__name__).warning("could not delete the superseded checkpoint %s: %s",
                                                previous.path, err)


def run_config(sweep: SweepDir, progress: Progress, writer: RecordWriter):
    """The experiment's RunConfig: its storage, retries, one kept checkpoint per trial
    (``LatestCheckpointOnly``), the progress callback and the record writer (before it, so a line is
    printed for a recorded trial), which ends the experiment when the storage fails."""
    from ray import tune

    return tune.RunConfig(
        name=EXPERIMENT,
        storage_path=sweep.root,
        # Tune's experiment snapshot is a cache (a resume reads the record): when an object store stops
        # answering, waiting Tune's default 30 minutes for its upload at the end would hold the driver.
        sync_config=tune.SyncConfig(sync_timeout=SNAPSHOT_SYNC_TIMEOUT_S),
        failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        # None: Tune deletes nothing and forces no snapshot per checkpoint; LatestCheckpointOnly deletes
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        callbacks=[writer, progress, LatestCheckpointOnly()],
        verbose=0,
    )
