"""One Ray Tune searcher that multiplexes one seeded Optuna study per (workload, strategy) pair,
and then each pair's seed runs.

Every pair of a sweep runs inside ONE Tune experiment, so trials of all pairs share the cluster
up to capacity. ``suggest`` walks the pairs round-robin and asks the next pair that still has
budget (so every pair progresses at the same pace), until every pair has been given exactly
``trials`` trials. Trial 0 of every study is the enqueued canonical configuration. Results are
told back to the pair's study when a trial completes.

Seed runs follow in the same experiment, with no barrier between the stages: as soon as the last
tune trial of a pair ends, the pair's best configuration (``best_trial``) is queued with seeds
``0..seeds-1``, and ``suggest`` hands those out whenever no tune trial is left to give. It returns
None (nothing yet) while seed runs still wait on running tune trials, and ``FINISHED`` at the end.
So the trial actors Tune reuses stay busy across both stages.

Persistence: the studies live in an Optuna ``JournalStorage`` file (one study per pair, named by
the pair). Tune saves this searcher's state together with its experiment state, and the state
carries the journal's bytes too, so an experiment on a URI storage resumes on another machine.
On restore, a study trial the journal shows as still running but which no Tune trial owns (asked
after the last experiment checkpoint, before the driver died) is marked failed and its parameters
are enqueued again, so the pair's next trial re-proposes exactly that point; the budget is counted
from this searcher's state, never from the journal, so no pair gets a trial more or less.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from ray.tune.search import Searcher

import search_spaces as ss
from vocab.contracts import STAGE_METRIC, TUNE

VAL = STAGE_METRIC[TUNE]  # what a tune trial is ranked by

__all__ = ["PairPlan", "PairSearcher", "SAMPLERS", "best_trial", "member_metrics", "objective", "run_ids",
           "trial_members"]

SAMPLERS = {
    # constant_liar only for populations: their K points are asked before any is told, and the liar
    # keeps TPE from proposing K near-copies. Single trials keep the plain sampler (same samples as before).
    "tpe": lambda seed, batched=False: optuna.samplers.TPESampler(seed=seed, constant_liar=batched),
    "qmc": lambda seed, batched=False: optuna.samplers.QMCSampler(
        seed=seed, scramble=True, warn_independent_sampling=False, warn_asynchronous_seeding=False),
    "random": lambda seed, batched=False: optuna.samplers.RandomSampler(seed=seed),
}
"""Sampler name -> factory of a seeded Optuna sampler (``batched``: for populations). Every pair gets
its own, with the same seed."""


@dataclass(frozen=True)
class PairPlan:
    """What the searcher needs to propose trials for one (workload, strategy) pair.

    ``base`` is the tune trial config without ``hparams`` (workload, options, strategy, seed,
    epochs, stage, data_dir, ...); ``space`` the searched table; ``canonical`` trial 0's point;
    ``seed_base`` the seed run config without ``hparams`` and ``seed`` (None: no seed stage);
    ``population`` how many runs of the pair one Tune trial trains (``trainables.population``).
    """

    key: str
    base: Mapping[str, Any]
    space: Mapping[str, ss.Range]
    canonical: Mapping[str, Any]
    seed_base: Mapping[str, Any] | None = None
    population: int = 1


def run_ids(trial_id: str, runs: int) -> list[str]:
    """The ids of the runs Tune trial ``trial_id`` trains: its own id for one run, ``<id>-<i>`` for
    member i of a population (the ``trials`` table's ``trial_id``)."""
    return [trial_id] if runs == 1 else [f"{trial_id}-{i}" for i in range(runs)]


def trial_members(config: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """``(run, sweep)`` of each run a Tune trial's config trains: one, or a population's members."""
    run, meta = config["run"], config["sweep"]
    if "members" in run:
        return list(zip(run["members"], meta["members"], strict=True))
    return [(run, meta)]


def member_metrics(result: Mapping[str, Any] | None, runs: int) -> list[Mapping[str, Any] | None]:
    """Each run's metrics in one reported result: a population's ``members`` (keyed by index, None
    for a member frozen earlier), or the result itself for a trial of one run."""
    if not result:
        return [None] * runs
    if "members" in result:
        return [result["members"].get(str(i)) for i in range(runs)]
    if "population" in result:  # a searcher gets Tune's flattened dict: members/<i>/<metric>
        out: list[dict | None] = [None] * runs
        for key, value in result.items():
            parts = key.split("/", 2)
            if parts[0] == "members" and len(parts) == 3:
                out[int(parts[1])] = {**(out[int(parts[1])] or {}), parts[2]: value}
        return out
    return [result] * runs


def _trial_config(runs: list[dict], metas: list[dict]) -> dict:
    """A Tune trial's config: one run as it is, several as a population."""
    if len(runs) == 1:
        return {"run": runs[0], "sweep": metas[0]}
    return {"run": {"members": runs}, "sweep": {"pair": metas[0]["pair"], "members": metas}}


def objective(history: list[Mapping[str, Any]], selection: str) -> float | None:
    """The validation accuracy a tune trial is ranked by: its last epoch's (``final``) or its best
    epoch's (``best``). None when no epoch reported one."""
    values = [h[VAL] for h in history if h.get(VAL) is not None]
    if not values:
        return None
    return float(values[-1] if selection == "final" else max(values))


def best_trial(candidates: Iterable[tuple[float | None, int, Any]]) -> Any | None:
    """The item of the best ``(score, trial_index, item)``: highest score, ties to the lower trial
    index (so the canonical trial wins a tie); items without a score are never chosen."""
    best, best_key = None, None
    for score, index, item in candidates:
        if score is not None and (best_key is None or (score, -index) > best_key):
            best, best_key = item, (score, -index)
    return best


@dataclass
class _Live:
    """A proposed tune trial the searcher waits on."""

    key: str
    number: int
    index: int = 0
    hparams: dict = field(default_factory=dict)
    canonical: bool = False
    history: list[dict] = field(default_factory=list)


class PairSearcher(Searcher):
    """Round-robin over per-pair Optuna studies (see the module docstring)."""

    def __init__(self, plans: list[PairPlan], trials: int, sampler: str, sampler_seed: int,
                 journal_path: str, selection: str = "final", seeds: int = 0) -> None:
        # No metric for Tune to enforce: seed runs report test_accuracy, and the searcher reads
        # val_accuracy from tune trials' results itself.
        super().__init__(metric=None, mode="max")
        self.plans = {p.key: p for p in plans}
        self.order = [p.key for p in plans]
        self.trials = trials
        self.sampler = sampler
        self.sampler_seed = sampler_seed
        self.journal_path = journal_path
        self.selection = selection
        self.issued = {k: 0 for k in self.order}
        self.numbers: dict[str, list[int]] = {k: [] for k in self.order}  # study trial numbers given out
        self.settled: dict[str, list[int]] = {k: [] for k in self.order}  # orphans already re-proposed
        self.cursor = 0
        self.live: dict[str, _Live] = {}  # tune runs waited on, by run id (trial id or member id)
        self.populations: dict[str, list[str]] = {}  # Tune trial id -> the run ids it trains
        self.seeds = seeds
        self.finished: dict[str, list[tuple[float | None, int, dict]]] = {k: [] for k in self.order}
        self.pending: list[dict] = []  # seed run configs not given out yet
        self._studies: dict[str, optuna.Study] = {}

    # -- studies ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_studies"] = {}  # rebuilt from the journal file; storages hold locks and file handles
        return state

    def _storage(self) -> JournalStorage:
        os.makedirs(os.path.dirname(os.path.abspath(self.journal_path)), exist_ok=True)
        return JournalStorage(JournalFileBackend(self.journal_path))

    def study(self, key: str) -> optuna.Study:
        """The pair's study, created (with trial 0 = canonical enqueued) on first use."""
        if key not in self._studies:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study = optuna.create_study(
                    study_name=key, storage=self._storage(), direction="maximize",
                    sampler=SAMPLERS[self.sampler](self.sampler_seed, self.plans[key].population > 1),
                    load_if_exists=True,
                )
            if not study.trials:
                study.enqueue_trial(dict(self.plans[key].canonical), user_attrs={"canonical": True})
            self._studies[key] = study
        return self._studies[key]

    # -- Searcher API ----------------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        return True  # metric and mode are fixed: validation accuracy, maximised

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(len(self.order)):
            key = self.order[self.cursor % len(self.order)]
            self.cursor += 1
            if self.issued[key] < self.trials:
                return self._propose(trial_id, key)
        if self.pending:
            return self.pending.pop(0)
        if self.seeds and self.live:
            return None  # the seed runs of the pairs still tuning come when their trials end
        return Searcher.FINISHED

    def _propose(self, trial_id: str, key: str) -> dict:
        """The pair's next ``population`` points (fewer at the end of its budget), asked at once."""
        plan = self.plans[key]
        study = self.study(key)
        ids = run_ids(trial_id, min(plan.population, self.trials - self.issued[key]))
        runs, metas = [], []
        for run_id in ids:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = study.ask()
                hparams = ss.define_by_run(plan.space)(trial)
            index = self.issued[key]
            self.issued[key] += 1
            self.numbers[key].append(trial.number)
            canonical = index == 0 and hparams == dict(plan.canonical)
            self.live[run_id] = _Live(key, trial.number, index, dict(hparams), canonical)
            runs.append({**plan.base, "hparams": hparams})
            metas.append({"pair": key, "trial_index": index, "optuna_number": trial.number, "canonical": canonical})
        self.populations[trial_id] = ids
        return _trial_config(runs, metas)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # A restarted trial reports its epochs again: keep one dict per epoch, the latest.
        epoch = result.get("epoch")
        ids = self.populations.get(trial_id)
        if not ids:
            return  # a seed run's result: nothing to tell a study
        for run_id, m in zip(ids, member_metrics(result, len(ids)), strict=True):
            live = self.live.get(run_id)
            if live is None or m is None:  # a seed run, or a member frozen earlier
                continue
            live.history = [h for h in live.history if h.get("epoch") != epoch]
            live.history.append({"epoch": epoch, VAL: m.get(VAL)})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ids = self.populations.pop(trial_id, None)
        if not ids:
            return  # a seed run
        lives = [(run_id, self.live.pop(run_id)) for run_id in ids if run_id in self.live]
        last = dict(zip(ids, member_metrics(result, len(ids)), strict=True))
        for run_id, live in lives:
            final = last[run_id]
            study = self.study(live.key)
            value = None if error else objective(sorted(live.history, key=lambda h: h["epoch"] or 0),
                                                 self.selection)
            if value is None and final and not error:
                value = objective([final], self.selection)
            if value is None:
                study.tell(live.number, state=TrialState.FAIL, skip_if_finished=True)
            else:
                study.tell(live.number, value, skip_if_finished=True)
            self.finished[live.key].append((value, live.index, {
                "trial_id": run_id, "trial_index": live.index, "hparams": live.hparams,
                "canonical": live.canonical}))
        for key in dict.fromkeys(live.key for _, live in lives):
            tuning = self.issued[key] < self.trials or any(t.key == key for t in self.live.values())
            if self.seeds and not tuning:
                self._queue_seed_runs(key)

    def _queue_seed_runs(self, key: str) -> None:
        """Queue the pair's seed runs: its best tune trial retrained with seeds 0..seeds-1, in
        populations of the pair's size (none when every tune trial errored or scored nothing; the
        budget table then says so)."""
        best = best_trial(self.finished[key])
        if best is None:
            return
        plan = self.plans[key]
        seeds = list(range(self.seeds))
        for start in range(0, len(seeds), plan.population):
            chunk = seeds[start:start + plan.population]
            self.pending.append(_trial_config(
                [{**plan.seed_base, "seed": seed, "hparams": dict(best["hparams"])} for seed in chunk],
                [{"pair": key, "trial_index": seed, "canonical": best["canonical"],
                  "selected_trial": best["trial_id"], "selected_index": best["trial_index"]} for seed in chunk]))

    def save(self, checkpoint_path: str) -> None:
        state = self.__getstate__()
        try:
            with open(self.journal_path, "rb") as f:
                state["journal_bytes"] = f.read()
        except FileNotFoundError:
            state["journal_bytes"] = b""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        journal = state.pop("journal_bytes", b"")
        state.setdefault("populations", {k: [k] for k in state["live"]})  # saved before populations existed
        self.__dict__.update(state)
        if journal and not os.path.exists(self.journal_path):
            # Resumed on a machine without the journal: the checkpoint's copy is the truth.
            os.makedirs(os.path.dirname(os.path.abspath(self.journal_path)), exist_ok=True)
            with open(self.journal_path, "wb") as f:
                f.write(journal)
        self._reconcile()

    def _reconcile(self) -> None:
        """Re-propose the study trials this (checkpointed) searcher never gave out.

        They were asked after the last experiment checkpoint, so no Tune trial owns them, and they
        may have finished (told) or not (still running: marked failed). Their parameters are
        enqueued again, in order, so the pair's next trials are exactly those points; trial 0 stays
        the canonical one. A finished orphan stays in the study as one extra observation for the
        sampler (Optuna cannot delete trials); the budget is counted from ``issued``, not the study.
        """
        log = logging.getLogger(__name__)
        for key in self.order:
            study = self.study(key)
            handled = set(self.numbers[key]) | set(self.settled[key])
            for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
                if t.number in handled or t.state == TrialState.WAITING:
                    continue
                log.info("re-proposing study trial %s #%d (asked after the last checkpoint)", key, t.number)
                if t.state == TrialState.RUNNING:
                    study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                study.enqueue_trial(t.params, user_attrs=dict(t.user_attrs))
                self.settled[key].append(t.number)
