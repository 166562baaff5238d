"""Read and write the results tables as Parquet, and any file whole, on a local path or a URI.

Every file is written by `write_whole`: on a filesystem with rename (local, NFS) to a temporary file in
the same directory, flushed to disk (fsync) and renamed over the target, so a reader never sees half a
file and a power cut leaves the old file or the new one. Object stores (s3://, gs://) make a single
upload visible at once, so there the file is written in place. pyarrow only: no Ray, no torch.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lrresults.crashpoints import crash_point
from lrresults.schema import TABLES, schema


def is_uri(location: str) -> bool:
    """Whether a results location is a URI (s3://, gs://, file://) rather than a local path.

    The one place sweeps and reports decide it: a URI is read and written through pyarrow's
    filesystem for its scheme, a local path through the local one (and renamed into place).
    """
    return "://" in location


def _split_query(uri: str) -> tuple[str, str]:
    """A URI's path part and its query (``?endpoint_override=...&scheme=http``, pyarrow's options), or ''."""
    path, mark, query = uri.partition("?")
    return path, mark + query


def normalise(location: str) -> str:
    """A location in the form sweeps record: an absolute local path, or the URI without a trailing
    slash on its path (its query, if any, kept as it is)."""
    if not is_uri(location):
        return os.path.abspath(location)
    path, query = _split_query(location)
    return path.rstrip("/") + query


def join(location: str, name: str) -> str:
    """``<location>/<name>``: on a URI the name joins its path, before any query
    (``s3://b/p?scheme=http`` + ``x`` -> ``s3://b/p/x?scheme=http``)."""
    if not is_uri(location):
        return os.path.join(location, name)
    path, query = _split_query(location)
    return f"{path.rstrip('/')}/{name}{query}"


def cache_name(location: str) -> str:
    """A URI flattened into one directory name, for a driver-local cache of a remote sweep's files
    (the query, which names the server, kept in a form a file name can hold)."""
    path, query = _split_query(location)
    name = path.replace("://", "_").replace("/", "_")
    return name + ("_" + "".join(c if c.isalnum() or c in "-._" else "_" for c in query[1:]) if query else "")


def filesystem(directory: str) -> tuple[pafs.FileSystem, str]:
    """Resolve a local path or a URI to a pyarrow filesystem and a path inside it."""
    if is_uri(directory):
        return pafs.FileSystem.from_uri(directory)
    return pafs.LocalFileSystem(), os.path.abspath(directory)


@dataclass(frozen=True)
class Location:
    """A results directory (a local path or a URI) with its pyarrow filesystem, resolved once: the sweep's
    storage travels as this (``SweepDir.location``), so no table or file works the filesystem out again."""

    uri: str  # as the user named it (a local path, or a URI with its query)
    fs: pafs.FileSystem
    base: str  # the directory's path inside ``fs``

    @classmethod
    def of(cls, directory: str | Location) -> Location:
        """``directory`` resolved (a Location is returned as it is)."""
        return directory if isinstance(directory, Location) else cls(directory, *filesystem(directory))

    def path(self, name: str) -> str:
        """The path of ``<directory>/<name>`` inside ``fs``."""
        return f"{self.base}/{name}"

    def __str__(self) -> str:
        return self.uri


def to_table(name: str, rows: Iterable[Mapping[str, Any]] | pa.Table) -> pa.Table:
    """Build a table of the documented schema from row dicts, naming any missing or unknown column."""
    target = schema(name)
    if isinstance(rows, pa.Table):
        # A table written before a nullable column existed (e.g. population_id) reads with nulls there.
        for column in TABLES[name]:
            if column.nullable and column.name not in rows.column_names:
                rows = rows.append_column(column.name, pa.nulls(len(rows), column.type))
        return rows.select(target.names).cast(target)
    rows = list(rows)
    known = set(target.names)
    for i, row in enumerate(rows):
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"{name} row {i}: unknown columns {sorted(unknown)}; valid: {target.names}")
        missing = [c.name for c in TABLES[name] if not c.nullable and row.get(c.name) is None]
        if missing:
            raise ValueError(f"{name} row {i}: missing values for non-nullable columns {missing}")
    columns = {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in target}
    return pa.Table.from_pydict(columns, schema=target)


OBJECT_STORES = ("s3", "gcs")
"""pyarrow filesystems (``type_name``) whose folders are key prefixes: a write needs none made first
(on S3, making one costs requests: 0.15 s a small write against 0.02 s without, on a local server)."""


def make_dirs(fs: pafs.FileSystem, path: str) -> None:
    """Make folder ``path`` (and its parents) for a write into it, where ``fs`` has folders."""
    if fs.type_name not in OBJECT_STORES:
        fs.create_dir(path, recursive=True)


def write_table(name: str, rows: Iterable[Mapping[str, Any]] | pa.Table, directory: str | Location) -> str:
    """Write `<directory>/<name>.parquet` atomically and return its path or URI."""
    return write_parquet(to_table(name, rows), name, directory)


def write_whole(fs: pafs.FileSystem, path: str, data, point: str = "") -> None:
    """Write ``data`` (bytes-like) to ``path`` on ``fs`` whole: a reader sees the old file or the new one.

    On a local filesystem (a path, NFS, a file:// URI) a temporary file beside the target is written,
    flushed to disk (fsync, so a power cut cannot leave a renamed but empty file) and renamed over it;
    a failed write removes it, so a full disk keeps the old file and no half copy. On an object store
    one upload, which becomes visible at once. ``point`` names the write for the kill tests
    (`lrresults.crashpoints`): ``point`` mid-write (the temporary file complete, not yet renamed),
    ``point.written`` once the file is in place; no point, no hook.
    """
    folder, _, leaf = path.rpartition("/")
    make_dirs(fs, folder)
    if not isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(path) as f:
            f.write(data)
        if point:
            crash_point(f"{point}.written")
        return
    tmp = f"{folder}/.{leaf}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if point:
                f.flush()
                crash_point(point)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if point:
        crash_point(f"{point}.written")


def write_parquet(table: pa.Table, name: str, directory: str | Location) -> str:
    """Write any Arrow table to `<directory>/<name>.parquet` whole (`write_whole`); return its path or URI."""
    at = Location.of(directory)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_whole(at.fs, at.path(f"{name}.parquet"), sink.getvalue())
    return at.path(f"{name}.parquet") if not is_uri(at.uri) else join(normalise(at.uri), f"{name}.parquet")


def read_table(name: str, directory: str | Location) -> pa.Table:
    """Read one results table, checked against the documented schema."""
    at = Location.of(directory)
    path = at.path(f"{name}.parquet")
    if at.fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no {name} table at {at}: expected {name}.parquet (is this a sweep directory?)")
    return to_table(name, pq.read_table(path, filesystem=at.fs))


def exists(name: str, directory: str | Location) -> bool:
    """Whether `<directory>/<name>.parquet` exists."""
    at = Location.of(directory)
    return at.fs.get_file_info(at.path(f"{name}.parquet")).type != pafs.FileType.NotFound
