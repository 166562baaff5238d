"""The spec's ``tracking`` section: which experiment trackers observe the sweep, and where.

``tracking: {tensorboard: true, mlflow: {tracking_uri: ./mlruns, experiment: my-sweep},
wandb: {project: lrsweep, mode: offline}}``. Trackers only observe (``sweeps.tracking`` feeds them
from the driver's record), so the section is not part of the spec hash. A tracker whose library is
not installed is refused here, with the command that installs it. No tracker library is imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweeps.spec.checks import Problems, is_number

__all__ = ["TRACKERS", "TrackerInfo", "TrackerSpec", "parse_tracking", "tracking_to_dict"]


@dataclass(frozen=True)
class TrackerInfo:
    """One tracker lrsweep can feed: its library (an optional extra of the same name) and its options."""

    name: str
    module: str
    options: tuple[str, ...]
    description: str

    @property
    def install(self) -> str:
        return f"pip install -e '.[{self.name}]'"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


TRACKERS: dict[str, TrackerInfo] = {t.name: t for t in (
    TrackerInfo("tensorboard", "tensorboard", ("logdir",),
                "event files, one run directory per run (logdir default: <sweep dir>/tensorboard)"),
    TrackerInfo("mlflow", "mlflow", ("tracking_uri", "experiment"),
                "one MLflow run per run under a parent run of the sweep (tracking_uri default: "
                "sqlite:///<sweep dir>/mlflow.db; experiment default: the sweep's name)"),
    TrackerInfo("wandb", "wandb", ("project", "entity", "mode", "dir"),
                "one W&B run per run, grouped by sweep (project default lrsweep; mode online, offline or "
                "disabled; dir default: the sweep dir)"),
)}
WANDB_MODES = ("online", "offline", "disabled")
COMMON = ("timeout",)
"""Options every tracker takes: ``timeout``, the seconds the driver waits at the end of a session for
the tracker to take what is still queued (default ``DEFAULT_TIMEOUT_S``)."""
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class TrackerSpec:
    """One tracker of the spec: its name and its options (defaults left to ``sweeps.tracking``)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def options_dict(self) -> dict:
        return dict(self.options)

    @property
    def timeout(self) -> float:
        return float(self.options_dict.get("timeout", DEFAULT_TIMEOUT_S))


def parse_tracking(raw: Any, p: Problems, path: str = "tracking") -> tuple[TrackerSpec, ...]:
    """``{tracker: true | false | {options}}``, each tracker known, its options known and its library
    installed; () when absent."""
    if raw is None:
        return ()
    names = ", ".join(TRACKERS)
    if not isinstance(raw, Mapping):
        p.add(path, f"must be a mapping {{tracker: true or {{options}}}}; allowed trackers: {names}")
        return ()
    out = []
    for name, options in raw.items():
        where = f"{path}.{name}"
        info = TRACKERS.get(name)
        if info is None:
            p.add(where, f"unknown tracker; allowed: {names}")
            continue
        if options is False or options is None:
            continue
        if options is True:
            options = {}
        if not isinstance(options, Mapping):
            p.add(where, f"got {options!r}; allowed: true, false or a mapping with fields "
                         f"{', '.join(info.options + COMMON)}")
            continue
        ok = True
        for key, value in options.items():
            if key not in info.options + COMMON:
                p.add(f"{where}.{key}", f"unknown field; allowed fields: {', '.join(info.options + COMMON)}")
                ok = False
            elif key == "timeout" and not (is_number(value) and value > 0):
                p.add(f"{where}.timeout", f"got {value!r}; allowed: a number of seconds > 0")
                ok = False
            elif key == "mode" and value not in WANDB_MODES:
                p.add(f"{where}.mode", f"got {value!r}; allowed: {', '.join(WANDB_MODES)}")
                ok = False
            elif key not in ("timeout", "mode") and not (isinstance(value, str) and value):
                p.add(f"{where}.{key}", f"got {value!r}; allowed: a non-empty string")
                ok = False
        if not info.installed():
            p.add(where, f"the {info.module} library is not installed; install it with `{info.install}`")
            ok = False
        if ok:
            out.append(TrackerSpec(name, tuple(sorted(options.items()))))
    return tuple(out)


def tracking_to_dict(trackers: tuple[TrackerSpec, ...]) -> dict:
    """The section as a spec writes it (parseable again by ``parse_tracking``)."""
    return {t.name: (t.options_dict or True) for t in trackers}
