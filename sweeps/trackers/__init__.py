"""The experiment trackers lrsweep feeds, behind one protocol, and their one registry.

Each tracker is one class in one file (``tensorboard``, ``mlflow``, ``wandb``) answering
``base.Tracker``: opened on a sweep, asked to log each run (at most once, however often it is asked:
its own store says what is already there, so a resumed sweep, or ``lrsweep track`` after it, logs
each run exactly once), the report, then closed. ``TRACKER_CLASSES`` below is the one place a tracker
is registered: the spec's ``tracking`` section is validated against ``TRACKERS`` (``sweeps.spec.tracking``,
and ``--track`` through it) and the tracking process opens trackers with ``make_tracker``, both read
from it. Adding a tracker: a ``Tracker`` subclass in a file of its own, named in that tuple, and an
optional extra of its name in ``pyproject.toml``.

Libraries are imported when a tracker is opened, never at import: the spec reads this registry
without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweeps.trackers.base import SweepInfo, TrackedRun, Tracker, TrackerInfo
from sweeps.trackers.mlflow import MlflowTracker
from sweeps.trackers.tensorboard import TensorBoardTracker
from sweeps.trackers.wandb import WandbTracker

__all__ = ["TRACKERS", "TRACKER_CLASSES", "SweepInfo", "TrackedRun", "Tracker", "TrackerInfo", "make_tracker"]

TRACKER_CLASSES: dict[str, type[Tracker]] = {c.info.name: c for c in (TensorBoardTracker, MlflowTracker, WandbTracker)}
"""Every tracker, by name, in the order error messages list them."""
TRACKERS: dict[str, TrackerInfo] = {name: c.info for name, c in TRACKER_CLASSES.items()}
"""What the spec validates a ``tracking`` entry against."""


def make_tracker(name: str, sweep: SweepInfo, options: Mapping[str, Any]) -> Tracker:
    """The tracker ``name`` of the spec's ``tracking`` section, opened on ``sweep`` (its library imported)."""
    return TRACKER_CLASSES[name](sweep, options)
