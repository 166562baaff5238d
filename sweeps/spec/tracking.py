"""The spec's ``tracking`` section: which experiment trackers observe the sweep, and where.

``tracking: {tensorboard: true, mlflow: {tracking_uri: ./mlruns, experiment: my-sweep},
wandb: {project: lrsweep, mode: offline}}``. Trackers only observe (``sweeps.observers.tracking`` feeds them
from the driver's record), so the section is not part of the spec hash. Each entry is checked against
the trackers' one registry (``sweeps.trackers.TRACKERS``: names, options, allowed values); a tracker
whose library is not installed is refused here, with the command that installs it. No tracker library
is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweeps.spec.checks import Problems, is_number
from sweeps.trackers import TRACKERS, TrackerInfo

__all__ = ["TRACKERS", "TrackerInfo", "TrackerSpec", "parse_tracking", "tracking_to_dict"]

COMMON = ("timeout",)
"""Options every tracker takes: ``timeout``, the seconds the driver waits at the end of a session for
the tracker to take what is still queued (default ``DEFAULT_TIMEOUT_S``)."""
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class TrackerSpec:
    """One tracker of the spec: its name and its options (defaults left to ``sweeps.observers.tracking``)."""

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
        choices = dict(info.choices)
        for key, value in options.items():
            if key not in info.options + COMMON:
                p.add(f"{where}.{key}", f"unknown field; allowed fields: {', '.join(info.options + COMMON)}")
                ok = False
            elif key == "timeout" and not (is_number(value) and value > 0):
                p.add(f"{where}.timeout", f"got {value!r}; allowed: a number of seconds > 0")
                ok = False
            elif key in choices and value not in choices[key]:
                p.add(f"{where}.{key}", f"got {value!r}; allowed: {', '.join(choices[key])}")
                ok = False
            elif key != "timeout" and key not in choices and not (isinstance(value, str) and value):
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
