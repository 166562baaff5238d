"""The three trackers lrsweep feeds (TensorBoard, MLflow, Weights & Biases), one class each.

Each takes ``TrackedRun``s (``sweeps.tracking``) and logs a run at most once, however often it is
asked: its own store says what is already there, so a resumed sweep, or ``lrsweep track`` after it,
logs each run exactly once.

- TensorBoard: a run is its directory ``<logdir>/<pair>/<stage>-<index>``, written in a staging
  directory beside ``logdir`` and renamed into place whole; a directory there is a logged run.
- MLflow: a run is found by its tags (``lrsweep.sweep_dir``, ``lrsweep.key``); it is logged when it
  is terminated, which is the last write. One left RUNNING by a killed driver is deleted and logged
  again.
- W&B: a run's id is a hash of the sweep directory and the run, so it is the same in every session;
  a marker file under ``<local dir>/tracking/wandb/`` is written after ``finish``. Without a marker,
  the run's offline directories (a killed driver's) are removed first and the run logged again.

Libraries are imported when a tracker is built, never at module import.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

from sweeps.spec import Spec
from sweeps.storage import SweepDir

__all__ = ["MlflowTracker", "TensorBoardTracker", "WandbTracker", "local_dir", "make_tracker"]

SWEEP_DIR_TAG = "lrsweep.sweep_dir"
KEY_TAG = "lrsweep.key"
KIND_TAG = "lrsweep.kind"


def local_dir(sweep: SweepDir) -> str:
    """A driver-local folder for a sweep's trackers: the sweep directory, or a remote sweep's cache."""
    return os.path.dirname(os.path.abspath(sweep.journal_path))


class TensorBoardTracker:
    """Event files, one directory per run (see the module docstring)."""

    name = "tensorboard"
    takes_report = False  # its verdict text goes along when a report is rendered anyway; none rendered for it

    def __init__(self, spec: Spec, sweep: SweepDir, options: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self._writer = SummaryWriter
        self.logdir = os.path.abspath(options.get("logdir") or os.path.join(local_dir(sweep), "tensorboard"))
        self.staging = f"{self.logdir}.staging"
        self.where = self.logdir

    def log(self, run) -> bool:
        from torch.utils.tensorboard.summary import hparams

        final = os.path.join(self.logdir, run.key)
        if os.path.isdir(final):
            return False
        partial = os.path.join(self.staging, run.key)
        shutil.rmtree(partial, ignore_errors=True)  # a killed driver's half-written run
        writer = self._writer(partial, flush_secs=3600)
        for epoch, metrics in run.epochs:
            for key, value in metrics.items():
                writer.add_scalar(key, value, epoch)
        # The HParams dashboard: this run's hyperparameters and tags beside its final score.
        values = {k: v if isinstance(v, int | float | str | bool) else json.dumps(v)
                  for k, v in {**run.params, **run.tags}.items()}
        for summary in hparams(values, run.final):
            writer.file_writer.add_summary(summary)
        writer.add_text("tags", "\n".join(f"- {k}: {v}" for k, v in sorted(run.tags.items())))
        writer.close()
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(partial, final)
        return True

    def log_report(self, report_dir: str, verdict: str) -> None:
        writer = self._writer(os.path.join(self.logdir, "report"))
        writer.add_text("verdict", verdict)
        writer.close()

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class MlflowTracker:
    """One MLflow run per run under a parent run of the sweep (see the module docstring)."""

    name = "mlflow"
    takes_report = True

    def __init__(self, spec: Spec, sweep: SweepDir, options: Mapping[str, Any]) -> None:
        # A tracking server that is down must cost seconds, not MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow import MlflowClient

        uri = options.get("tracking_uri") or f"sqlite:///{os.path.join(local_dir(sweep), 'mlflow.db')}"
        self.where = uri
        self.client = MlflowClient(uri)
        self.sweep_dir = sweep.root
        name = options.get("experiment") or spec.name
        found = self.client.get_experiment_by_name(name)
        # A local store's default artifact root is ./mlruns under the driver's working directory: keep
        # the report beside the store instead. A server decides its own.
        artifacts = None if uri.startswith(("http://", "https://", "databricks")) else \
            f"file://{os.path.join(local_dir(sweep), 'mlartifacts')}"
        self.experiment = found.experiment_id if found else self.client.create_experiment(name, artifacts)
        self.runs: dict[str, Any] = {}  # key -> RunInfo of this sweep's runs already in the store
        parent = None
        for r in self._search(f"tags.`{SWEEP_DIR_TAG}` = '{self.sweep_dir}'"):
            if r.data.tags.get(KIND_TAG) == "sweep":
                parent = r.info.run_id
            elif r.info.status == "RUNNING":  # half-logged by a driver that was killed: log it again
                self.client.delete_run(r.info.run_id)
            else:
                self.runs[r.data.tags[KEY_TAG]] = r.info
        if parent is None:
            parent = self.client.create_run(
                self.experiment, run_name=spec.name,
                tags={SWEEP_DIR_TAG: self.sweep_dir, KIND_TAG: "sweep", "sweep": spec.name,
                      "spec_hash": spec.hash}).info.run_id
        self.parent = parent

    def _search(self, where: str) -> list:
        out, token = [], None
        while True:
            page = self.client.search_runs([self.experiment], where, max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def log(self, run) -> bool:
        from mlflow.entities import Metric, Param

        if run.key in self.runs:
            return False
        tags = {**run.tags, SWEEP_DIR_TAG: self.sweep_dir, KEY_TAG: run.key, KIND_TAG: "run",
                "mlflow.parentRunId": self.parent}
        created = self.client.create_run(self.experiment, run_name=run.name, tags=tags)
        run_id = created.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, epoch) for epoch, values in run.epochs for k, v in values.items()]
        params = [Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in run.params.items()]
        while params or metrics:  # MLflow's limits per batch: 100 params, 1000 entries in all
            some, params = params[:100], params[100:]
            cut = 1000 - len(some)
            self.client.log_batch(run_id, metrics=metrics[:cut], params=some)
            metrics = metrics[cut:]
        # Terminated last: a run that is not RUNNING is logged whole.
        self.client.set_terminated(run_id, "FINISHED" if run.tags.get("status") != "error" else "FAILED")
        self.runs[run.key] = created.info
        return True

    def log_report(self, report_dir: str, verdict: str) -> None:
        from mlflow.entities import RunTag

        self.client.log_artifacts(self.parent, report_dir, "report")
        self.client.log_text(self.parent, verdict, "verdict.md")
        # The run's description in MLflow's UI is this tag: the verdict is the sweep's summary.
        self.client.log_batch(self.parent, tags=[RunTag("mlflow.note.content", verdict)])
        self.client.set_terminated(self.parent, "FINISHED")

    def close(self) -> None:
        pass


class WandbTracker:
    """One W&B run per run, grouped by the sweep's name (see the module docstring)."""

    name = "wandb"
    takes_report = True

    def __init__(self, spec: Spec, sweep: SweepDir, options: Mapping[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        self.spec, self.sweep_dir = spec, sweep.root
        self.mode = options.get("mode", "online")
        self.dir = os.path.abspath(options.get("dir") or local_dir(sweep))
        self.init = {"project": options.get("project", "lrsweep"), "entity": options.get("entity"),
                     "mode": self.mode, "dir": self.dir, "group": spec.name}
        self.markers = os.path.join(local_dir(sweep), "tracking", "wandb")
        self.where = f"{self.init['project']} ({self.mode}, {self.dir})"

    def run_id(self, key: str) -> str:
        return hashlib.sha256(f"{self.sweep_dir}\n{key}".encode()).hexdigest()[:16]

    def _start(self, run_id: str, name: str, job_type: str, config: Mapping, tags: list[str]):
        for stale in glob.glob(os.path.join(self.dir, "wandb", f"*-{run_id}")):  # a killed driver's, or
            shutil.rmtree(stale, ignore_errors=True)  # an earlier report's: one offline run per id
        settings = self.wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True,
                                       save_code=False, x_save_requirements=False)
        return self.wandb.init(id=run_id, name=name, job_type=job_type, config=dict(config), tags=tags,
                               reinit="create_new", resume="allow", settings=settings, **self.init)

    def log(self, run) -> bool:
        run_id = self.run_id(run.key)
        marker = os.path.join(self.markers, run_id)
        if os.path.exists(marker):
            return False
        tags = [run.tags[k] for k in ("stage", "pair", "workload", "strategy")] + \
            [f"seed={run.tags['seed']}", f"spec_hash={run.tags['spec_hash']}"]
        started = self._start(run_id, run.name, run.tags["stage"], {**run.params, "lrsweep": run.tags}, tags)
        for epoch, metrics in run.epochs:
            started.log(dict(metrics), step=epoch)
        started.finish(exit_code=1 if run.tags.get("status") == "error" else 0)
        os.makedirs(self.markers, exist_ok=True)
        with open(marker, "w") as f:
            f.write(run.key)
        return True

    def log_report(self, report_dir: str, verdict: str) -> None:
        run_id = self.run_id("report")
        started = self._start(run_id, f"{self.spec.name} report", "report",
                              {"spec_hash": self.spec.hash, "sweep_dir": self.sweep_dir}, ["report"])
        artifact = self.wandb.Artifact(f"report-{self.spec.name}", type="report",
                                       description=verdict, metadata={"spec_hash": self.spec.hash})
        artifact.add_dir(report_dir)
        started.log_artifact(artifact)
        started.summary["verdict"] = verdict
        started.finish()

    def close(self) -> None:
        self.wandb.teardown()  # its service process, which wandb would otherwise stop at interpreter exit


TRACKER_CLASSES = {c.name: c for c in (TensorBoardTracker, MlflowTracker, WandbTracker)}


def make_tracker(name: str, spec: Spec, sweep: SweepDir, options: Mapping[str, Any]):
    """The tracker ``name`` of the spec's ``tracking`` section, connected (its library imported)."""
    return TRACKER_CLASSES[name](spec, sweep, options)
