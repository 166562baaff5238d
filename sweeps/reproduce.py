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

import pickle
import time
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

    allowed = "names or globs of strategies and variants, e.g. '*@paper_code', 'stlr_discriminative'"
    patterns = [raw] if isinstance(raw, str) else raw
    if not isinstance(patterns, list) or not patterns or not all(isinstance(x, str) for x in patterns):
        p.add("strategies", f"got {raw!r}; allowed: {allowed}")
        return ()
    chosen: list[str] = []
    for i, pattern in enumerate(patterns):
        matched = [s.name for s in list_strategies(pattern)]
        if not matched:
            names = ", ".join(s.name for s in list_strategies("*") + list_strategies("*@*"))
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


def trial_configs(repro: ReproSpec) -> list[dict]:
    """One engine-shaped trial config (``run`` + ``sweep``) per (workload, strategy, seed)."""
    from sweeps.engine import base_config
    from vocab.contracts import SEED, Pair

    spec = repro.as_sweep_spec()
    configs = []
    for w, s in spec.pairs():
        for index, seed in enumerate(repro.seeds):
            run = {**base_config(spec, w, s, SEED, seed), "rng_order": "paper",
                   "hparams": dict(repro.hparams.get(s, {}))}
            configs.append({"run": run, "sweep": {"pair": Pair(w.name, s).key, "trial_index": index,
                                                  "canonical": s not in repro.hparams}})
    return configs


def _fixed_searcher(configs: list[dict]):
    """A Tune searcher that hands out ``configs`` in order: the reproduction tunes nothing."""
    from ray.tune.search import Searcher

    class FixedRuns(Searcher):
        def __init__(self) -> None:
            super().__init__()
            self.queue = list(configs)

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict | None:
            return self.queue.pop(0) if self.queue else Searcher.FINISHED

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            pass

        def save(self, checkpoint_path: str) -> None:  # Tune snapshots searchers with the experiment
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.queue, f)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as f:
                self.queue = pickle.load(f)

    return FixedRuns()


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
    from ray import tune

    from reports.reproduce import build_reproduction_report, write_ceilings
    from sweeps.engine import records
    from sweeps.ray_setup import init_ray, quiet_tune, run_config, trial_dirname
    from sweeps.results import write_results
    from sweeps.storage import SweepDir, SweepError
    from sweeps.trial_entry import run_trial_config
    from vocab.contracts import SEED, Pair

    spec = repro.as_sweep_spec()
    sweep = SweepDir.of(storage or repro.storage, repro.name)
    if sweep.read_text("reproduce.yaml") is not None:
        raise SweepError(f"{sweep.root} already holds a reproduction; choose another name or storage")
    sweep.write_text("reproduce.yaml", yaml.safe_dump(repro.to_dict(), sort_keys=False))
    configs = trial_configs(repro)
    out(f"reproduction {repro.name} ({repro.protocol} protocol): {len(spec.pairs())} pairs x seeds "
        f"{', '.join(map(str, repro.seeds))} = {len(configs)} runs -> {sweep.root}")
    planned = {SEED: {Pair(w.name, s).key: len(repro.seeds) for w, s in spec.pairs()}}
    started = init_ray(address, num_cpus)
    t0 = time.time()
    try:
        quiet_tune()
        trainable = tune.with_resources(run_trial_config, {"cpu": repro.resources.cpu, "gpu": repro.resources.gpu})
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=_fixed_searcher(configs), num_samples=len(configs),
                                        max_concurrent_trials=repro.max_concurrent, reuse_actors=True,
                                        trial_dirname_creator=trial_dirname,
                                        trial_name_creator=trial_dirname),
            run_config=run_config(sweep, planned, out),
        )
        grid = tuner.fit()
        budget = write_results(spec, records(grid), sweep.root)
    finally:
        if started:
            import ray

            ray.shutdown()
    write_ceilings(ceiling_rows(repro), sweep.root)
    out(f"done in {time.time() - t0:.0f}s; tables: trials, epochs, budget, ceilings in {sweep.root}")
    paths = build_reproduction_report([sweep.root], fair)
    out(f"report: {paths[0]} and {paths[1]}")
    missing = [b for b in budget if b["seeds_run"] != b["seeds_planned"]]
    for b in missing:
        out(f"INCOMPLETE {b['workload']}/{b['strategy']}: {b['seeds_run']}/{b['seeds_planned']} runs finished")
    return 1 if missing else 0
