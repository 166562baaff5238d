"""The sweep directory: where a sweep keeps its spec, its Tune experiment and its tables, local or remote.

Layout of ``<storage>/<name>/``: ``spec.yaml`` (the normalised spec), ``optuna.journal`` (local
storage only; else a driver-local cache, carried in the searcher checkpoint), ``experiment/`` (the
Tune experiment), ``selection.json`` (each pair's selected tune trial), ``progress.json`` (for
``lrsweep status``), the Parquet tables, ``plugins/`` (copies of the spec's plugins),
``logs/<trial id>.log`` (library chatter of each trial; local storage only) and
``errors/<trial id>.txt`` (the full traceback of each failed trial, named by ``trials.error_log``).
No Ray here: ``lrsweep status`` and the reports read a sweep directory without it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import yaml

from reports.store import cache_name, filesystem, is_uri, normalise
from sweeps import plugins
from sweeps.spec import Spec, SpecError, parse_spec

__all__ = ["EXPERIMENT", "SweepDir", "SweepError", "fill_checkpoint_gaps", "load_sweep_spec"]

EXPERIMENT = "experiment"
"""The Tune experiment's directory inside the sweep directory."""
CHECKPOINT_NAME = re.compile(r"checkpoint_\d{6}")  # Ray Tune's checkpoint directory names


class SweepError(RuntimeError):
    """A sweep that cannot start or go on (existing directory, nothing to resume, ...)."""


@dataclass(frozen=True)
class SweepDir:
    """``<storage>/<name>``, a local directory or a URI, read and written through pyarrow's filesystems."""

    root: str

    @classmethod
    def of(cls, storage: str, name: str) -> SweepDir:
        return cls(f"{normalise(storage).rstrip('/')}/{name}")

    @property
    def is_local(self) -> bool:
        return not is_uri(self.root)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def filesystem_path(self, name: str) -> tuple[pafs.FileSystem, str]:
        """The filesystem and the path inside it of ``<root>/<name>``."""
        fs, base = filesystem(self.root)
        return fs, f"{base}/{name}"

    def read_text(self, name: str) -> str | None:
        fs, path = self.filesystem_path(name)
        try:
            with fs.open_input_stream(path) as f:
                return f.read().decode()
        except (FileNotFoundError, OSError):
            return None

    def write_text(self, name: str, text: str) -> None:
        """Write a small file whole (temp file + rename where the filesystem has rename)."""
        fs, target = self.filesystem_path(name)
        folder, _, leaf = target.rpartition("/")
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/.{leaf}.tmp" if self.is_local else target
        with fs.open_output_stream(tmp) as f:
            f.write(text.encode())
        if tmp != target:
            fs.move(tmp, target)

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
        raise SweepError(f"{directory} is not a sweep directory: it has no spec.yaml")
    raw = yaml.safe_load(text)
    try:
        # The plugins the sweep started with, from the copies it keeps (sweeps.plugins).
        recorded = raw.get("plugins") if isinstance(raw, dict) else None
        if recorded:
            plugins.import_plugins(plugins.recorded(recorded, sweep.root))
        spec = parse_spec(raw, sweep.path("spec.yaml"))
    except plugins.PluginError as err:
        raise SweepError(f"{sweep.path('spec.yaml')}: a plugin of this sweep cannot be imported: {err}") from None
    except SpecError as err:
        raise SweepError(f"{sweep.path('spec.yaml')} no longer validates:\n{err}") from None
    return spec, sweep


def fill_checkpoint_gaps(fs: pafs.FileSystem, experiment: str) -> list[tuple[str, str, str]]:
    """Before a restore, give every deleted checkpoint of a trial the contents of its next later one.

    With ``num_to_keep`` Tune deletes a trial's older checkpoint when it registers a newer one and
    snapshots the experiment state afterwards; a driver killed in between leaves a snapshot that
    names the deleted checkpoint, and Ray then refuses to restore that trial. The newer checkpoint
    carries its own epoch and history, so restoring from it continues the trial exactly. Returns
    (trial dir, missing name, source name) for each gap filled.
    """
    filled = []
    for trial in fs.get_file_info(pafs.FileSelector(experiment, allow_not_found=True)):
        if trial.type != pafs.FileType.Directory:
            continue
        names = sorted(
            info.base_name for info in fs.get_file_info(pafs.FileSelector(trial.path))
            if info.type == pafs.FileType.Directory and CHECKPOINT_NAME.fullmatch(info.base_name)
        )
        if not names:
            continue
        present = {int(name.split("_")[1]): name for name in names}
        for index in range(max(present)):
            if index in present:
                continue
            source = present[min(i for i in present if i > index)]
            missing = f"checkpoint_{index:06d}"
            fs.create_dir(f"{trial.path}/{missing}", recursive=True)  # copy_files wants the target
            pafs.copy_files(f"{trial.path}/{source}", f"{trial.path}/{missing}",
                            source_filesystem=fs, destination_filesystem=fs)
            filled.append((trial.base_name, missing, source))
    return filled
