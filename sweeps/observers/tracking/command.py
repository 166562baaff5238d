"""The driver's and the command line's doors to tracking: start the trackers of a session, finish
them at the end of a sweep, add ``--track`` entries to a spec, and ``lrsweep track DIR``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable

import yaml

from sweeps.observers.tracking.process import Observer
from sweeps.record.durable import Lease, Record
from sweeps.record.storage import SweepDir, SweepError, load_sweep_spec
from sweeps.spec import Problems, Spec, SpecError
from sweeps.spec.tracking import parse_tracking, tracking_to_dict
from sweeps.trackers import TRACKERS

__all__ = ["finish", "observe", "track", "with_tracking"]


def observe(spec: Spec, sweep: SweepDir, out: Callable[[str], None]) -> Observer | None:
    """An ``Observer`` of the spec's trackers, given the record's finished runs first (None when the
    spec tracks nothing)."""
    if not spec.tracking:
        return None
    return Observer(spec, sweep, out, Record(sweep).runs().values())


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
    the latter winning over the spec's); SpecError naming ``--track`` on a bad one, with the same
    message as the spec's section (``parse_tracking`` checks both)."""
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
    from sweeps.record.results import tables_complete

    spec, sweep = load_sweep_spec(directory)
    spec = with_tracking(spec, entries)
    if not spec.tracking:
        raise SweepError(f"{sweep.root}: its spec has no tracking section; name a tracker with --track "
                         f"({', '.join(TRACKERS)})")
    with Lease(sweep, out):
        observer = observe(spec, sweep, out)
        if tables_complete(sweep):
            return 0 if finish(observer, timeout=threading.TIMEOUT_MAX) else 1
        out(f"{sweep.root}: no results tables yet: the finished runs are logged, the report is not")
        done = observer.close(None)
        observer.say_counts()
        return 0 if done else 1
