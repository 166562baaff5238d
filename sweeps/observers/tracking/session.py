"""The trackers of one driver session, inside the tracking process: each converted run and the
report are handed to every tracker in turn (the ``sweeps.trackers.Tracker`` questions), and a tracker
that fails is warned about once and dropped for the session; the sweep and its record are untouched.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

from sweeps.observers.tracking.convert import report_verdict, sweep_info
from sweeps.record.storage import SweepDir, command
from sweeps.spec import Spec
from sweeps.trackers import TrackedRun, Tracker, make_tracker

__all__ = ["Session"]


class Session:
    """The spec's trackers, opened on the sweep; ``say`` takes the warnings (see the module docstring)."""

    def __init__(self, spec: Spec, sweep: SweepDir, say: Callable[[str], None]) -> None:
        self.spec, self.sweep, self.say = spec, sweep, say
        self.logged = {t.name: 0 for t in spec.tracking}
        self.skipped = dict(self.logged)
        self.failed: set[str] = set()
        self.trackers: dict[str, Tracker] = {}
        info = sweep_info(spec, sweep)
        for t in spec.tracking:
            try:
                self.trackers[t.name] = make_tracker(t.name, info, t.options_dict)
            except Exception as err:  # noqa: BLE001 - a tracker that cannot start costs a warning only
                self._fail(t.name, t.options_dict.get("tracking_uri", "-"), err)
        if any(t.takes_report for t in self.trackers.values()):
            # The report is rendered when the sweep ends; its libraries (matplotlib, scipy: about 1 s)
            # load now, while the trials run, instead of after the last one.
            import reports.render  # noqa: F401

    def _fail(self, name: str, where: str, err: BaseException) -> None:
        self.failed.add(name)
        self.say(f"warning: tracker {name} ({where}) failed and is off for the rest of this session: "
                 f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. The sweep goes on and its "
                 f"results are intact; `{command('track', self.sweep.root)}` logs what it missed.")

    def _each(self, call: Callable[[str, Tracker], Any]) -> None:
        for name, tracker in self.trackers.items():
            if name in self.failed:
                continue
            try:
                call(name, tracker)
            except Exception as err:  # noqa: BLE001 - see __init__
                self._fail(name, tracker.where, err)

    def _log(self, name: str, tracker: Tracker, runs: list[TrackedRun]) -> None:
        for run in runs:
            if tracker.log(run):
                self.logged[name] += 1
            else:
                self.skipped[name] += 1

    def runs(self, runs: list[TrackedRun]) -> None:
        self._each(lambda name, tracker: self._log(name, tracker, runs))

    def report(self) -> None:
        """The sweep's report (rendered by ``reports.render`` when a tracker takes it: MLflow, W&B; the
        one on disk when it is fresh) and its verdict, to every tracker."""
        wanted = any(t.takes_report for name, t in self.trackers.items() if name not in self.failed)
        try:
            report_dir = _fresh_report(self.sweep)
            if report_dir is None and wanted:
                from reports.render import build_report

                report_dir = build_report([self.sweep.root]).out_dir
            if report_dir is None:
                return
            with open(os.path.join(report_dir, "report.md")) as f:
                verdict = report_verdict(f.read())
        except Exception as err:  # noqa: BLE001 - no report (e.g. no seed run finished): the runs are logged
            self.say(f"warning: no report for the trackers: {type(err).__name__}: {err}")
            return
        self._each(lambda name, tracker: tracker.log_report(report_dir, verdict))

    def close(self) -> dict[str, Any]:
        """Close the trackers; what this session logged (``sweeps.observers.tracking.process.Observer.counts``)."""
        self._each(lambda name, tracker: tracker.close())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report's figure workers
        return {"logged": self.logged, "skipped": self.skipped, "failed": sorted(self.failed),
                "cpu_seconds": time.process_time() + children.ru_utime + children.ru_stime}


def _fresh_report(sweep: SweepDir) -> str | None:
    """The sweep's report folder when it was rendered from the current tables (``lrsweep track`` after
    a sweep that rendered it), else None."""
    if not sweep.is_local:
        return None
    report = sweep.path("report")
    try:
        fresh = os.path.getmtime(f"{report}/report.html") >= os.path.getmtime(sweep.path("trials.parquet"))
    except OSError:
        return None
    return report if fresh else None
