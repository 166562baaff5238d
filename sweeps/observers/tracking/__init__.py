"""Experiment trackers fed from the driver's record: observers of a sweep, never participants.

The spec's ``tracking`` section (``sweeps.spec.tracking``) names the trackers (``sweeps.trackers``:
the protocol, the registry, one file per tracker). This package feeds them, in three parts:

- ``process``: the transport. The record writer hands each finished Tune trial to an ``Observer``,
  whose threads send it down a pipe to a process of its own (``serve``, at a lower CPU priority than
  the trials), so a tracker never runs inside a trial nor takes the driver's interpreter lock, and a
  slow or dead one holds the driver for at most its ``timeout`` at the end of the session.
- ``convert`` and ``session``: what is logged. A trial becomes ``TrackedRun``s (one per run: a
  population's members each) and the report its verdict; the session hands them to each tracker, and
  a tracker that fails is warned about once and dropped for the session. The sweep and its record
  are untouched, and ``lrsweep track DIR`` logs afterwards whatever a tracker missed (each tracker
  logs a run at most once).
- ``command``: the doors: ``observe`` and ``finish`` for the driver, ``with_tracking`` for
  ``--track``, and ``track`` (``lrsweep track``).
"""

from sweeps.observers.tracking.command import finish, observe, track, with_tracking
from sweeps.observers.tracking.convert import TAG_COLUMNS, epoch_scalars, report_verdict, tracked_runs
from sweeps.observers.tracking.process import Detached, Observer, serve

__all__ = ["TAG_COLUMNS", "Detached", "Observer", "epoch_scalars", "finish", "observe", "report_verdict", "serve",
           "track", "tracked_runs", "with_tracking"]
