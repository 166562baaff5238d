"""TensorBoard: event files, one directory per run.

A run is its directory ``<logdir>/<pair>/<stage>-<index>``, written in a staging directory beside
``logdir`` and renamed into place whole; a directory there is a logged run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

from sweeps.trackers.base import SweepInfo, TrackedRun, Tracker, TrackerInfo

__all__ = ["TensorBoardTracker"]


class TensorBoardTracker(Tracker):
    """Event files, one directory per run (see the module docstring)."""

    info = TrackerInfo("tensorboard", "tensorboard", ("logdir",),
                       "event files, one run directory per run (logdir default: <sweep dir>/tensorboard)")
    takes_report = False  # its verdict text goes along when a report is rendered anyway; none rendered for it

    def __init__(self, sweep: SweepInfo, options: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self._writer = SummaryWriter
        self.logdir = os.path.abspath(options.get("logdir") or os.path.join(sweep.local_dir, "tensorboard"))
        self.staging = f"{self.logdir}.staging"
        self.where = self.logdir

    def log(self, run: TrackedRun) -> bool:
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
