"""The sweep directory: where a sweep keeps its spec, its Tune experiment and its tables, local or remote.

Layout of ``<storage>/<name>/``: the durable record (``spec.yaml``, the normalised spec;
``optuna.journal``; ``record/``: see ``sweeps.record.durable``), ``lease`` (the driver holding it),
``experiment/`` (the Tune experiment: a cache), ``selection.json`` (each pair's selected tune
trial), ``progress.json`` (for ``lrsweep status``), the Parquet tables, ``plugins/`` (copies of the spec's plugins),
``logs/<trial id>.log`` (library chatter of each trial; local storage only),
``errors/<trial id>.txt`` (the full traceback of each failed trial, named by ``trials.error_log``) and,
with a spec's ``tracking``, the trackers' local files (``tensorboard/``, ``mlflow.db``, ``mlartifacts/``,
``wandb/``, ``tracking/``: ``sweeps.trackers``).
No Ray here: ``lrsweep status`` and the reports read a sweep directory without it.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import yaml

from lrresults.crashpoints import crash_point
from lrresults.store import Location, cache_name, is_uri, join, normalise, write_whole
from sweeps.spec import Spec, SpecError, parse_spec, plugins

__all__ = ["EXPERIMENT", "StorageError", "StorageWatch", "SweepDir", "SweepError", "load_sweep_spec", "pause",
           "storage_fault", "unreadable_spec"]

EXPERIMENT = "experiment"
"""The Tune experiment's directory inside the sweep directory."""


pause = crash_point
"""The kill tests' hook at a named write point: sleep or die there (``lrresults.crashpoints``)."""


class SweepError(RuntimeError):
    """A sweep that cannot start or go on (existing directory, nothing to resume, ...)."""


def command(verb: str, root: str) -> str:
    """The ``lrsweep VERB DIR`` line a message tells a user to run, quoted to paste into a shell: an
    S3 URI's query holds '&', at which a shell would cut it."""
    return f"lrsweep {verb} {shlex.quote(root)}"


class StorageError(RuntimeError):
    """The sweep's storage failed mid-sweep (full, read-only, or out of reach): the sweep stopped with
    its record intact and goes on with ``lrsweep resume`` once the storage is back."""

    def __init__(self, root: str, fault: BaseException) -> None:
        self.root, self.fault = root, fault
        super().__init__(
            f"the sweep's storage {root} failed: {type(fault).__name__}: {str(fault)[:500]}. The sweep stopped. "
            "Every trial it recorded is intact (each record file is written whole or not at all); the trials "
            "it was running were not recorded and start again from their last checkpoint. Once the storage "
            f"is back (space freed, the server reachable), run `{command('resume', root)}`")


_FULL_OR_FAILING = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
_FAULT_TEXT = ("No space left on device", "Disk quota exceeded", "Read-only file system", "AWS Error",
               "curlCode", "Couldn't connect to server")
"""How a storage fault reads where it has no errno: pyarrow's filesystems (Tune copies through them)
and its S3 client put the OS's or the AWS SDK's words in the message."""


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    """``err``, what caused it, and (a Ray task's error) the exception it carries, once each."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        carried = getattr(e, "cause", None)
        if isinstance(carried, BaseException):  # a Ray task's error: name the exception it carries
            todo.append(carried)
            continue
        yield e
        todo += [e.__cause__, e.__context__]


def storage_fault(err: BaseException | None) -> OSError | None:
    """The storage fault behind ``err`` (an OSError of a full, read-only or failing disk, or of an object
    store that cannot be reached), or None when ``err`` is anything else, a trial's own error."""
    for e in _chain(err):
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) and (
                e.errno in _FULL_OR_FAILING or any(text in str(e) for text in _FAULT_TEXT)):
            return e
    return None


class StorageWatch:
    """The first storage fault of a fit (``sweeps.record.storage.storage_fault``: a full disk, an object store out
    of reach). Once one is seen the record writer ends the experiment at Tune's next step, and no trial
    ending after it is recorded, counted or told to a tracker: a trial that could not write is storage's
    failure, not its own, so it runs again on resume instead of standing in the record as errored."""

    def __init__(self) -> None:
        self.fault: OSError | None = None

    def failed(self, err: OSError) -> None:
        """A write to the sweep's storage raised ``err``."""
        if self.fault is None:
            self.fault = err
            logging.getLogger(__name__).warning("the sweep's storage failed (%s: %s); stopping the sweep",
                                                type(err).__name__, err)

    def stopping(self, err: BaseException | None = None) -> bool:
        """Whether the fit is stopping for a storage fault, ``err`` (a trial's error) included."""
        fault = storage_fault(err)
        if fault is not None:
            self.failed(fault)
        return self.fault is not None


@dataclass(frozen=True)
class SweepDir:
    """``<storage>/<name>``, a local directory or a URI, read and written through pyarrow's filesystems."""

    root: str

    @classmethod
    def of(cls, storage: str, name: str) -> SweepDir:
        return cls(join(normalise(storage), name))

    @property
    def is_local(self) -> bool:
        return not is_uri(self.root)

    def path(self, name: str) -> str:
        """``<root>/<name>`` (on a URI, joined before its query: see ``lrresults.store.join``)."""
        return join(self.root, name)

    @functools.cached_property
    def location(self) -> Location:
        """The sweep directory with its filesystem, resolved once: what its tables and files are written
        through (``lrresults.store``), never the root string resolved again."""
        return Location.of(self.root)

    def filesystem_path(self, name: str) -> tuple[pafs.FileSystem, str]:
        """The filesystem and the path inside it of ``<root>/<name>``."""
        return self.location.fs, self.location.path(name)

    def read_bytes(self, name: str) -> bytes | None:
        """The file's bytes, or None when there is no such file. A storage that cannot be read (an
        object store out of reach, a failing disk) raises its OSError: it is not a missing file, and
        a driver that took it for one would start over or take over a lease it must not."""
        fs, path = self.filesystem_path(name)
        try:
            with fs.open_input_stream(path) as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_text(self, name: str) -> str | None:
        data = self.read_bytes(name)
        return None if data is None else data.decode(errors="replace")

    def write_bytes(self, name: str, data: bytes, point: str = "") -> None:
        """Write a file whole (``lrresults.store.write_whole``: renamed into place after an fsync where
        the filesystem has rename, one upload on an object store). ``point`` names the write for the
        kill tests' hook: ``point`` mid-write, ``point.written`` once the file is in place."""
        write_whole(*self.filesystem_path(name), data, point)

    def write_text(self, name: str, text: str, point: str = "") -> None:
        """Write a small file whole (see ``write_bytes``)."""
        self.write_bytes(name, text.encode(), point)

    def delete(self, name: str) -> None:
        fs, path = self.filesystem_path(name)
        try:
            fs.delete_file(path)
        except (FileNotFoundError, OSError):
            pass

    @property
    def journal_path(self) -> str:
        """A driver-local file for the Optuna journal (inside the sweep dir when that is local)."""
        if self.is_local:
            return self.path("optuna.journal")
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lrsweep"
        return str(cache / cache_name(self.root) / "optuna.journal")


def load_sweep_spec(directory: str) -> tuple[Spec, SweepDir]:
    """The spec a sweep directory was started with."""
    sweep = SweepDir(normalise(directory))
    text = sweep.read_text("spec.yaml")
    if text is None:
        started = " (only a lease: the `lrsweep run` or `reproduce` that made it was killed before it wrote " \
            "its spec; start it again)" if sweep.read_text("lease") is not None else ""
        raise SweepError(f"{directory} is not a sweep directory: it has no spec.yaml{started}")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SweepError(unreadable_spec(sweep.path("spec.yaml"), f"not valid YAML: {err}")) from None
    try:
        # The plugins the sweep started with, from the copies it keeps (sweeps.spec.plugins).
        recorded = raw.get("plugins") if isinstance(raw, dict) else None
        if recorded:
            plugins.import_plugins(plugins.recorded(recorded, sweep.root))
        spec = parse_spec(raw, sweep.path("spec.yaml"))
    except plugins.PluginError as err:
        raise SweepError(f"{sweep.path('spec.yaml')}: a plugin of this sweep cannot be imported: {err}") from None
    except SpecError as err:
        raise SweepError(f"{sweep.path('spec.yaml')} no longer validates:\n{err}\n"
                         + unreadable_spec(sweep.path("spec.yaml"), "see above")) from None
    return spec, sweep


def unreadable_spec(path: str, why: str) -> str:
    """What a user reads when a sweep's own spec cannot be read: what is lost and what to do."""
    return (f"{path} cannot be read ({why}): it is the sweep's spec, without which nothing of the sweep can "
            "be resumed or reported. Nothing was changed. Restore it from a backup (it is the spec file the "
            "sweep was started with, normalised), then resume again")
