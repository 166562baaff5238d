"""A reproduction spec (``lrsweep reproduce SPEC``, ``sweeps.commands.reproduce``): parsed, validated and read
back from the ``reproduce.yaml`` a reproduction records. No Ray and no engine here, so ``status``
reads a reproduction without importing what runs one.

Spec fields::

    name: reproduce-synthetic        # results in <storage>/<name>/
    protocol: paper                  # the only protocol (documents what the spec means)
    workloads: [synthetic]           # names or {name: options}, as in a sweep spec
    epochs: 80                       # optional; default: each workload's paper epochs
    strategies: ["*@paper_code"]     # names or globs; variants need an '@' in the pattern
    seeds: {first: 42, more: 4}      # seed 42, then 43..46
    hparams: {}                      # optional {strategy: {hparam: value}} overrides
    resources: {cpu: 1, gpu: 0}
    storage: ./results
    max_concurrent: null
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweeps.spec import (
    Budget,
    Evaluation,
    Resources,
    Spec,
    SpecError,
    WorkloadSpec,
    parse_location,
    parse_name,
)
from sweeps.spec import Problems as _Problems
from sweeps.spec import parse_resources as _parse_resources
from sweeps.spec import parse_workloads as _parse_workloads
from sweeps.spec import read_fields as _fields
from sweeps.spec import read_int as _int

__all__ = ["PROTOCOLS", "ReproSpec", "load_recorded", "load_repro_spec", "parse_repro_spec"]

PROTOCOLS = ("paper",)
FIELDS = ("name", "protocol", "workloads", "epochs", "strategies", "seeds", "hparams", "resources", "storage",
          "data_dir", "max_concurrent")
NONE = "none"  # sampler and selection of a run that tunes and selects nothing


@dataclass(frozen=True)
class ReproSpec:
    """A validated reproduction spec (see the module docstring)."""

    name: str
    workloads: tuple[WorkloadSpec, ...]
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    hparams: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    protocol: str = "paper"
    resources: Resources = field(default_factory=Resources)
    storage: str = "./results"
    data_dir: str | None = None
    max_concurrent: int | None = None

    def as_sweep_spec(self) -> Spec:
        """The sweep ``Spec`` the results writer and the engine's helpers take: no tuning trials, one
        "seed" run per seed, sampler and selection ``none``."""
        epochs = self.workloads[0].epochs if len({w.epochs for w in self.workloads}) == 1 else None
        return Spec(self.name, self.workloads, self.strategies,
                    Budget(trials=0, epochs=epochs, sampler=NONE, sampler_seed=self.seeds[0]),
                    Evaluation(seeds=len(self.seeds), selection=NONE), self.resources, self.storage,
                    self.data_dir, self.max_concurrent)

    def to_dict(self) -> dict:
        return {"name": self.name, "protocol": self.protocol,
                "workloads": [{w.name: w.options_dict} for w in self.workloads],
                "epochs": {w.name: w.epochs for w in self.workloads}, "strategies": list(self.strategies),
                "seeds": list(self.seeds), "hparams": {k: dict(v) for k, v in self.hparams.items()},
                "resources": self.resources.to_dict(), "storage": self.storage, "data_dir": self.data_dir,
                "max_concurrent": self.max_concurrent}


def _parse_strategies(raw: Any, p: _Problems) -> tuple[str, ...]:
    from strategies import list_strategies

    # Only the paper's 18 and their variants: a glob such as '*' never brings in the modern baselines.
    allowed = "names or globs of the paper's strategies and variants, e.g. '*@paper_code', 'stlr_discriminative'"
    patterns = [raw] if isinstance(raw, str) else raw
    if not isinstance(patterns, list) or not patterns or not all(isinstance(x, str) for x in patterns):
        p.add("strategies", f"got {raw!r}; allowed: {allowed}")
        return ()
    chosen: list[str] = []
    for i, pattern in enumerate(patterns):
        matched = [s.name for s in list_strategies(pattern, selection="paper")]
        if not matched:
            names = ", ".join(s.name for s in list_strategies("*", selection="paper") + list_strategies("*@*"))
            p.add(f"strategies[{i}]", f"{pattern!r} matches no strategy; allowed: {names}")
        chosen += [m for m in matched if m not in chosen]
    return tuple(chosen)


def _parse_seeds(raw: Any, p: _Problems) -> tuple[int, ...]:
    raw = _fields(raw, "seeds", ("first", "more"), p)
    first = _int(raw, "first", "seeds", p, default=42, minimum=0)
    more = _int(raw, "more", "seeds", p, default=4, minimum=0)
    return () if first is None or more is None else tuple(range(first, first + more + 1))


def _parse_hparams(raw: Any, strategies: tuple[str, ...], p: _Problems) -> dict[str, dict[str, float]]:
    from strategies import get_strategy, resolve_hparams

    raw = _fields(raw, "hparams", strategies, p)
    out = {}
    for name, values in raw.items():
        if name not in strategies:
            continue
        if not isinstance(values, Mapping):
            p.add(f"hparams.{name}", f"got {values!r}; allowed: a mapping {{hparam: value}}")
            continue
        try:
            resolve_hparams(get_strategy(name), sampled=dict(values))
        except ValueError as err:
            p.add(f"hparams.{name}", str(err))
            continue
        out[name] = dict(values)
    return out


def parse_repro_spec(raw: Any, source: str = "spec") -> ReproSpec:
    """Validate a reproduction spec; raise SpecError listing every problem (field path + allowed values)."""
    p = _Problems()
    if not isinstance(raw, Mapping):
        raise SpecError([f"(top): must be a mapping with fields {', '.join(FIELDS)}"], source)
    raw = _fields(raw, "", FIELDS, p)
    name = parse_name(raw, p)
    protocol = raw.get("protocol", "paper")
    if protocol not in PROTOCOLS:
        p.add("protocol", f"got {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    epochs = _int(raw, "epochs", "", p, default=None, nullable=True)
    workloads = _parse_workloads(raw.get("workloads"), epochs, p)
    strategies = ()
    if "strategies" in raw:
        strategies = _parse_strategies(raw["strategies"], p)
    else:
        p.add("strategies", "is required; allowed: names or globs, e.g. '*@paper_code'")
    seeds = _parse_seeds(raw.get("seeds"), p)
    hparams = _parse_hparams(raw.get("hparams"), strategies, p)
    resources = _parse_resources(raw.get("resources"), p)
    storage, data_dir = parse_location(raw, p)
    max_concurrent = _int(raw, "max_concurrent", "", p, default=None, nullable=True)
    if p.items:
        raise SpecError(p.items, source)
    return ReproSpec(name, workloads, strategies, seeds, hparams, protocol, resources, storage, data_dir,
                     max_concurrent)


def load_repro_spec(path: str | Path) -> ReproSpec:
    """Read and validate a reproduction spec file (unreadable or malformed YAML is a SpecError)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise SpecError([f"(file): cannot read {path}: {err.strerror}"], str(path)) from None
    except yaml.YAMLError as err:
        raise SpecError([f"(yaml): not valid YAML: {err}"], str(path)) from None
    return parse_repro_spec(raw, str(path))


def load_recorded(raw: dict, source: str) -> ReproSpec:
    """A reproduction spec as ``reproduce.yaml`` records it (``to_dict``), validated again. The record's
    ``fair`` list (the sweeps its report sets beside it) is not part of the spec and is left out."""
    raw = {k: v for k, v in raw.items() if k != "fair"}
    epochs = set((raw.get("epochs") or {}).values())
    seeds = raw["seeds"]
    return parse_repro_spec({**raw, "epochs": epochs.pop() if len(epochs) == 1 else None,
                             "seeds": {"first": seeds[0], "more": len(seeds) - 1}}, source)
