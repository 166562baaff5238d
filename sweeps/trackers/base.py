"""What a tracker is: the one protocol every tracker answers, and the values it is handed.

A tracker observes a sweep (Ray Tune's ``Callback``, not a participant): the tracking process
(``sweeps.observers.tracking``) asks each tracker the same questions in the same order, and nothing a tracker
answers reaches a trial or the record. Imports nothing of the project but ``vocab``, so the spec's
validation (``sweeps.spec.tracking``) reads the registry without the trackers' libraries.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from vocab.contracts import STAGE_METRIC

__all__ = ["SweepInfo", "TrackedRun", "Tracker", "TrackerInfo"]


@dataclass(frozen=True)
class TrackerInfo:
    """One tracker lrsweep can feed, as the spec sees it: its library (an optional extra of the same
    name), the options its spec entry takes, and for an option with a fixed set of values, that set."""

    name: str
    module: str
    options: tuple[str, ...]
    description: str
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def install(self) -> str:
        return f"pip install -e '.[{self.name}]'"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


@dataclass(frozen=True)
class SweepInfo:
    """What a tracker knows of the sweep it observes: the spec's name and hash, the sweep directory
    (``root``, a path or a URI: it names the sweep in the tracker's store) and a driver-local folder
    for the tracker's own files (``local_dir``: the sweep directory, or a remote sweep's cache)."""

    name: str
    spec_hash: str
    root: str
    local_dir: str


@dataclass(frozen=True)
class TrackedRun:
    """One run as a tracker logs it: ``key`` (``<pair>/<stage>-<index>``, unique in the sweep), its
    hyperparameters, its tags and its per-epoch scalars ``((epoch, {metric: value}), ...)``."""

    key: str
    name: str
    params: Mapping[str, Any]
    tags: Mapping[str, str]
    epochs: tuple[tuple[int, Mapping[str, float]], ...]

    @property
    def final(self) -> dict[str, float]:
        """The stage's score at the last epoch (the HParams dashboard's metric); {} without one."""
        metric = STAGE_METRIC[self.tags["stage"]]
        last = self.epochs[-1][1] if self.epochs else {}
        return {metric: last[metric]} if metric in last else {}


class Tracker(abc.ABC):
    """One experiment tracker. The tracking process opens it on a sweep (the constructor,
    ``cls(sweep: SweepInfo, options)``: its library imported, its store reached, what the store already
    holds of this sweep read), then asks ``log`` for each finished run, ``log_report`` once when the
    sweep's tables are written, and ``close``. Any of these may raise: the tracker is then warned about
    and dropped for the session, and the sweep goes on (``sweeps.observers.tracking.session``).

    A subclass sets ``info`` (its entry in the registry, ``sweeps.trackers``) and ``where`` (where it
    logs, for that warning), and imports its library in the constructor, never at module import.
    """

    info: ClassVar[TrackerInfo]
    takes_report: ClassVar[bool] = True
    """Whether the report is rendered for this tracker when none is fresh on disk (rendering takes
    seconds; a tracker that keeps only the verdict's text does without)."""
    where: str

    @abc.abstractmethod
    def log(self, run: TrackedRun) -> bool:
        """Log ``run`` whole, unless the tracker's store already holds it; True when it logged it now.
        A run is logged at most once however often it is asked, so a resumed sweep, or ``lrsweep track``
        after one, asks again without a second copy."""

    @abc.abstractmethod
    def log_report(self, report_dir: str, verdict: str) -> None:
        """The sweep's report folder (``report.md``, ``report.html``, figures) and its verdict section."""

    def close(self) -> None:  # noqa: B027 - most trackers hold nothing to release
        """Release what the tracker holds (a library's service process, staging files)."""
