"""Extend a finished (or interrupted) sweep with strategies, workloads or seeds under its own protocol.

An extension is one more spec for the same sweep directory: the sweep's spec with strategies or
workloads added, or a fixed design's seeds raised; anything else that would change the protocol
(budget, evaluation, a workload's options or epochs, an existing strategy's search space) is
refused before anything is written (``protocol_changes``). The new spec then runs through the same
engine and durable record as any sweep (``plan`` -> ``fit`` -> ``collect``), so only what is new
trains, and a kill during an extension is finished by ``lrsweep resume``.

``extensions.json`` records each step: the sweep's first spec, then each extension (when, what it
added, its spec and the spec hash before it). Rows keep the spec hash of the step that added them
(``stamp``), so the old rows of the tables come out value for value as they were; every row of a
pair carries the same ``protocol_hash``, which is what ``reports.load`` combines by.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from sweeps.observers.progress import say
from sweeps.record.extensions import EXTENSIONS, stamp, steps
from sweeps.record.storage import SweepError, load_sweep_spec
from sweeps.spec import Spec, load_spec, parse_spec, population_size
from sweeps.spec import plugins as plugin_files

__all__ = ["EXTENSIONS", "ProtocolError", "added", "extend_sweep", "extended_spec", "protocol_changes", "stamp",
           "steps"]



class ProtocolError(SweepError):
    """An extension that would change the sweep's protocol; ``changes`` names each field that differs."""

    def __init__(self, root: str, changes: list[str]) -> None:
        self.changes = changes
        super().__init__(f"{root}: an extension may only add strategies, workloads or (fixed design) seeds under "
                         "the sweep's protocol; nothing was changed. It differs in:\n"
                         + "\n".join(f"  - {c}" for c in changes))


def extended_spec(old: Spec, *, strategies: Sequence[str] = (), workloads: Sequence[str] = (),
                  seeds: int | None = None, spec_path: str | None = None, plugins: Sequence[str] = ()) -> Spec:
    """The sweep's spec ``old`` with ``strategies`` and ``workloads`` (names, default options) added and
    the seeds set to ``seeds``, or the spec file ``spec_path``; named like the sweep, with its plugins
    and those of ``plugins``. A SpecError for what does not validate."""
    if spec_path is not None:
        new = load_spec(spec_path, tuple(plugins))
    else:
        raw = old.to_dict()
        raw.pop("plugins", None)  # imported already, from the sweep's copies (load_sweep_spec)
        raw["strategies"] = [*raw["strategies"], *(s for s in strategies if s not in old.strategies)]
        known = {w.name for w in old.workloads}
        raw["workloads"] = [*raw["workloads"], *({w: {}} for w in workloads if w not in known)]
        if seeds is not None:
            raw["evaluation"] = {**raw["evaluation"], "seeds": seeds}
        new = parse_spec(raw, "extension", plugins=tuple(plugins))
    mine = {p.module for p in old.plugins}
    return dataclasses.replace(new, name=old.name, storage=old.storage,
                               plugins=(*old.plugins, *(p for p in new.plugins if p.module not in mine)))


def protocol_changes(old: Spec, new: Spec) -> list[str]:
    """Each way ``new`` is more than ``old`` with strategies, workloads or fixed-design seeds added:
    ``<field>: the sweep has <value>, the extension <value>`` (empty: an extension of ``old``)."""
    out = []

    def compare(prefix: str, was: dict, now: dict, skip: Callable[[str], bool] = lambda k: False) -> None:
        for k in sorted(set(was) | set(now)):
            if was.get(k) != now.get(k) and not skip(k):
                out.append(f"{prefix}.{k}: the sweep has {was.get(k)!r}, the extension {now.get(k)!r}")

    compare("budget", old.budget.to_dict(), new.budget.to_dict())
    # Under the selection over studies a study's score is the mean of its seeds: more seeds would change the
    # scores its decisions were made on, so the count is part of the protocol there.
    more_seeds = not old.evaluation.adaptive and not new.evaluation.adaptive and \
        not old.budget.adaptive_studies and int(new.evaluation.seeds) >= int(old.evaluation.seeds)
    compare("evaluation", old.evaluation.to_dict(), new.evaluation.to_dict(), lambda k: k == "seeds" and more_seeds)
    theirs = {w.name: w for w in new.workloads}
    for w in old.workloads:
        if w.name not in theirs:
            out.append(f"workloads.{w.name}: the sweep has it, the extension does not (an extension only adds)")
        elif theirs[w.name] != w:
            out.append(f"workloads.{w.name}: the sweep has {w.to_dict()!r}, the extension {theirs[w.name].to_dict()!r}")
    for s in old.strategies:
        if s not in new.strategies:
            out.append(f"strategies.{s}: the sweep has it, the extension does not (an extension only adds)")
        elif old.overrides(s) != new.overrides(s):
            out.append(f"search_space.{s}: the sweep has {old.overrides(s)!r}, the extension {new.overrides(s)!r}")
    return out


def added(old: Spec, new: Spec) -> dict[str, Any]:
    """What ``new`` adds to ``old``: strategies, workloads (names) and ``seeds`` ``[before, after]`` or None."""
    seeds = None if new.evaluation.seeds == old.evaluation.seeds else [old.evaluation.seeds, new.evaluation.seeds]
    return {"strategies": [s for s in new.strategies if s not in old.strategies],
            "workloads": [w.name for w in new.workloads if w.name not in {x.name for x in old.workloads}],
            "seeds": seeds}


def _step(spec: Spec, when: str | None, **more: Any) -> dict:
    return {"when": when, "spec_hash": spec.hash, "strategies": list(spec.strategies),
            "workloads": [w.name for w in spec.workloads], "seeds": spec.evaluation.seeds, **more,
            "spec": spec.to_dict()}


def extend_sweep(directory: str, *, strategies: Sequence[str] = (), workloads: Sequence[str] = (),
                 seeds: int | None = None, spec_path: str | None = None, plugins: Sequence[str] = (),
                 address: str | None = None, num_cpus: int | None = None, out: Callable[[str], None] = say) -> int:
    """Add to the sweep in ``directory`` and train only what is new; return the exit status (0 complete,
    1 unequal budget). SpecError or SweepError (``ProtocolError`` naming each differing field), with
    nothing in the directory changed, for an extension that does not validate, adds nothing, or would
    change the protocol."""
    from sweeps.engine.experiment import execute, plan
    from sweeps.record.durable import Lease, Record

    old, sweep = load_sweep_spec(directory)
    new = extended_spec(old, strategies=strategies, workloads=workloads, seeds=seeds, spec_path=spec_path,
                        plugins=plugins)
    changes = protocol_changes(old, new)
    if changes:
        raise ProtocolError(sweep.root, changes)
    what = added(old, new)
    if not any(what.values()):
        raise SweepError(f"{sweep.root}: the extension adds nothing (no new strategy, workload or seed); "
                         "nothing was changed")
    if what["seeds"]:
        short = [w.name for w in old.workloads if (k := population_size(old, w)) > 1 and int(old.evaluation.seeds) % k]
        if short:
            raise SweepError(f"{sweep.root}: more seeds with resources.population: its seed runs were trained in "
                             f"populations that {old.evaluation.seeds} seeds do not fill on {', '.join(short)}; "
                             "nothing was changed. Set resources.population: 1 in a --spec, or run a new sweep")
    Record(sweep).runs()  # a damaged run record refuses here, before anything changes
    with Lease(sweep, out) as lease:
        history = [s for s in steps(sweep) if s["spec_hash"] != new.hash] or [_step(old, None)]
        if history[-1]["spec_hash"] != old.hash:  # an extension killed before its spec was written
            history = history[:-1]
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        history.append(_step(new, when, added=what, previous_spec_hash=old.hash))
        sweep.write_text(EXTENSIONS, json.dumps({"steps": history}, indent=1))
        sweep.write_text("spec.yaml", new.to_yaml())
        plugin_files.save_copies(new.plugins, sweep.location)
        sweep.delete("budget.parquet")  # written last by every session: without it a resume finishes this step
        out(f"extending sweep {new.name} (spec hash {old.hash} -> {new.hash}) under the same protocol: "
            + ", ".join(f"{k} {v}" for k, v in what.items() if v))
        return execute(plan(new, sweep, out, address, num_cpus), address, num_cpus, out, lease)
