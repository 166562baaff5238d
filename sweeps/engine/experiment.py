"""A sweep on Ray Tune: plan the pairs, fit one experiment for both stages, collect the results.

One Tune experiment (``<sweep dir>/experiment``) holds every (workload, strategy) pair and both
stages; ``PairSearcher`` drives it:

1. **Tune**: one seeded Optuna study per pair, so all pairs share the cluster and every pair gets
   exactly ``budget.trials`` trials of ``epochs`` epochs. Tune trials train on the training split
   minus validation, all with the same seed (``Budget.tune_seed``, never one of the seed stage's),
   and are ranked on validation accuracy only.
2. **Seed**: as soon as a pair's last tune trial ends, its best configuration is retrained with
   seeds ``0..seeds-1`` on the full training split and scored on test. There is no barrier
   between the stages, so the reused trial actors never wait for the slowest pair.

The durable record (``sweeps.record.durable``) is the truth: every session (``run``, each ``resume``)
starts a fresh Tune experiment from it, with a searcher ``rebuild``t from the finished runs and the
journal, so Tune's own experiment files are a cache no resume reads. ``plan`` -> ``fit`` ->
``collect`` is the whole engine; a sweep (``sweeps.commands.launch``) and a reproduction (``sweeps.commands.reproduce``)
are its clients, each with its own plan, and it imports neither. One driver holds a sweep at a time
(``sweeps.record.durable.Lease``, taken by the clients). The sweep directory is
``sweeps.record.storage``'s; starting Ray and the RunConfig are ``sweeps.engine.ray_setup``'s; progress lines and
``status`` are ``sweeps.observers.progress``'s.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lrresults.store import is_uri
from sweeps.designs import design_for
from sweeps.designs.plans import PairPlan, study_plan
from sweeps.engine.ray_setup import MAX_FAILURES, init_ray, quiet_tune, run_config, trial_dirname
from sweeps.observers.progress import say
from sweeps.record.durable import Lease, Record, RunRecord
from sweeps.record.results import records, tables_complete, write_results
from sweeps.record.storage import StorageError, StorageWatch, SweepDir, pause
from sweeps.search.searcher import PairSearcher
from sweeps.spec import Spec, catalog, population_size
from vocab.contracts import SEED, TUNE, Pair
from vocab.members import trial_members

__all__ = ["Plan", "base_config", "checkpoint_every", "collect", "execute", "fit", "plan", "records",
           "tables_complete"]


def base_config(spec: Spec, workload, strategy: str, stage: str, seed: int) -> dict:
    """A trial's ``run`` config before its hyperparameters: what it trains, how long, with which seed."""
    data_dir = spec.data_dir
    if data_dir and not is_uri(data_dir):
        data_dir = os.path.abspath(data_dir)  # Ray runs trials in their own working directories
    return {"workload": workload.name, "workload_options": workload.options_dict, "strategy": strategy,
            "seed": seed, "epochs": workload.epochs, "stage": stage, "data_dir": data_dir,
            "checkpoint_every": checkpoint_every(workload.epochs), "checkpoint_final_state": spec.keep_checkpoints,
            "budget_unit": spec.budget.unit}


def checkpoint_every(epochs: int) -> int:
    """Checkpoint about four times per trial, and always at its last epoch.

    Each checkpoint goes to the record first (``sweeps.record.durable.CheckpointStore``), then to Tune, which
    keeps the latest (``ray_setup.LatestCheckpointOnly``): the ones mid-way let a long trial resume
    there after a kill; the last one is a finished marker (or, with ``keep_checkpoints``, the final
    state). A checkpoint per epoch would cost a short trial ~20% of its time.
    """
    return max(1, math.ceil(epochs / 4))


@dataclass(frozen=True)
class Plan:
    """What one sweep (or reproduction) runs: its pairs, their budget, where, and its spec file."""

    spec: Spec
    sweep: SweepDir
    pairs: list[PairPlan]
    planned: dict[str, dict[str, int]]  # stage -> pair -> runs
    spec_file: str = "spec.yaml"
    trainable_resources: dict = field(default_factory=dict)
    calibrated: dict = field(default_factory=dict)  # pair key -> its calibration (sweeps.engine.calibrate)

    @property
    def record(self) -> Record:
        return Record(self.sweep)


def plan(spec: Spec, sweep: SweepDir, out: Callable[[str], None] = say, address: str | None = None,
         num_cpus: int | None = None) -> Plan:
    """A sweep's pairs: ``budget.studies`` studies each (trial 0 canonical), then seed runs of each
    study's best. Study j's tune trials train with the tune seed + j on validation rows of their own, its
    sampler has seed ``sampler_seed + j``, the same for every strategy, and its seed runs take seeds
    ``STUDY_SEED_STRIDE * j + 0..``; study 0 is exactly a one-study sweep's pair. With ``calibrate``, each
    pair's range test runs first on Ray (``address``, ``num_cpus``), or is read back from the sweep; every
    study of a pair searches the calibrated range."""
    from sweeps.engine import calibrate

    calibrated = calibrate.calibrate(spec, sweep, out, on_ray=True, address=address, num_cpus=num_cpus)
    if calibrated:
        out(calibrate.cost_line(calibrated))
    pairs = []
    studies = spec.budget.studies
    for w, s in spec.pairs():
        overrides = {**spec.overrides(s), **calibrate.override(calibrated.get(Pair(w.name, s).key))}
        space = catalog.space(w.name, w.options_dict, s, overrides)
        canonical = catalog.canonical_point(w.name, w.options_dict, s, overrides)
        first = PairPlan(
            key=Pair(w.name, s).study_key(0, studies),
            base=base_config(spec, w, s, TUNE, spec.budget.tune_seed),  # a one-study sweep's configs and record keys
            space=space,
            canonical=canonical,
            # A seed run trains on all of train whatever its study: its study is in its meta, so the
            # studies' seed runs of a pair train together in populations.
            seed_base=base_config(spec, w, s, SEED, 0),
            population=population_size(spec, w),
            sampler_seed=spec.budget.study_sampler_seed(0),
            group=Pair(w.name, s).key if studies > 1 else None,
        )
        pairs += [first, *(study_plan(first, j) for j in range(1, studies))]
    planned = {TUNE: {p.key: spec.budget.trials for p in pairs},
               SEED: {p.key: spec.evaluation.first_stage for p in pairs}}  # selection: the first stage
    return Plan(spec, sweep, pairs, planned, calibrated=calibrated)


def _searcher(p: Plan) -> PairSearcher:
    spec = p.spec
    return PairSearcher(p.pairs, spec.budget.trials, spec.budget.sampler, spec.budget.sampler_seed,
                        p.sweep.journal_path, spec.evaluation.selection, sweep=p.sweep,
                        design=design_for(spec, p.pairs))


def fit(p: Plan, out: Callable[[str], None] = say, observer=None, watch: StorageWatch | None = None) -> None:
    """Run what the record says is left of the sweep, in one fresh Tune experiment (nothing, when
    every trial is recorded finished); every trial finished is in the record when it returns. A
    storage fault seen by ``watch`` (or by this fit's writes) ends it with a StorageError."""
    from ray import tune

    from sweeps.engine.ray_setup import RecordWriter, tune_defaults_for_fit
    from sweeps.engine.schedulers import LiveFIFOScheduler, PerPairScheduler
    from sweeps.engine.trial_entry import run_trial_config
    from sweeps.observers.progress import Progress

    spec, sweep = p.spec, p.sweep
    finished = p.record.runs()
    p.record.drop_finished_checkpoints(finished)
    if not sweep.is_local:
        p.record.pull_journal(sweep.journal_path)
    searcher = _searcher(p)
    for note in searcher.rebuild(finished):
        out(note)
    left = searcher.remaining()
    if finished:
        out(f"resuming from the record: {len(finished)} trials finished, up to {left} to run")
    if left == 0:
        return
    quiet_tune()
    scheduler = LiveFIFOScheduler()
    if spec.budget.early_stopping is not None:
        epochs = {pp.key: pp.base["epochs"] for pp in p.pairs}  # each study's trials compared with each other
        scheduler = PerPairScheduler(spec.budget.early_stopping, epochs)
    watch = watch or StorageWatch()
    journal = None if sweep.is_local else (lambda: p.record.push_journal(sweep.journal_path))
    trainable = tune.with_resources(run_trial_config, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    progress = Progress(p.planned, sweep, out, finished.values(), watch, spec.evaluation.adaptive,
                        spec.budget.adaptive_studies)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=left,
            max_concurrent_trials=spec.max_concurrent, reuse_actors=True,
            trial_dirname_creator=trial_dirname, trial_name_creator=trial_dirname),
        run_config=run_config(sweep, progress,
                              RecordWriter(p.record, journal, observer and observer.run_finished, watch)),
    )
    with tune_defaults_for_fit():
        try:
            tuner.fit()
        except Exception as err:  # a journal or Tune's own files that could not be written
            if not watch.stopping(err):
                raise
    if watch.fault is not None:
        raise StorageError(sweep.root, watch.fault)


def _write_selection(spec: Spec, sweep: SweepDir, runs: list[RunRecord]) -> None:
    """``selection.json``: the tune trial each pair's seed runs retrained (read from their configs)."""
    chosen = {}
    for result in runs:
        for run, meta in trial_members(result.config):
            if run["stage"] == SEED:
                if "selected_trial" not in meta:
                    continue  # a fixed run (a reproduction's): nothing was selected
                chosen[meta["pair"]] = {"trial_id": meta["selected_trial"], "trial_index": meta["selected_index"],
                                        "hparams": run["hparams"]}
    sweep.write_text("selection.json", json.dumps({"selection": spec.evaluation.selection,
                                                   "chosen": dict(sorted(chosen.items()))}, indent=1))


def _summary(spec: Spec, budget: list[dict], out) -> int:
    short = [b for b in budget if not b["complete"]]
    if not short:
        seeds = "the seeds its workload's selection asked for" if spec.evaluation.adaptive else \
            f"{spec.evaluation.seeds} seeds"
        studies = f" ({spec.budget.studies} studies of {spec.budget.trials})" if spec.budget.studies > 1 else ""
        seeds = seeds if spec.budget.studies == 1 else f"{seeds} per study"
        if spec.budget.adaptive_studies:
            out(f"complete: every pair got the studies its workload's selection over studies asked for, each of "
                f"{spec.budget.trials} trials and {spec.evaluation.seeds} seeds")
            return 0
        out(f"complete: every pair got {spec.budget.total_trials} trials{studies} and {seeds}")
        return 0
    for b in short:
        out(f"INCOMPLETE {b['workload']}/{b['strategy']}: {b['trials_run']}/{b['trials_planned']} tune trials, "
            f"{b['seeds_run']}/{b['seeds_planned']} seeds ({b['trials_errored']} tune trials errored after "
            f"{MAX_FAILURES} retries)")
    out(f"the sweep could not give every pair the same budget: {len(short)} pair(s) incomplete "
        "(budget table: complete=False); see the error column of the trials table")
    return 1


def collect(p: Plan, out: Callable[[str], None] = say) -> list[dict]:
    """Write ``selection.json`` and the tables from the record; return the budget rows."""
    runs = sorted(p.record.runs().values(), key=lambda r: r.key)
    _write_selection(p.spec, p.sweep, runs)
    pause("tables")
    from sweeps.record.extensions import (
        stamp,  # an extended sweep's rows keep the spec hash of the step that added them
    )

    found, spec_hashes = stamp(p.sweep, records(runs, p.sweep))
    return write_results(p.spec, found, p.sweep.location, spec_hashes, calibrated=p.calibrated)


def execute(p: Plan, address: str | None, num_cpus: int | None, out, lease: Lease,
            summary: Callable[[list[dict]], int] | None = None) -> int:
    """Fit and collect under ``lease`` (already taken); return ``summary(budget)``'s exit status. The
    spec's trackers observe from the record (``sweeps.observers.tracking``)."""
    from sweeps.observers import tracking

    watch = StorageWatch()
    lease.on_fault = watch.failed  # a URI lease's renewal is the driver's own probe of its storage
    observer = None
    try:
        observer = tracking.observe(p.spec, p.sweep, out)
        started = init_ray(address, num_cpus, p.spec, p.sweep)
        t0 = time.time()
        try:
            fit(p, out, observer, watch)
        finally:
            if started:
                import ray

                ray.shutdown()
        try:
            budget = collect(p, out)
        except OSError as err:  # each table is written whole, so a resume writes them all again
            if not watch.stopping(err):
                raise
            raise StorageError(p.sweep.root, watch.fault) from err
        out(f"done in {time.time() - t0:.0f}s; tables: trials, epochs, layers, predictions, budget in {p.sweep.root}")
        tracking.finish(observer)
        return (summary or (lambda b: _summary(p.spec, b, out)))(budget)
    finally:
        if observer is not None:  # a sweep that failed: the runs queued so far are logged, within the timeout
            observer.close(observer.timeout)
        lease.reachable = watch.fault is None  # the caller's `with` releases it
