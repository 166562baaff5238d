"""MLflow: one MLflow run per run, under a parent run of the sweep.

A run is found by its tags (``lrsweep.sweep_dir``, ``lrsweep.key``); it is logged when it is
terminated, which is the last write. One left RUNNING by a killed driver is deleted and logged again.
The report goes to the parent run, its verdict as the run's description.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from sweeps.trackers.base import SweepInfo, TrackedRun, Tracker, TrackerInfo

__all__ = ["KEY_TAG", "KIND_TAG", "SWEEP_DIR_TAG", "MlflowTracker"]

SWEEP_DIR_TAG = "lrsweep.sweep_dir"
KEY_TAG = "lrsweep.key"
KIND_TAG = "lrsweep.kind"


class MlflowTracker(Tracker):
    """One MLflow run per run under a parent run of the sweep (see the module docstring)."""

    info = TrackerInfo("mlflow", "mlflow", ("tracking_uri", "experiment"),
                       "one MLflow run per run under a parent run of the sweep (tracking_uri default: "
                       "sqlite:///<sweep dir>/mlflow.db; experiment default: the sweep's name)")

    def __init__(self, sweep: SweepInfo, options: Mapping[str, Any]) -> None:
        # A tracking server that is down must cost seconds, not MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow import MlflowClient

        uri = options.get("tracking_uri") or f"sqlite:///{os.path.join(sweep.local_dir, 'mlflow.db')}"
        self.where = uri
        self.client = MlflowClient(uri)
        self.sweep_dir = sweep.root
        name = options.get("experiment") or sweep.name
        found = self.client.get_experiment_by_name(name)
        # A local store's default artifact root is ./mlruns under the driver's working directory: keep
        # the report beside the store instead. A server decides its own.
        artifacts = None if uri.startswith(("http://", "https://", "databricks")) else \
            f"file://{os.path.join(sweep.local_dir, 'mlartifacts')}"
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
                self.experiment, run_name=sweep.name,
                tags={SWEEP_DIR_TAG: self.sweep_dir, KIND_TAG: "sweep", "sweep": sweep.name,
                      "spec_hash": sweep.spec_hash}).info.run_id
        self.parent = parent

    def _search(self, where: str) -> list:
        out, token = [], None
        while True:
            page = self.client.search_runs([self.experiment], where, max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def log(self, run: TrackedRun) -> bool:
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
        # The client splits a batch at MLflow's limits (100 params, 1000 entries a request) since mlflow
        # 1.27. Synchronous whatever MLFLOW_ENABLE_ASYNC_LOGGING says: the run is terminated next, and a
        # terminated run must hold everything.
        self.client.log_batch(run_id, metrics=metrics, params=params, synchronous=True)
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
