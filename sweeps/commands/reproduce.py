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

The spec (fields, parsing, ``reproduce.yaml``) is ``sweeps.spec.reproduction``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import yaml

from sweeps.spec import SpecError
from sweeps.spec.reproduction import PROTOCOLS, ReproSpec, load_recorded, load_repro_spec, parse_repro_spec

__all__ = ["PROTOCOLS", "ReproSpec", "load_repro_spec", "parse_repro_spec", "resume_reproduction",
           "run_reproduction"]


def repro_plan(repro: ReproSpec, sweep):
    """The engine's ``Plan`` of a reproduction: per pair no tune trials and one fixed seed-stage run
    per seed (the canonical settings or the spec's ``hparams``, the reference code's RNG order)."""
    from sweeps.designs.plans import PairPlan
    from sweeps.engine.experiment import Plan, base_config
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
    from sweeps.record.durable import Lease
    from sweeps.record.storage import SweepDir, SweepError, command

    sweep = SweepDir.of(storage or repro.storage, repro.name)
    if sweep.read_text("reproduce.yaml") is not None or sweep.read_text("spec.yaml") is not None:
        raise SweepError(f"{sweep.root} already holds a reproduction; continue it with "
                         f"`{command('resume', sweep.root)}` or choose another name or storage")
    with Lease(sweep, out) as lease:
        sweep.write_text("reproduce.yaml", yaml.safe_dump({**repro.to_dict(), "fair": list(fair)}, sort_keys=False))
        plan = repro_plan(repro, sweep)
        out(f"reproduction {repro.name} ({repro.protocol} protocol): {len(plan.pairs)} pairs x seeds "
            f"{', '.join(map(str, repro.seeds))} = {sum(plan.planned['seed'].values())} runs -> {sweep.root}")
        return _execute(repro, plan, address, num_cpus, fair, out, lease)


def _execute(repro: ReproSpec, plan, address, num_cpus, fair, out, lease) -> int:
    from reports.reproduce import build_reproduction_report, write_ceilings
    from sweeps.engine.experiment import execute

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
    from lrresults.store import normalise
    from sweeps.engine.experiment import tables_complete
    from sweeps.record.durable import Lease, Record
    from sweeps.record.storage import SweepDir, SweepError, unreadable_spec

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
    with Lease(sweep, out) as lease:
        out(f"resuming reproduction {repro.name} at {sweep.root}")
        return _execute(repro, repro_plan(repro, sweep), address, num_cpus, fair, out, lease)
