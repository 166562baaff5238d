"""Weights & Biases: one W&B run per run, grouped by the sweep's name.

A run's id is a hash of the sweep directory and the run, so it is the same in every session; a marker
file under ``<local dir>/tracking/wandb/`` is written after ``finish``. Without a marker, the run's
offline directories (a killed driver's) are removed first and the run logged again.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
from collections.abc import Mapping
from typing import Any

from sweeps.trackers.base import SweepInfo, TrackedRun, Tracker, TrackerInfo

__all__ = ["MODES", "WandbTracker"]

MODES = ("online", "offline", "disabled")


class WandbTracker(Tracker):
    """One W&B run per run, grouped by the sweep's name (see the module docstring)."""

    info = TrackerInfo("wandb", "wandb", ("project", "entity", "mode", "dir"),
                       "one W&B run per run, grouped by sweep (project default lrsweep; mode online, offline or "
                       "disabled; dir default: the sweep dir)", choices=(("mode", MODES),))

    def __init__(self, sweep: SweepInfo, options: Mapping[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        self.sweep = sweep
        self.mode = options.get("mode", "online")
        self.dir = os.path.abspath(options.get("dir") or sweep.local_dir)
        self.init = {"project": options.get("project", "lrsweep"), "entity": options.get("entity"),
                     "mode": self.mode, "dir": self.dir, "group": sweep.name}
        self.markers = os.path.join(sweep.local_dir, "tracking", "wandb")
        self.where = f"{self.init['project']} ({self.mode}, {self.dir})"

    def run_id(self, key: str) -> str:
        return hashlib.sha256(f"{self.sweep.root}\n{key}".encode()).hexdigest()[:16]

    def _start(self, run_id: str, name: str, job_type: str, config: Mapping, tags: list[str]):
        for stale in glob.glob(os.path.join(self.dir, "wandb", f"*-{run_id}")):  # a killed driver's, or
            shutil.rmtree(stale, ignore_errors=True)  # an earlier report's: one offline run per id
        settings = self.wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True,
                                       save_code=False, x_save_requirements=False)
        return self.wandb.init(id=run_id, name=name, job_type=job_type, config=dict(config), tags=tags,
                               reinit="create_new", resume="allow", settings=settings, **self.init)

    def log(self, run: TrackedRun) -> bool:
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
        started = self._start(run_id, f"{self.sweep.name} report", "report",
                              {"spec_hash": self.sweep.spec_hash, "sweep_dir": self.sweep.root}, ["report"])
        artifact = self.wandb.Artifact(f"report-{self.sweep.name}", type="report",
                                       description=verdict, metadata={"spec_hash": self.sweep.spec_hash})
        artifact.add_dir(report_dir)
        started.log_artifact(artifact)
        started.summary["verdict"] = verdict
        started.finish()

    def close(self) -> None:
        self.wandb.teardown()  # its service process, which wandb would otherwise stop at interpreter exit
