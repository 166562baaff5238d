"""The tracking process and its link to the driver: transport only (what is logged is
``sweeps.observers.tracking.session``'s and ``sweeps.observers.tracking.convert``'s).

The record writer hands each finished Tune trial to an ``Observer``, which queues it; a driver thread
converts it (``tracked_runs``) and pickles it down the stdin of a process of its own (``serve``, at a
lower CPU priority than the trials), which imports the trackers' libraries and logs; another thread
relays what that process says. So a tracker never runs inside a trial nor takes the driver's
interpreter lock, and a slow or dead one holds the driver for at most its ``timeout`` at the end of the
session. The process's lifetime is tied to the driver's: it ends when its stdin closes, a driver gone.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sweeps.observers.tracking.convert import tracked_runs
from sweeps.observers.tracking.session import Session
from sweeps.record.durable import RunRecord
from sweeps.record.storage import SweepDir, command
from sweeps.spec import Spec

__all__ = ["NICENESS", "Detached", "Observer", "serve"]

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
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 3))  # the project root
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-c", "from sweeps.observers.tracking import serve; serve()"],
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
