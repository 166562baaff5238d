"""A sweep on Ray Tune: both stages of the protocol in one experiment, and resuming it.

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
finished trials never run again.

Sweep directory layout (``<storage>/<name>/``): ``spec.yaml`` (the normalised spec),
``optuna.journal`` (local storage only; else a driver-local cache, carried in the searcher
checkpoint), ``experiment/`` (the Tune experiment), ``selection.json`` (each pair's selected tune
trial), ``progress.json`` (for ``lrsweep status``), the Parquet tables, ``plugins/`` (copies of the
spec's plugins), ``logs/<trial id>.log`` (library chatter of each trial; local storage only) and
``errors/<trial id>.txt`` (the full traceback of each failed trial, named by ``trials.error_log``).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import yaml

from sweeps import catalog, plugins
from sweeps.results import TrialRecord, dedupe_epochs, describe_error, pair_key, write_results
from sweeps.searcher import PairPlan, PairSearcher, member_id, member_metrics, trial_members
from sweeps.spec import Spec, SpecError, parse_spec, population_size
from sweeps.trial_entry import LOG_DIR_VAR

__all__ = ["SweepDir", "SweepError", "load_sweep_spec", "resume_sweep", "run_sweep", "status"]

MAX_FAILURES = 2
"""Times Tune retries a crashed trial (from its last checkpoint) before it counts as errored."""
CHECKPOINT_NAME = re.compile(r"checkpoint_\d{6}")  # Ray Tune's checkpoint directory names
EXPERIMENT = "experiment"
"""The Tune experiment's directory inside the sweep directory."""


class SweepError(RuntimeError):
    """A sweep that cannot start or go on (existing directory, nothing to resume, ...)."""


# --- the sweep directory -----------------------------------------------------------------------


@dataclass(frozen=True)
class SweepDir:
    """``<storage>/<name>``, a local directory or a URI, read and written through pyarrow's filesystems."""

    root: str

    @classmethod
    def of(cls, storage: str, name: str) -> SweepDir:
        base = storage if "://" in storage else os.path.abspath(storage)
        return cls(f"{base.rstrip('/')}/{name}")

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        if self.is_local:
            return pafs.LocalFileSystem(), self.root
        return pafs.FileSystem.from_uri(self.root)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def filesystem_path(self, name: str) -> tuple[pafs.FileSystem, str]:
        """The filesystem and the path inside it of ``<root>/<name>``."""
        fs, base = self._fs()
        return fs, f"{base}/{name}"

    def read_text(self, name: str) -> str | None:
        fs, base = self._fs()
        try:
            with fs.open_input_stream(f"{base}/{name}") as f:
                return f.read().decode()
        except (FileNotFoundError, OSError):
            return None

    def write_text(self, name: str, text: str) -> None:
        """Write a small file whole (temp file + rename where the filesystem has rename)."""
        fs, base = self._fs()
        target = f"{base}/{name}"
        folder, _, leaf = target.rpartition("/")
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/.{leaf}.tmp" if self.is_local else target
        with fs.open_output_stream(tmp) as f:
            f.write(text.encode())
        if tmp != target:
            fs.move(tmp, target)

    @property
    def journal_path(self) -> str:
        """A driver-local file for the Optuna journal (inside the sweep dir when that is local)."""
        if self.is_local:
            return self.path("optuna.journal")
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lrsweep"
        return str(cache / self.root.replace("://", "_").replace("/", "_") / "optuna.journal")


# --- Ray ---------------------------------------------------------------------------------------


def _init_ray(address: str | None, num_cpus: int | None, spec: Spec | None = None,
              sweep: SweepDir | None = None) -> bool:
    """Start an embedded local Ray (``address`` None) or connect to a cluster; True if we started it.

    The job's runtime_env carries the spec's plugins to every worker (``sweeps.plugins``). Inside a
    Ray Job sent by ``lrsweep submit`` the job's own runtime_env carries them already, and Ray
    refuses a driver runtime_env that sets the same fields again. The spec's text tasks travel as
    names (``LRSWEEP_TEXT_TASKS``).
    """
    import ray

    if ray.is_initialized():
        return False
    env = plugins.runtime_env(spec.plugins, [w.name for w in spec.workloads if w.text]) if spec else {}
    if sweep is not None and sweep.is_local:  # trials' library chatter (LOG_DIR_VAR) into the sweep dir
        env.setdefault("env_vars", {})[LOG_DIR_VAR] = sweep.path("logs")
    if os.environ.get(plugins.ENV_VAR):  # a job from `lrsweep submit`: its runtime_env ships the plugins
        env.pop("py_modules", None)
        env.get("env_vars", {}).pop(plugins.ENV_VAR, None)
    quiet = {"log_to_driver": bool(os.environ.get("LRSWEEP_TRIAL_LOGS")), "logging_level": "WARNING",
             "runtime_env": {k: v for k, v in env.items() if v} or None}
    if address is None:
        # "local" always starts a private Ray: never join a cluster someone started on this machine.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
    else:
        ray.init(address=address, **quiet)
    return True


def _trial_dirname(trial) -> str:
    """Trial directories named by trial id: Tune's default name embeds the whole (long) config."""
    return trial.trial_id


def _quiet_tune() -> None:
    """One line per finished trial is our progress output; keep Tune's own output out of the log."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0 fully
    # The snapshot after each trial checkpoint (see checkpoint_every) is wanted; Tune warns at each.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


# --- progress ----------------------------------------------------------------------------------


def _trial_error(trial) -> BaseException | None:
    """The exception that just failed ``trial``, from the driver-local file Tune has just written
    (``Trial.get_pickled_error`` reads the storage copy, which is synced later)."""
    from ray import cloudpickle

    path = trial.pickled_error_file
    try:
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    except Exception:  # no such file, or not unpicklable here: the line goes without the reason
        return None


def _progress_callback(planned: dict[str, dict[str, int]], sweep: SweepDir, out: Callable[[str], None]):
    """A Tune callback printing one line per finished trial and keeping ``progress.json`` current.

    ``planned[stage][pair]`` is the number of trials the pair gets in that stage.
    """
    from ray.tune import Callback

    score_key = {"tune": "val_accuracy", "seed": "test_accuracy"}

    class Progress(Callback):
        def __init__(self) -> None:
            self.done = {stage: dict.fromkeys(pairs, 0) for stage, pairs in planned.items()}
            self.errored = {stage: dict.fromkeys(pairs, 0) for stage, pairs in planned.items()}
            self.best: dict[str, dict[str, float]] = {stage: {} for stage in planned}
            self.started = time.time()
            self.resumed_with = 0  # runs finished before a resume: not part of this process's pace

        def _record(self, trial, error: bool) -> None:
            members = trial_members(trial.config)
            (run, meta), n = members[0], len(members)
            stage, pair = run["stage"], meta["pair"]
            key = score_key[stage]
            done, best = self.done[stage], self.best[stage]
            last = trial.last_result or {}
            finals = [m for m in member_metrics(last, n) if m is not None]
            scores = [m[key] for m in finals if isinstance(m.get(key), float)]
            if error:
                self.errored[stage][pair] += n
                cause = _trial_error(trial)
                what = "ERROR" + (f" {describe_error(cause)[0][:300]}" if cause is not None else "")
            else:
                done[pair] += n
                if scores:
                    best[pair] = max(*scores, best.get(pair, float("-inf")))
                statuses = [m.get("status", "ok") for m in finals] or ["ok"]
                status = ", ".join(f"{s} {statuses.count(s)}" for s in dict.fromkeys(statuses)) if n > 1 \
                    else statuses[0]
                what = f"{status} {key}={max(scores):.4f}" if scores else "no score"
            runs = f"#{meta['trial_index']}" if n == 1 else f"#{meta['trial_index']}-{members[-1][1]['trial_index']} " \
                f"({n} runs in one population)"
            total = sum(done.values()) + sum(self.errored[stage].values())
            out(f"[{stage} {total}/{sum(planned[stage].values())}] {pair} {runs} {what} "
                f"(pair {done[pair] + self.errored[stage][pair]}/{planned[stage][pair]}, best "
                f"{best.get(pair, float('nan')):.4f}) {time.time() - self.started:.0f}s{self._eta()}")
            self._save()

        def _finished(self) -> int:
            return sum(sum(d.values()) for by_stage in (self.done, self.errored) for d in by_stage.values())

        def _eta(self) -> str:
            """The time left at this process's pace so far (finished runs per second, both stages)."""
            now = self._finished() - self.resumed_with
            left = sum(sum(pairs.values()) for pairs in planned.values()) - self._finished()
            if now <= 0 or left <= 0:
                return ""
            return f", ETA {(time.time() - self.started) / now * left:.0f}s"

        def _save(self) -> None:
            state = {stage: {k: {"planned": n, "done": self.done[stage][k], "errored": self.errored[stage][k],
                                 "best": self.best[stage].get(k)} for k, n in pairs.items()}
                     for stage, pairs in planned.items()}
            state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            sweep.write_text("progress.json", json.dumps(state, indent=1))

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._record(trial, error=False)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._record(trial, error=True)

        def get_state(self) -> dict:
            return {"done": self.done, "errored": self.errored, "best": self.best}

        def set_state(self, state: dict) -> None:
            self.done, self.errored, self.best = state["done"], state["errored"], state["best"]
            self.resumed_with = self._finished()

    return Progress()


# --- the stages --------------------------------------------------------------------------------


def _base_config(spec: Spec, workload, strategy: str, stage: str, seed: int) -> dict:
    data_dir = spec.data_dir
    if data_dir and "://" not in data_dir:
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
            key=pair_key(w.name, s),
            base=_base_config(spec, w, s, "tune", spec.budget.tune_seed),
            space=catalog.space(w.name, w.options_dict, s, overrides),
            canonical=catalog.canonical_point(w.name, w.options_dict, s, overrides),
            seed_base=_base_config(spec, w, s, "seed", 0),
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

        epochs = {pair_key(w.name, s): w.epochs for w, s in spec.pairs()}
        scheduler = PerPairScheduler(spec.budget.early_stopping, epochs)
    searcher = PairSearcher(plans, spec.budget.trials, spec.budget.sampler, spec.budget.sampler_seed,
                            sweep.journal_path, spec.evaluation.selection, spec.evaluation.seeds)
    # Tune trials, not runs: a population trial trains up to p.population runs of one pair.
    trials = sum(math.ceil(spec.budget.trials / p.population) + math.ceil(spec.evaluation.seeds / p.population)
                 for p in plans)
    return tune.TuneConfig(
        search_alg=searcher, scheduler=scheduler, num_samples=trials,
        max_concurrent_trials=spec.max_concurrent, reuse_actors=True,
        trial_dirname_creator=_trial_dirname, trial_name_creator=_trial_dirname,
    )


def _fit(spec: Spec, sweep: SweepDir, out: Callable[[str], None]):
    """Run (or restore and finish) the sweep's Tune experiment; return its ResultGrid."""
    from ray import tune

    from sweeps.trial_entry import run_trial_config

    _quiet_tune()
    trainable = tune.with_resources(run_trial_config, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    path = sweep.path(EXPERIMENT)
    if tune.Tuner.can_restore(path):
        out(f"resuming the experiment at {path}")
        for trial_dir, missing, source in fill_checkpoint_gaps(*sweep.filesystem_path(EXPERIMENT)):
            out(f"{trial_dir}: checkpoint {missing} was deleted after the last snapshot; using {source}")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
        plans = _plans(spec)
        planned = {"tune": {p.key: spec.budget.trials for p in plans},
                   "seed": {p.key: spec.evaluation.seeds for p in plans}}
        out(f"{len(plans)} pairs x ({spec.budget.trials} tune trials, sampler {spec.budget.sampler} seed "
            f"{spec.budget.sampler_seed}, training seed {spec.budget.tune_seed}; then {spec.evaluation.seeds} "
            f"seed runs of the best, seeds 0..{spec.evaluation.seeds - 1})")
        tuner = tune.Tuner(
            trainable,
            tune_config=_tune_config(spec, sweep, plans),
            run_config=run_config(sweep, planned, out),
        )
    return tuner.fit()


def run_config(sweep: SweepDir, planned: dict[str, dict[str, int]], out: Callable[[str], None]):
    """The experiment's RunConfig (also used by ``lrsweep reproduce``): its storage, retries, one kept
    checkpoint per trial, and the progress callback for ``planned[stage][pair]`` trials."""
    from ray import tune

    return tune.RunConfig(
        name=EXPERIMENT,
        storage_path=sweep.root,
        failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[_progress_callback(planned, sweep, out)],
        verbose=0,
    )


def fill_checkpoint_gaps(fs: pafs.FileSystem, experiment: str) -> list[tuple[str, str, str]]:
    """Before a restore, give every deleted checkpoint of a trial the contents of its next later one.

    With ``num_to_keep`` Tune deletes a trial's older checkpoint when it registers a newer one and
    snapshots the experiment state afterwards; a driver killed in between leaves a snapshot that
    names the deleted checkpoint, and Ray then refuses to restore that trial. The newer checkpoint
    carries its own epoch and history, so restoring from it continues the trial exactly. Returns
    (trial dir, missing name, source name) for each gap filled.
    """
    filled = []
    for trial in fs.get_file_info(pafs.FileSelector(experiment, allow_not_found=True)):
        if trial.type != pafs.FileType.Directory:
            continue
        names = sorted(
            info.base_name for info in fs.get_file_info(pafs.FileSelector(trial.path))
            if info.type == pafs.FileType.Directory and CHECKPOINT_NAME.fullmatch(info.base_name)
        )
        if not names:
            continue
        present = {int(name.split("_")[1]): name for name in names}
        for index in range(max(present)):
            if index in present:
                continue
            source = present[min(i for i in present if i > index)]
            missing = f"checkpoint_{index:06d}"
            fs.create_dir(f"{trial.path}/{missing}", recursive=True)  # copy_files wants the target
            pafs.copy_files(f"{trial.path}/{source}", f"{trial.path}/{missing}",
                            source_filesystem=fs, destination_filesystem=fs)
            filled.append((trial.base_name, missing, source))
    return filled


def _read_history(result) -> list[dict]:
    """The per-epoch dicts a trial reported, from its ``result.json`` (one dict per epoch)."""
    fs = result.filesystem or pafs.LocalFileSystem()
    try:
        with fs.open_input_stream(f"{result.path}/result.json") as f:
            lines = f.read().decode().splitlines()
    except (FileNotFoundError, OSError):
        return []
    return dedupe_epochs(json.loads(line) for line in lines if line.strip())


def _records(grid, sweep: SweepDir | None = None) -> list[TrialRecord]:
    """One record per run (a population trial's members each); with ``sweep``, each failure's full
    text goes to errors/<trial id>.txt."""
    records = []
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
        for i, (run, meta) in enumerate(members):
            if len(members) > 1:  # a member's epochs: those the population reported it in
                own = tuple(dedupe_epochs(m[i] for m in (member_metrics(h, len(members)) for h in history) if m[i]))
                run_id = member_id(trial_id, i)
            else:
                own, run_id = tuple(history), trial_id
            records.append(TrialRecord(
                trial_id=run_id, stage=run["stage"], pair=meta["pair"],
                workload=run["workload"], strategy=run["strategy"], trial_index=meta["trial_index"],
                canonical=bool(meta["canonical"]), seed=run["seed"], epochs_planned=run["epochs"],
                hparams=run["hparams"], history=own, error=error, error_log=error_log,
                extra={"workload_options": run["workload_options"]}, population_id=trial_id,
            ))
    return records


def _write_selection(spec: Spec, sweep: SweepDir, grid) -> None:
    """``selection.json``: the tune trial each pair's seed runs retrained (read from their configs)."""
    chosen = {}
    for result in grid:
        for run, meta in trial_members(result.config):
            if run["stage"] == "seed":
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
    started = _init_ray(address, num_cpus, spec, sweep)
    t0 = time.time()
    try:
        grid = _fit(spec, sweep, out)
        _write_selection(spec, sweep, grid)
        budget = write_results(spec, _records(grid, sweep), sweep.root)
        out(f"done in {time.time() - t0:.0f}s; tables: trials, epochs, budget in {sweep.root}")
        return _summary(spec, budget, out)
    finally:
        if started:
            import ray

            ray.shutdown()


def _say(line: str) -> None:
    print(line, flush=True)


def run_sweep(spec: Spec, *, storage: str | None = None, address: str | None = None,
              num_cpus: int | None = None, out: Callable[[str], None] = _say) -> int:
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


def load_sweep_spec(directory: str) -> tuple[Spec, SweepDir]:
    """The spec a sweep directory was started with."""
    sweep = SweepDir(directory.rstrip("/") if "://" in directory else os.path.abspath(directory))
    text = sweep.read_text("spec.yaml")
    if text is None:
        raise SweepError(f"{directory} is not a sweep directory: it has no spec.yaml")
    raw = yaml.safe_load(text)
    try:
        # The plugins the sweep started with, from the copies it keeps (sweeps.plugins).
        recorded = raw.get("plugins") if isinstance(raw, dict) else None
        if recorded:
            plugins.import_plugins(plugins.recorded(recorded, sweep.root))
        spec = parse_spec(raw, sweep.path("spec.yaml"))
    except plugins.PluginError as err:
        raise SweepError(f"{sweep.path('spec.yaml')}: a plugin of this sweep cannot be imported: {err}") from None
    except SpecError as err:
        raise SweepError(f"{sweep.path('spec.yaml')} no longer validates:\n{err}") from None
    return spec, sweep


def resume_sweep(directory: str, *, address: str | None = None, num_cpus: int | None = None,
                 out: Callable[[str], None] = _say) -> int:
    """Finish an interrupted sweep: restore the interrupted stage and go on; finished trials are kept."""
    spec, sweep = load_sweep_spec(directory)
    out(f"resuming sweep {spec.name} (spec hash {spec.hash}) at {sweep.root}")
    return _execute(spec, sweep, address, num_cpus, out)


def status(directory: str, out: Callable[[str], None] = _say) -> int:
    """Print a sweep's progress per pair (from progress.json and the budget table); no Ray needed."""
    spec, sweep = load_sweep_spec(directory)
    progress = json.loads(sweep.read_text("progress.json") or "{}")
    out(f"sweep {spec.name} (spec hash {spec.hash}) at {sweep.root}; last update {progress.get('updated', '-')}")
    out(f"{'pair':40s} {'tune':>9s} {'best val':>9s} {'seeds':>7s} {'best test':>9s}")
    tune, seed = progress.get("tune", {}), progress.get("seed", {})
    for w, s in spec.pairs():
        key = pair_key(w.name, s)
        t, sd = tune.get(key, {}), seed.get(key, {})
        best_t = "-" if t.get("best") is None else f"{t['best']:.4f}"
        best_s = "-" if sd.get("best") is None else f"{sd['best']:.4f}"
        out(f"{key:40s} {t.get('done', 0):>4d}/{spec.budget.trials:<4d} {best_t:>9s} "
            f"{sd.get('done', 0):>3d}/{spec.evaluation.seeds:<3d} {best_s:>9s}")
    from reports.store import exists, read_table

    if not exists("budget", sweep.root):
        out("state: running or interrupted (no results tables yet); `lrsweep resume DIR` continues it")
        return 0
    rows = read_table("budget", sweep.root).to_pylist()
    if all(r["complete"] for r in rows):
        out("state: complete")
    else:
        out("state: finished with an unequal budget (budget table: complete=False)")
    return 0
