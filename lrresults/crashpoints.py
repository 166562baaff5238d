"""Named points at the write boundaries of a sweep, where a test can make lrsweep pause or die.

Two test hooks share the points (docs/DURABILITY.md lists them and what a kill at each leaves):

- ``LRSWEEP_PAUSE_AT=a,b`` sleeps ``LRSWEEP_PAUSE_SECONDS`` (default 1) at each passage of a named
  point, so a kill from outside can land there (the kill storm of tests/test_sweep_durable.py);
- ``LRSWEEP_CRASH_AT=name:N`` SIGKILLs the sweep at the Nth passage of ``name`` in one process (N
  defaults to 1): the driver's process group, so Ray's processes of a local sweep die with it, then
  this process (a trial's worker on a cluster, where the driver's group is not its own).

With neither variable set a point costs one dictionary lookup. No imports beyond the standard library:
the record, the storage and the trials' workers all call it, and the whole-file writer below them
(``lrresults.store.write_whole``) passes its points, so it lives in the results layer.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

__all__ = ["CRASH_VAR", "GROUP_VAR", "PAUSE_VAR", "crash_point", "worker_env"]

PAUSE_VAR = "LRSWEEP_PAUSE_AT"
CRASH_VAR = "LRSWEEP_CRASH_AT"
GROUP_VAR = "LRSWEEP_CRASH_GROUP"
"""The driver's process group, handed to a cluster's workers (``worker_env``): the group a kill ends."""

_passages: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Pass the named point: sleep or die here when a test hook names it (see the module docstring)."""
    if name in os.environ.get(PAUSE_VAR, "").split(","):
        time.sleep(float(os.environ.get("LRSWEEP_PAUSE_SECONDS", "1")))
    wanted = os.environ.get(CRASH_VAR)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _passages[name] += 1
    if _passages[name] == int(nth or 1):
        os.killpg(int(os.environ.get(GROUP_VAR) or os.getpgrp()), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def worker_env() -> dict[str, str]:
    """The crash hook's variables for the workers of a job this driver starts (none without the hook):
    a cluster's workers do not inherit the driver's environment, and their kill ends the driver's group."""
    if not os.environ.get(CRASH_VAR):
        return {}
    return {CRASH_VAR: os.environ[CRASH_VAR], GROUP_VAR: os.environ.get(GROUP_VAR) or str(os.getpgrp())}
