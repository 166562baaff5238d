"""The durable record: what a resume needs, written by lrsweep itself in the sweep directory.

A resume rebuilds what is left of a sweep from these files alone; Tune's ``experiment/`` files are
a cache it never reads (docs/DURABILITY.md):

- ``spec.yaml`` (or ``reproduce.yaml``): the normalised spec, written once, whole.
- ``optuna.journal``: the pairs' studies, append-only (Optuna ignores a torn last record; a resume
  cuts it off before appending). On a URI a driver-local copy, uploaded whole after each change.
- ``record/runs/<pair>/<stage>-<index>.json``: each finished Tune trial (a run, or a population's
  runs): its config, its per-epoch results, its error. Written whole (temporary file + rename, or
  one upload) by the driver when Tune reports the trial finished or errored.
- ``record/checkpoints/<pair>/<stage>-<index>.<config hash>.pt``: each running trial's latest
  complete checkpoint, written whole by the trial before it reports that epoch, deleted once the
  trial's run record exists. The config hash keeps a checkpoint from resuming other hyperparameters.

The seed queue is not stored: it is derived again from the finished tune runs (``selection``).
``lease`` (one driver per sweep) is also here. No Ray and no torch at import.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from sweeps.record.storage import SweepDir, SweepError, command, pause
from vocab.members import trial_members

__all__ = ["RECORD", "CheckpointStore", "Lease", "Record", "RunRecord", "pause", "trial_key"]

RECORD = "record"


def trial_key(config: Mapping[str, Any]) -> str:
    """A Tune trial's name in the record: ``<pair>/<stage>-<first run's index>``, the same in every
    driver session (Tune's trial ids are not)."""
    run, meta = trial_members(config)[0]  # a population: named by its first member
    return f"{meta['pair']}/{run['stage']}-{meta['trial_index']}"


def config_hash(config: Mapping[str, Any]) -> str:
    """Twelve hex digits of what a trial trains (its runs' configs, not the sweep's bookkeeping)."""
    return hashlib.sha256(json.dumps(config["run"], sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunRecord:
    """One finished Tune trial as the record keeps it."""

    trial_id: str  # Tune's id in the session that finished it
    config: Mapping[str, Any]
    history: tuple[Mapping[str, Any], ...]
    error: str | None = None
    error_full: str | None = None

    @property
    def key(self) -> str:
        return trial_key(self.config)

    def to_json(self) -> str:
        return json.dumps({"trial_id": self.trial_id, "config": self.config, "history": list(self.history),
                           "error": self.error, "error_full": self.error_full}, default=str)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        raw = json.loads(text)
        return cls(raw["trial_id"], raw["config"], tuple(raw["history"]), raw.get("error"), raw.get("error_full"))


@dataclass(frozen=True)
class Record:
    """The record part of a sweep directory (see the module docstring)."""

    sweep: SweepDir

    def run_name(self, config: Mapping[str, Any]) -> str:
        return f"{RECORD}/runs/{trial_key(config)}.json"

    def checkpoint_name(self, config: Mapping[str, Any]) -> str:
        return f"{RECORD}/checkpoints/{trial_key(config)}.{config_hash(config)}.pt"

    def write_run(self, run: RunRecord) -> None:
        self.sweep.write_bytes(self.run_name(run.config), run.to_json().encode(), point="run")
        self.sweep.delete(self.checkpoint_name(run.config))  # it is finished: its checkpoint is not needed

    def drop_finished_checkpoints(self, finished: Mapping[str, RunRecord]) -> None:
        """Delete the checkpoints of trials the record holds finished: ``write_run`` deletes each
        after its run record, and a kill between the two writes leaves it behind."""
        fs, base = self.sweep.filesystem_path(f"{RECORD}/checkpoints")
        for info in fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
            key = info.path[len(base) + 1:].rsplit(".", 2)[0]  # <pair>/<stage>-<index>.<config hash>.pt
            if info.type == pafs.FileType.File and info.path.endswith(".pt") and key in finished:
                self.sweep.delete(f"{RECORD}/checkpoints/{info.path[len(base) + 1:]}")

    def push_journal(self, local: str) -> None:
        """A URI sweep's journal: the driver-local file uploaded whole (one object, visible at once)."""
        try:
            with open(local, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        self.sweep.write_bytes("optuna.journal", data)

    def pull_journal(self, local: str) -> None:
        """Before a resume on a URI: the sweep's journal replaces any driver-local copy (the record wins)."""
        data = self.sweep.read_bytes("optuna.journal")
        if data is None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)

    def runs(self) -> dict[str, RunRecord]:
        """Every finished trial, by ``trial_key``; a file that cannot be read is a SweepError naming
        it, what it held and what the user can do (nothing is changed)."""
        fs, base = self.sweep.filesystem_path(f"{RECORD}/runs")
        found = {}
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        for info in sorted(infos, key=lambda i: i.path):
            if info.type != pafs.FileType.File or not info.base_name.endswith(".json"):
                continue  # a writer's temporary file (.name.tmp) is not a record
            name = f"{RECORD}/runs/{info.path[len(base) + 1:]}"
            try:
                with fs.open_input_stream(info.path) as f:
                    run = RunRecord.from_json(f.read().decode())
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise SweepError(
                    f"{self.sweep.path(name)} cannot be read ({type(err).__name__}: {err}): it is the result of "
                    f"a finished trial, which is lost. Nothing was changed. Restore the file from a backup, or "
                    f"delete it and run `{command('resume', self.sweep.root)}` again to train that trial again "
                    "(its hyperparameters come back from the study)") from None
            found[run.key] = run
        return found


class CheckpointStore:
    """A trial's latest complete checkpoint in the record, used by the trial itself (picklable)."""

    def __init__(self, root: str, name: str) -> None:
        self.sweep, self.name = SweepDir(root), name

    def load(self) -> dict | None:
        """The saved snapshot, or None when there is none or it cannot be read (the trial starts over)."""
        import torch

        data = self.sweep.read_bytes(self.name)
        if data is None:
            return None
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - any damage means: start from scratch
            print(f"lrsweep: {self.sweep.path(self.name)} cannot be read ({err}); the trial starts over",
                  flush=True)
            return None

    def save(self, state: dict) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.sweep.write_bytes(self.name, buffer.getvalue(), point="checkpoint")


# --- one driver per sweep -----------------------------------------------------------------------

LEASE = "lease"
HEARTBEAT_S = 30.0
"""A URI lease is renewed this often; one not renewed for ``STALE_AFTER_S`` is stale."""
STALE_AFTER_S = 120.0


def _alive(pid: int, started: float) -> bool:
    """Whether the process ``pid`` that started at ``started`` (epoch seconds) still runs here."""
    import psutil

    try:
        return psutil.Process(pid).create_time() <= started + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _describe(holder: Mapping[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}"


class Lease:
    """The sweep directory's lease: held by one driver (``run``, ``resume``, ``reproduce``) at a time.

    Local storage: ``lease`` holds ``{host, pid, started}`` and the holder keeps an exclusive
    ``flock`` on it for its life; the kernel drops the lock when the process dies, however it dies,
    so a lock that can be taken over a file naming another process means that driver is gone. The
    recorded pid is also checked (same host), for filesystems where ``flock`` is a no-op.
    A URI has no locks: the holder rewrites ``lease`` every ``HEARTBEAT_S`` seconds with the time,
    and a lease of another host not renewed for ``STALE_AFTER_S`` is stale; a lease of this host is
    stale as soon as its process is gone (docs/DURABILITY.md states the rule).

    Held by a ``with`` block: leaving it releases the lease however the block ends, except a URI lease
    once the driver saw its storage fail (``reachable`` False), which is left as it is.
    """

    def __init__(self, sweep: SweepDir, out: Callable[[str], None]) -> None:
        self.sweep, self.out = sweep, out
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        self._fd: int | None = None
        self._stop = threading.Event()
        self.on_fault: Callable[[OSError], None] | None = None  # told when a renewal fails
        self.reachable = True  # False once the driver saw its storage fail: leaving then keeps a URI lease as it is

    def _refuse(self, holder: Mapping[str, Any], expires: float | None = None) -> None:
        when = ""
        if expires is not None:  # a URI lease of another host: only its renewals say it is alive
            when = (f"; its lease expires at {time.strftime('%H:%M:%S', time.localtime(expires))} "
                    f"(in {max(0, expires - time.time()):.0f} s) unless that driver renews it")
        raise SweepError(f"{self.sweep.root} is being driven by another lrsweep ({_describe(holder)}){when}; one "
                         "driver per sweep: wait for it to end, or stop it, then "
                         f"`{command('resume', self.sweep.root)}`")

    def _on_this_host(self, holder: Mapping[str, Any]) -> bool:
        return holder.get("host") == self.me["host"] and holder.get("pid") != self.me["pid"]

    def _holder_alive(self, holder: Mapping[str, Any]) -> bool:
        """Whether the process named by a lease of this host still runs (a pid reused since is not it)."""
        return _alive(int(holder.get("pid", 0)), float(holder.get("started", 0)))

    def _previous(self) -> dict:
        try:
            return json.loads(self.sweep.read_text(LEASE) or "{}")
        except ValueError:
            return {}

    def acquire(self) -> Lease:
        previous = self._previous()
        if self.sweep.is_local:
            import fcntl

            os.makedirs(self.sweep.root, exist_ok=True)
            fd = os.open(self.sweep.path(LEASE), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse(previous)
            if self._on_this_host(previous) and self._holder_alive(previous):
                os.close(fd)
                self._refuse(previous)
            os.ftruncate(fd, 0)
            pause("lease.take")
            os.pwrite(fd, json.dumps(self.me).encode(), 0)
            self._fd = fd
        else:
            # This host's driver is known alive or gone from its pid; another host's only from renewals.
            if previous.get("pid") and self._on_this_host(previous):
                if self._holder_alive(previous):
                    self._refuse(previous)
            elif previous and time.time() - float(previous.get("renewed", 0)) < STALE_AFTER_S:
                self._refuse(previous, float(previous.get("renewed", 0)) + STALE_AFTER_S)
            self._renew()
            threading.Thread(target=self._heartbeat, daemon=True).start()
        if previous.get("pid") and previous != self.me:
            self.out(f"taking over the stale lease of a driver that is gone ({_describe(previous)})")
        return self

    def _renew(self) -> None:
        self.sweep.write_text(LEASE, json.dumps({**self.me, "renewed": time.time()}))

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._renew()
            except OSError as err:  # the storage failed: the driver's watch stops the sweep
                if self.on_fault is not None:
                    self.on_fault(err)

    def release(self, reachable: bool = True) -> None:
        """Give the sweep up (a lease left behind by a killed driver is stale and taken over); on a URI,
        ``reachable`` False (the storage failed) leaves the lease as it is."""
        self._stop.set()
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # released: a later driver takes over nothing
            pause("lease.release")
            os.close(self._fd)  # drops the flock
            self._fd = None
        elif not self.sweep.is_local and reachable:
            # With the storage lost, writing waits out its timeouts to fail; the lease left names this
            # host and a process that is gone, which a resume here takes over at once.
            self.sweep.write_text(LEASE, "{}")

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release(self.reachable)
