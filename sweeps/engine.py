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

The Parquet tables are written when the experiment ends. ``resume`` restores the experiment with
``Tuner.restore`` (the searcher's save/restore carries the studies and the queued seed runs), so
finished trials never run again. The sweep directory is ``sweeps.storage``'s; starting Ray and the
experiment's RunConfig are ``sweeps.ray_setup``'s; progress lines and ``status`` are ``sweeps.progress``'s.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable

import pyarrow.fs as pafs

from reports.store import is_uri
from sweeps import catalog, plugins
from sweeps.progress import say
from sweeps.ray_setup import MAX_FAILURES, init_ray, quiet_tune, run_config, trial_dirname
from sweeps.results import TrialRecord, dedupe_epochs, describe_error, write_results
from sweeps.searcher import PairPlan, PairSearcher, member_metrics, run_ids, trial_members
from sweeps.spec import Spec, population_size
from sweeps.storage import EXPERIMENT, SweepDir, SweepError, fill_checkpoint_gaps, load_sweep_spec
from vocab.contracts import SEED, TUNE, Pair

__all__ = ["base_config", "checkpoint_every", "records", "resume_sweep", "run_sweep"]


def base_config(spec: Spec, workload, strategy: str, stage: str, seed: int) -> dict:
    """A trial's ``run`` config before its hyperparameters: what it trains, how long, with which seed."""
    data_dir = spec.data_dir
    if data_dir and not is_uri(data_dir):
        data_dir = os.path.abspath(data_dir)  # Ray runs trials in their own working directories
    return {"workload": workload.name, "workload_options": workload.options_dict, "strategy": strategy,
            "seed": seed, "epochs": workload.epochs, "stage": stage, "data_dir": data_dir,
            "checkpoint_every": checkpoint_every(workload.epochs), "checkpoint_final_state": spec.keep_checkpoints}


def checkpoint_every(epochs: int) -> int:
    """Checkpoint about four times per trial, and always at its last epoch.

    With ``CheckpointConfig(num_to_keep=1)`` Tune snapshots the experiment state after each trial
    checkpoint, so the last-epoch checkpoint records every finished trial at once (a resume never
    re-runs it) and the others let a long trial resume mid-way. A snapshot per epoch would cost a
    short trial ~20% of its time.
    """
    return max(1, math.ceil(epochs / 4))


def _plans(spec: Spec) -> list[PairPlan]:
    plans = []
    for w, s in spec.pairs():
        overrides = spec.overrides(s)
        plans.append(PairPlan(
            key=Pair(w.name, s).key,
            base=base_config(spec, w, s, TUNE, spec.budget.tune_seed),
            space=catalog.space(w.name, w.options_dict, s, overrides),
            canonical=catalog.canonical_point(w.name, w.options_dict, s, overrides),
            seed_base=base_config(spec, w, s, SEED, 0),
            population=population_size(spec, w),
        ))
    return plans


def _tune_config(spec: Spec, sweep: SweepDir, plans: list[PairPlan]):
    """The experiment's TuneConfig: the pair searcher (both stages), per-pair early stopping, and
    trial actors reused across trials and stages."""
    from ray import tune

    # A fresh experiment starts fresh studies: a journal left by a driver that died before Tune
    # saved any experiment state belongs to no trial.
    if os.path.exists(sweep.journal_path):
        os.remove(sweep.journal_path)
    scheduler = None
    if spec.budget.early_stopping is not None:
        from sweeps.schedulers import PerPairScheduler

        epochs = {Pair(w.name, s).key: w.epochs for w, s in spec.pairs()}
        scheduler = PerPairScheduler(spec.budget.early_stopping, epochs)
    searcher = PairSearcher(plans, spec.budget.trials, spec.budget.sampler, spec.budget.sampler_seed,
                            sweep.journal_path, spec.evaluation.selection, spec.evaluation.seeds)
    # Tune trials, not runs: a population trial trains up to p.population runs of one pair.
    trials = sum(math.ceil(spec.budget.trials / p.population) + math.ceil(spec.evaluation.seeds / p.population)
                 for p in plans)
    return tune.TuneConfig(
        search_alg=searcher, scheduler=scheduler, num_samples=trials,
        max_concurrent_trials=spec.max_concurrent, reuse_actors=True,
        trial_dirname_creator=trial_dirname, trial_name_creator=trial_dirname,
    )


def _fit(spec: Spec, sweep: SweepDir, out: Callable[[str], None]):
    """Run (or restore and finish) the sweep's Tune experiment; return its ResultGrid."""
    from ray import tune

    from sweeps.trial_entry import run_trial_config

    quiet_tune()
    trainable = tune.with_resources(run_trial_config, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    path = sweep.path(EXPERIMENT)
    if tune.Tuner.can_restore(path):
        out(f"resuming the experiment at {path}")
        for trial_dir, missing, source in fill_checkpoint_gaps(*sweep.filesystem_path(EXPERIMENT)):
            out(f"{trial_dir}: checkpoint {missing} was deleted after the last snapshot; using {source}")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
        plans = _plans(spec)
        planned = {TUNE: {p.key: spec.budget.trials for p in plans},
                   SEED: {p.key: spec.evaluation.seeds for p in plans}}
        out(f"{len(plans)} pairs x ({spec.budget.trials} tune trials, sampler {spec.budget.sampler} seed "
            f"{spec.budget.sampler_seed}, training seed {spec.budget.tune_seed}; then {spec.evaluation.seeds} "
            f"seed runs of the best, seeds 0..{spec.evaluation.seeds - 1})")
        tuner = tune.Tuner(
            trainable,
            tune_config=_tune_config(spec, sweep, plans),
            run_config=run_config(sweep, planned, out),
        )
    return tuner.fit()


def _read_history(result) -> list[dict]:
    """The per-epoch dicts a trial reported, from its ``result.json`` (one dict per epoch)."""
    fs = result.filesystem or pafs.LocalFileSystem()
    try:
        with fs.open_input_stream(f"{result.path}/result.json") as f:
            lines = f.read().decode().splitlines()
    except (FileNotFoundError, OSError):
        return []
    return dedupe_epochs(json.loads(line) for line in lines if line.strip())


def records(grid, sweep: SweepDir | None = None) -> list[TrialRecord]:
    """One record per run (a population trial's members each); with ``sweep``, each failure's full
    text goes to errors/<trial id>.txt."""
    found = []
    for result in grid:
        members = trial_members(result.config)
        history = _read_history(result)
        trial_id = os.path.basename(result.path.rstrip("/"))
        error = error_log = None
        if result.error is not None:
            error, full = describe_error(result.error)
            if sweep is not None:
                sweep.write_text(f"errors/{trial_id}.txt", f"trial {trial_id} failed: {error}\n\n{full}\n")
                error_log = sweep.path(f"errors/{trial_id}.txt")
        per_epoch = [member_metrics(h, len(members)) for h in history]  # each epoch's dict of every run
        for i, ((run, meta), run_id) in enumerate(zip(members, run_ids(trial_id, len(members)), strict=True)):
            own = tuple(dedupe_epochs(row[i] for row in per_epoch if row[i]))  # the epochs it reported in
            found.append(TrialRecord(
                trial_id=run_id, stage=run["stage"], pair=meta["pair"],
                workload=run["workload"], strategy=run["strategy"], trial_index=meta["trial_index"],
                canonical=bool(meta["canonical"]), seed=run["seed"], epochs_planned=run["epochs"],
                hparams=run["hparams"], history=own, error=error, error_log=error_log,
                extra={"workload_options": run["workload_options"]}, population_id=trial_id,
            ))
    return found


def _write_selection(spec: Spec, sweep: SweepDir, grid) -> None:
    """``selection.json``: the tune trial each pair's seed runs retrained (read from their configs)."""
    chosen = {}
    for result in grid:
        for run, meta in trial_members(result.config):
            if run["stage"] == SEED:
                chosen[meta["pair"]] = {"trial_id": meta["selected_trial"], "trial_index": meta["selected_index"],
                                        "hparams": run["hparams"]}
    sweep.write_text("selection.json", json.dumps({"selection": spec.evaluation.selection,
                                                   "chosen": dict(sorted(chosen.items()))}, indent=1))


def _summary(spec: Spec, budget: list[dict], out) -> int:
    short = [b for b in budget if not b["complete"]]
    if not short:
        out(f"complete: every pair got {spec.budget.trials} trials and {spec.evaluation.seeds} seeds")
        return 0
    for b in short:
        out(f"INCOMPLETE {b['workload']}/{b['strategy']}: {b['trials_run']}/{b['trials_planned']} tune trials, "
            f"{b['seeds_run']}/{b['seeds_planned']} seeds ({b['trials_errored']} tune trials errored after "
            f"{MAX_FAILURES} retries)")
    out(f"the sweep could not give every pair the same budget: {len(short)} pair(s) incomplete "
        "(budget table: complete=False); see the error column of the trials table")
    return 1


def _execute(spec: Spec, sweep: SweepDir, address: str | None, num_cpus: int | None, out) -> int:
    started = init_ray(address, num_cpus, spec, sweep)
    t0 = time.time()
    try:
        grid = _fit(spec, sweep, out)
        _write_selection(spec, sweep, grid)
        budget = write_results(spec, records(grid, sweep), sweep.root)
        out(f"done in {time.time() - t0:.0f}s; tables: trials, epochs, budget in {sweep.root}")
        return _summary(spec, budget, out)
    finally:
        if started:
            import ray

            ray.shutdown()


def run_sweep(spec: Spec, *, storage: str | None = None, address: str | None = None,
              num_cpus: int | None = None, out: Callable[[str], None] = say) -> int:
    """Run a new sweep; return the exit status (0 complete, 1 unequal budget). Refuses (SweepError,
    before writing anything) when the sweep directory already holds a sweep."""
    sweep = SweepDir.of(storage or spec.storage, spec.name)
    existing = sweep.read_text("spec.yaml")
    if existing is not None:
        raise SweepError(f"{sweep.root} already holds a sweep; continue it with `lrsweep resume {sweep.root}` "
                         "or choose another name/storage")
    sweep.write_text("spec.yaml", spec.to_yaml())
    plugins.save_copies(spec.plugins, sweep.root)
    out(f"sweep {spec.name} (spec hash {spec.hash}) -> {sweep.root}")
    return _execute(spec, sweep, address, num_cpus, out)


def resume_sweep(directory: str, *, address: str | None = None, num_cpus: int | None = None,
                 out: Callable[[str], None] = say) -> int:
    """Finish an interrupted sweep: restore the interrupted stage and go on; finished trials are kept."""
    spec, sweep = load_sweep_spec(directory)
    out(f"resuming sweep {spec.name} (spec hash {spec.hash}) at {sweep.root}")
    return _execute(spec, sweep, address, num_cpus, out)
