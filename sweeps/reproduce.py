"""``lrsweep reproduce SPEC``: run a benchmark the way the paper's reference code ran it.

No tuning and no validation split: every listed strategy (usually the ``<name>@paper_code``
variants, plus corrected strategies to compare with) trains with its canonical settings (or the
spec's ``hparams``) on the full training split, is scored on the test split after every epoch,
and runs once per seed: the reference code's seed 42 first, then ``seeds.more`` further seeds
(43, 44, ...) to show how far the single-seed number moves. Trials replay the reference code's
RNG order (``rng_order: paper``).

It is the sweep engine's Ray Tune experiment with a fixed list of trials in place of the Optuna
searcher: the same trainable, progress lines, trial records and Parquet writer, so the
``trials`` / ``epochs`` / ``budget`` tables have the sweep schema (stage ``seed``, budget
``trials_planned = 0``, sampler and selection ``none``) and the report reads Parquet only. The
directory also gets ``ceilings.parquet`` (the Bayes ceiling of workloads that have one) and
``reproduce.yaml`` (the normalised spec).

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

from collections.abc import Callable, Mapping, Sequence
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

__all__ = ["PROTOCOLS", "ReproSpec", "load_repro_spec", "parse_repro_spec", "run_reproduction"]

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


# --- running ------------------------------------------------------------------------------------


def repro_plan(repro: ReproSpec, sweep):
    """The engine's ``Plan`` of a reproduction: per pair no tune trials and one fixed seed-stage run
    per seed (the canonical settings or the spec's ``hparams``, the reference code's RNG order)."""
    from sweeps.engine import Plan, base_config
    from sweeps.searcher import PairPlan
    from vocab.contracts import SEED, Pair

    spec = repro.as_sweep_spec()
    pairs = []
    for w, s in spec.pairs():
        key = Pair(w.name, s).key
        fixed = tuple(({**base_config(spec, w, s, SEED, seed), "rng_order": "paper",
                        "hparams": dict(repro.hparams.get(s, {}))},
                       {"pair": key, "trial_index": index, "canonical": s not in repro.hparams})
                      for index, seed in enumerate(repro.seeds))
        pairs.append(PairPlan(key=key, base=fixed[0][0], space={}, canonical={}, fixed=fixed))
    planned = {SEED: {p.key: len(repro.seeds) for p in pairs}}
    return Plan(spec, sweep, pairs, planned, spec_file="reproduce.yaml")


def ceiling_rows(repro: ReproSpec) -> list[dict]:
    """The Bayes ceiling of each workload that defines one, computed from its generated data."""
    from trainables.workloads import synthetic
    from trainables.workloads.builtin import SYNTHETIC

    rule = "argmax of the noisy signal dimensions X[:, :10], test split"
    return [{"workload": w.name, "ceiling": synthetic.bayes_ceiling(), "rule": rule}
            for w in repro.workloads if w.name == SYNTHETIC.name]


def run_reproduction(repro: ReproSpec, *, storage: str | None = None, address: str | None = None,
                     num_cpus: int | None = None, fair: Sequence[str] = (),
                     out: Callable[[str], None] = print) -> int:
    """Run every (workload, strategy, seed) once; write the tables, the ceilings and the report.
    Returns 0 when every run finished (ok or diverged), 1 otherwise."""
    from sweeps.record import Lease
    from sweeps.storage import SweepDir, SweepError

    sweep = SweepDir.of(storage or repro.storage, repro.name)
    if sweep.read_text("reproduce.yaml") is not None or sweep.read_text("spec.yaml") is not None:
        raise SweepError(f"{sweep.root} already holds a reproduction; continue it with `lrsweep resume "
                         f"{sweep.root}` or choose another name or storage")
    lease = Lease(sweep, out).acquire()
    sweep.write_text("reproduce.yaml", yaml.safe_dump({**repro.to_dict(), "fair": list(fair)}, sort_keys=False))
    plan = repro_plan(repro, sweep)
    out(f"reproduction {repro.name} ({repro.protocol} protocol): {len(plan.pairs)} pairs x seeds "
        f"{', '.join(map(str, repro.seeds))} = {sum(plan.planned['seed'].values())} runs -> {sweep.root}")
    return _execute(repro, plan, address, num_cpus, fair, out, lease)


def _execute(repro: ReproSpec, plan, address, num_cpus, fair, out, lease) -> int:
    from reports.reproduce import build_reproduction_report, write_ceilings
    from sweeps.engine import execute

    def summary(budget: list[dict]) -> int:
        write_ceilings(ceiling_rows(repro), plan.sweep.root)
        paths = build_reproduction_report([plan.sweep.root], fair)
        out(f"ceilings in {plan.sweep.root}; report: {paths[0]} and {paths[1]}")
        missing = [b for b in budget if b["seeds_run"] != b["seeds_planned"]]
        for b in missing:
            out(f"INCOMPLETE {b['workload']}/{b['strategy']}: {b['seeds_run']}/{b['seeds_planned']} runs finished")
        return 1 if missing else 0

    return execute(plan, address, num_cpus, out, lease, summary)


def resume_reproduction(directory: str, *, address: str | None = None, num_cpus: int | None = None,
                        out: Callable[[str], None] = print) -> int:
    """Finish an interrupted reproduction from its durable record, as ``resume_sweep`` a sweep."""
    from reports.store import normalise
    from sweeps.engine import tables_complete
    from sweeps.record import Lease, Record
    from sweeps.storage import SweepDir, SweepError, unreadable_spec

    sweep = SweepDir(normalise(directory))
    path = sweep.path("reproduce.yaml")
    try:
        raw = yaml.safe_load(sweep.read_text("reproduce.yaml") or "")
        fair = raw.pop("fair", []) if isinstance(raw, dict) else []
        repro = load_recorded(raw, path)
    except (yaml.YAMLError, SpecError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise SweepError(unreadable_spec(path, f"{type(err).__name__}: {err}")) from None
    if tables_complete(sweep):
        raise SweepError(f"{sweep.root}: nothing to resume; tables are complete (trials, epochs, budget)")
    Record(sweep).runs()
    lease = Lease(sweep, out).acquire()
    out(f"resuming reproduction {repro.name} at {sweep.root}")
    return _execute(repro, repro_plan(repro, sweep), address, num_cpus, fair, out, lease)


def load_recorded(raw: dict, source: str) -> ReproSpec:
    """A reproduction spec as ``reproduce.yaml`` records it (``to_dict``), validated again. The record's
    ``fair`` list (the sweeps its report sets beside it) is not part of the spec and is left out."""
    raw = {k: v for k, v in raw.items() if k != "fair"}
    epochs = set((raw.get("epochs") or {}).values())
    seeds = raw["seeds"]
    return parse_repro_spec({**raw, "epochs": epochs.pop() if len(epochs) == 1 else None,
                             "seeds": {"first": seeds[0], "more": len(seeds) - 1}}, source)
