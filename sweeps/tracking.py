"""Experiment trackers fed from the driver's record: observers of a sweep, never participants.

The spec's ``tracking`` section (``sweeps.spec.tracking``) names the trackers (``sweeps.trackers``).
While a sweep runs, the record writer hands each finished Tune trial to an ``Observer``, which
queues it; a driver thread turns it into ``TrackedRun``s (one per run: a population's members each)
and sends them to a process of their own (``serve``, at a lower CPU priority than the trials), which
imports the trackers' libraries and logs. So a tracker never runs inside a trial nor takes the
driver's interpreter lock, and a slow or dead one holds the driver for at most its ``timeout`` at
the end of the session. A tracker that fails is warned about once and dropped for the session; the
sweep and its record are untouched, and ``lrsweep track DIR`` logs afterwards whatever a tracker
missed (each tracker logs a run at most once: ``sweeps.trackers``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import queue
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sweeps.record import Record, RunRecord
from sweeps.spec import Spec
from sweeps.storage import SweepDir, command
from vocab.contracts import STAGE_METRIC

__all__ = ["Observer", "TrackedRun", "finish", "observe", "report_verdict", "track", "tracked_runs", "with_tracking"]

TAG_COLUMNS = ("sweep_id", "spec_hash", "stage", "workload", "strategy", "seed", "trial_id", "trial_index",
               "population_id", "canonical", "status")
"""Columns of the ``trials`` table that a run carries as tags (with its ``pair``), to filter runs by."""


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


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def epoch_scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The loggable numbers of one epoch's dict: every finite scalar (accuracies, losses, lr, phase,
    gradient evaluations, ...) and each per-layer-group list as ``layers/<name>/group<i>``."""
    out = {k: v for k, v in ((k, _scalar(v)) for k, v in row.items() if k != "epoch") if v is not None}
    for name, values in (row.get("layers") or {}).items():
        for i, value in enumerate(values or ()):
            if (v := _scalar(value)) is not None:
                out[f"layers/{name}/group{i}"] = v
    return out


def tracked_runs(spec: Spec, run: RunRecord) -> list[TrackedRun]:
    """The runs of one finished Tune trial as the ``trials`` table has them (same ids, hyperparameters
    and status; ``sweeps.results.trial_row``), with their epochs."""
    from sweeps.results import records, trial_row

    out = []
    for record in records([run]):
        row = trial_row(spec, record)
        key = f"{record.pair}/{record.stage}-{record.trial_index}"
        tags = {"pair": record.pair, **{c: str(row[c]) for c in TAG_COLUMNS}}
        params = {**json.loads(row["hparams"]), "epochs_planned": record.epochs_planned}
        epochs = tuple((int(h["epoch"]), epoch_scalars(h)) for h in record.history)
        out.append(TrackedRun(key, f"{record.pair} {record.stage} {record.trial_index}", params, tags, epochs))
    return out


def report_verdict(markdown: str) -> str:
    """The verdict section of a rendered ``report.md`` (the report's own words, not recomputed)."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("## "):
            if inside:
                break
            inside = line.strip() == "## Verdict"
        if inside:
            lines.append(line)
    return "\n".join(lines).strip()


class Session:
    """The trackers of one driver session, in the tracking process: each item is logged in turn, and a
    tracker that fails is warned about once (through ``say``) and dropped for the session."""

    def __init__(self, spec: Spec, sweep: SweepDir, say: Callable[[str], None]) -> None:
        from sweeps.trackers import make_tracker

        self.spec, self.sweep, self.say = spec, sweep, say
        self.logged = {t.name: 0 for t in spec.tracking}
        self.skipped = dict(self.logged)
        self.failed: set[str] = set()
        self.trackers: list = []
        for t in spec.tracking:
            try:
                self.trackers.append(make_tracker(t.name, spec, sweep, t.options_dict))
            except Exception as err:  # noqa: BLE001 - a tracker that cannot start costs a warning only
                self._fail(t.name, t.options_dict.get("tracking_uri", "-"), err)
        if any(t.takes_report for t in self.trackers):
            # The report is rendered when the sweep ends; its libraries (matplotlib, scipy: about 1 s)
            # load now, while the trials run, instead of after the last one.
            import reports.render  # noqa: F401

    def _fail(self, name: str, where: str, err: BaseException) -> None:
        self.failed.add(name)
        self.say(f"warning: tracker {name} ({where}) failed and is off for the rest of this session: "
                 f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. The sweep goes on and its "
                 f"results are intact; `{command('track', self.sweep.root)}` logs what it missed.")

    def _each(self, call: Callable[[Any], Any]) -> None:
        for tracker in self.trackers:
            if tracker.name in self.failed:
                continue
            try:
                call(tracker)
            except Exception as err:  # noqa: BLE001 - see __init__
                self._fail(tracker.name, tracker.where, err)

    def _log(self, tracker, runs: list[TrackedRun]) -> None:
        for run in runs:
            if tracker.log(run):
                self.logged[tracker.name] += 1
            else:
                self.skipped[tracker.name] += 1

    def runs(self, runs: list[TrackedRun]) -> None:
        self._each(lambda tracker: self._log(tracker, runs))

    def report(self) -> None:
        """The sweep's report (rendered by ``reports.render`` when a tracker takes it: MLflow, W&B; the
        one on disk when it is fresh) and its verdict, to every tracker."""
        wanted = any(t.takes_report for t in self.trackers if t.name not in self.failed)
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
        self._each(lambda tracker: tracker.log_report(report_dir, verdict))

    def close(self) -> dict[str, Any]:
        """Close the trackers; what this session logged (``Observer.counts``)."""
        self._each(lambda tracker: tracker.close())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report's figure workers
        return {"logged": self.logged, "skipped": self.skipped, "failed": sorted(self.failed),
                "cpu_seconds": time.process_time() + children.ru_utime + children.ru_stime}


NICENESS = 10
"""The tracking process's nice value: the trials come first; it logs when a CPU is free, and at the end."""


def serve() -> None:
    """The tracking process (``Observer`` starts it): reads ``(kind, value)`` pickles on stdin (first
    ``("start", (spec, root))``, then ``"runs"`` and ``"report"``, last ``"stop"`` or end of file, a
    driver gone) and writes ``("say", line)`` and, after closing its trackers, ``("done", counts)``."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not break the messages on stdout
    os.nice(NICENESS)
    inbox = sys.stdin.buffer

    def send(kind: str, value: Any) -> None:
        pickle.dump((kind, value), channel)
        channel.flush()

    _, (spec, root) = pickle.load(inbox)
    session = Session(spec, SweepDir(root), lambda line: send("say", line))
    while True:
        try:
            kind, value = pickle.load(inbox)
        except (EOFError, pickle.UnpicklingError):  # the driver is gone, maybe mid-message
            break
        if kind == "stop":
            break
        if kind == "runs":
            session.runs(value)
        else:
            session.report()
    counts = session.close()
    with contextlib.suppress(BrokenPipeError):
        send("done", counts)
    # Every tracker is closed: skip the interpreter's teardown of MLflow, matplotlib and torch, which
    # takes about 1 s that the driver would wait for.
    sys.stderr.flush()
    os._exit(0)


class Observer:
    """The trackers of one driver session, in a process of their own (see the module docstring).

    ``run_finished`` (the record writer's hook) only queues: a thread turns each run into
    ``TrackedRun``s and hands them to the tracking process, another prints what that process says.
    ``close(timeout)`` waits at most that long for it, then stops it and leaves what is left to
    ``lrsweep track``.
    """

    def __init__(self, spec: Spec, sweep: SweepDir, out: Callable[[str], None],
                 backlog: Iterable[RunRecord] = ()) -> None:
        self.spec, self.sweep, self.out = spec, sweep, out
        self.queue: queue.Queue = queue.Queue()
        self.counts: dict[str, Any] | None = None
        self.closed = False
        self.done = threading.Event()
        # Not multiprocessing: its spawn would import the caller's __main__ again, and a fork the
        # driver's Ray threads.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-c", "from sweeps.tracking import serve; serve()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.queue.put(("start", (spec, sweep.root)))
        for run in backlog:  # a resume's runs, which a killed driver may not have logged
            self.queue.put(("run", run))
        for target in (self._feed, self._relay):
            threading.Thread(target=target, name=f"lrsweep-tracking{target.__name__}", daemon=True).start()

    @property
    def timeout(self) -> float:
        """How long the driver waits for the trackers at the end: the longest of the spec's."""
        return max(t.timeout for t in self.spec.tracking)

    def run_finished(self, run: RunRecord) -> None:
        self.queue.put(("run", run))

    def __reduce__(self):
        # Tune pickles its callbacks with the experiment state, a cache lrsweep never restores: a copy
        # of the observer observes nothing.
        return (Detached, ())

    def report(self) -> None:
        """Ask for the report (``Session.report``), after every run queued so far."""
        self.queue.put(("report", None))

    def _feed(self) -> None:
        while True:
            kind, value = self.queue.get()
            if kind == "run":
                try:
                    kind, value = "runs", tracked_runs(self.spec, value)
                except Exception as err:  # noqa: BLE001 - a record the trackers cannot read: warn, go on
                    self.out(f"warning: tracking skipped a run it could not read: {type(err).__name__}: {err}")
                    continue
            try:
                pickle.dump((kind, value), self.process.stdin)
                self.process.stdin.flush()
                if kind == "stop":
                    self.process.stdin.close()
            except OSError:  # the tracking process is gone; close() says so
                return
            if kind == "stop":
                return

    def _relay(self) -> None:
        while True:
            try:
                kind, value = pickle.load(self.process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            if kind == "say":
                self.out(value)
            else:
                self.counts = value
        self.done.set()

    def close(self, timeout: float | None) -> bool:
        """Stop after the queued items, waiting at most ``timeout`` seconds (None: until done); True when
        everything queued was handed to the trackers that still work. Once only; later calls return
        the same."""
        if not self.closed:
            self.closed = True
            self.queue.put(("stop", None))
            if not self.done.wait(timeout):
                self.out(f"warning: the trackers did not take every run within {timeout:g}s; the sweep's results "
                         f"are complete. `{command('track', self.sweep.root)}` logs the rest.")
                self.process.kill()
            elif self.counts is None:
                self.out(f"warning: the tracking process ended without closing its trackers (exit "
                         f"{self.process.wait()}); `{command('track', self.sweep.root)}` logs what they missed.")
            self.process.wait()
        return self.counts is not None and not self.counts["failed"]

    def say_counts(self) -> None:
        """One line per working tracker: runs it logged in this session, and runs it had already."""
        if self.counts is None:
            return
        for name, logged in self.counts["logged"].items():
            if name not in self.counts["failed"]:
                self.out(f"{name}: {logged} runs logged, {self.counts['skipped'][name]} already there")
        self.out(f"tracking process: {self.counts['cpu_seconds']:.1f} s of CPU")


class Detached:
    """What a pickled ``Observer`` becomes: its hook does nothing."""

    def run_finished(self, run: RunRecord) -> None:
        pass


def observe(spec: Spec, sweep: SweepDir, out: Callable[[str], None]) -> Observer | None:
    """An ``Observer`` of the spec's trackers, given the record's finished runs first (None when the
    spec tracks nothing)."""
    if not spec.tracking:
        return None
    return Observer(spec, sweep, out, Record(sweep).runs().values())


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


def finish(observer: Observer | None, timeout: float | None = None) -> bool:
    """At the end of a sweep (its tables written): the report to the trackers, then ``close``, waiting
    at most ``timeout`` seconds (None: ``Observer.timeout``). True when every tracker took
    everything."""
    if observer is None:
        return True
    observer.report()
    done = observer.close(observer.timeout if timeout is None else timeout)
    observer.say_counts()
    return done


def with_tracking(spec: Spec, entries: Iterable[str]) -> Spec:
    """``spec`` with the command line's ``--track`` entries added (``NAME`` or ``NAME={yaml options}``,
    the latter winning over the spec's); SpecError naming ``--track`` on a bad one."""
    import dataclasses

    import yaml

    from sweeps.spec import Problems, SpecError
    from sweeps.spec.tracking import parse_tracking, tracking_to_dict

    raw = tracking_to_dict(spec.tracking)
    p = Problems()
    for entry in entries:
        name, sep, options = entry.partition("=")
        try:
            raw[name] = yaml.safe_load(options) if sep else True
        except yaml.YAMLError as err:
            p.add(f"--track {entry}", f"options are not valid YAML ({err}); allowed: NAME or NAME={{key: value}}")
    trackers = parse_tracking(raw, p, "--track")
    if p.items:
        raise SpecError(p.items, "--track")
    return dataclasses.replace(spec, tracking=trackers)


def track(directory: str, entries: Iterable[str] = (), out: Callable[[str], None] = print) -> int:
    """``lrsweep track DIR``: log a sweep's finished runs (and its report, once its tables are written)
    to its trackers and those of ``entries``, skipping runs already logged; waits for the trackers.
    Holds the sweep's lease, so it never logs beside a running driver. 0 when every tracker took
    everything, 1 otherwise."""
    from sweeps.record import Lease
    from sweeps.results import tables_complete
    from sweeps.storage import SweepError, load_sweep_spec

    spec, sweep = load_sweep_spec(directory)
    spec = with_tracking(spec, entries)
    if not spec.tracking:
        raise SweepError(f"{sweep.root}: its spec has no tracking section; name a tracker with --track "
                         "(tensorboard, mlflow, wandb)")
    with Lease(sweep, out):
        observer = observe(spec, sweep, out)
        if tables_complete(sweep):
            return 0 if finish(observer, timeout=threading.TIMEOUT_MAX) else 1
        out(f"{sweep.root}: no results tables yet: the finished runs are logged, the report is not")
        done = observer.close(None)
        observer.say_counts()
        return 0 if done else 1
