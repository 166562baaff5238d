"""Waiting in tests without wall-clock budgets: on a loaded machine slow work is not a failure, stalled work is.

``wait_for`` with a ``progress`` function fails only after ``timeout`` seconds in which its value did
not change (a stall), however long the whole wait takes; pytest's own timeout stays the last guard
against a hang. ``sweep_progress`` is such a value for a sweep directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STALL_S = 300
"""Seconds without any progress after which a wait fails: Ray's start-up plus one trial's first epoch
on a machine several times oversubscribed fit well inside it."""


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition",
             progress: Callable[[], Any] | None = None):
    """Poll ``predicate`` until it returns a truthy value (returned). Without ``progress``: fail after
    ``timeout`` seconds; with it: fail after ``timeout`` seconds in which ``progress()`` did not change."""
    last = progress() if progress else None
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if progress is not None and (now := progress()) != last:
            last, deadline = now, time.monotonic() + timeout
        if time.monotonic() >= deadline:
            stalled = " without progress" if progress else ""
            raise AssertionError(f"timed out after {timeout:.0f} s{stalled} waiting for {what}")
        time.sleep(interval)


def tune_done(directory: Path) -> int:
    """Tune trials finished (done or errored) per the sweep's ``progress.json``; 0 before it exists."""
    try:
        progress = json.loads((directory / "progress.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return sum(p["done"] + p["errored"] for p in progress.get("tune", {}).values())


def sweep_progress(directory: Path) -> tuple[int, int]:
    """Files under the sweep directory and the sum of their sizes and modification times: changes
    whenever a trial checkpoints (about four times per trial), ends or logs, or the driver writes."""
    count = total = 0
    for path in directory.rglob("*"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # a checkpoint being replaced
            continue
        count += 1
        total += stat.st_size + stat.st_mtime_ns
    return count, total


def run_while_progressing(argv: list[str], progress: Callable[[], Any], log: Path, stall_s: float = STALL_S,
                          **popen: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` to its end (output, both streams, into ``log``), killing its process group only
    when ``progress()`` stalls for ``stall_s`` seconds; return it with ``stdout`` read from ``log``."""
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                **popen)
    try:
        wait_for(lambda: proc.poll() is not None, stall_s, interval=1, what=" ".join(argv[-3:]), progress=progress)
    except AssertionError as err:
        raise AssertionError(f"{err}:\n{log.read_text()[-4000:]}") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, log.read_text(), "")


def sigkill_when(driver: subprocess.Popen, ready: Callable[[], Any], what: str, log: Path,
                 timeout: float = STALL_S, progress: Callable[[], Any] | None = None) -> None:
    """SIGKILL ``driver`` (a process started in its own session) once ``ready()``, then whatever is
    left of its process group; fail, naming ``what`` and showing ``log``, if it ended first."""
    try:
        wait_for(lambda: ready() or driver.poll() is not None, timeout, what=what, progress=progress)
        assert driver.poll() is None, f"the sweep ended before it was killed:\n{log.read_text()[-4000:]}"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        time.sleep(1)
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
