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

Several tuning studies per pair (``budget.studies``): each study is a key of its own (an Optuna study
``workload/strategy#study<j>`` with its sampler seed), and a pair's studies form a group that trains
together: a Tune trial of the group takes study j's trial t beside study j+1's (each member on its own
study's validation rows, ``trainables.population``), and once every study has chosen, the studies'
seed runs are queued together, in populations across studies. Under the selection design over studies
(``budget.studies: auto``, ``sweeps.seedstage.StudyRounds``) the studies after the first stage are added
during the sweep (``add_studies``), one cohort per round: the round's studies of a pair tune together and
queue their seed runs together. Which studies exist is a function of the decision, which ``rebuild``
replays from the record's seed runs before anything else, so a resumed driver has the same studies.

Persistence: the studies live in an Optuna ``JournalStorage`` file (one study per pair, named by
the pair; each study trial carries its ``trial_index``). Nothing else of this searcher is saved:
a resume builds a new one and ``rebuild``s it from the durable record (``sweeps.record.durable``): the
finished runs are told to their studies (replayed into a fresh study if the journal was lost), a
trial that was running is proposed again with the point the journal gave it, and the seed queue
is derived again from the finished tune runs. With the ``random`` and ``qmc`` samplers a pair's
trial i always gets the same point (``pin``), so a resumed sweep is the same experiment.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import TrialState
from ray.tune.search import Searcher

import search_spaces as ss
from lrresults.crashpoints import crash_point
from sweeps.spec.model import MAX_EVAL_SEEDS, STUDY_SEED_STRIDE
from vocab.contracts import SEED, STAGE_METRIC, STUDY_MARK, TUNE
from vocab.members import member_finals, member_metrics, run_ids, trial_config, trial_members

if TYPE_CHECKING:
    from sweeps.seedstage import Rounds, StudyRounds

VAL = STAGE_METRIC[TUNE]  # what a tune trial is ranked by
TEST = STAGE_METRIC[SEED]  # what the selection design compares seed runs by

__all__ = ["PairPlan", "PairSearcher", "SAMPLERS", "best_trial", "objective", "study_plan"]


class _JournalLock(JournalFileSymlinkLock):
    """Optuna's default journal lock, with a crash point while it is held (a kill inside a journal write)."""

    def acquire(self) -> bool:
        held = super().acquire()
        crash_point("journal.lock")
        return held


class IndexedRandomSampler(optuna.samplers.RandomSampler):
    """Optuna's random sampler with trial i's point drawn from a generator seeded by (seed, i), so
    the point does not depend on how many points were asked before (a resumed driver asks again)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.base_seed = seed

    def pin(self, index: int) -> None:
        from optuna.samplers._lazy_random_state import LazyRandomState

        self._rng = LazyRandomState(zlib.crc32(f"{self.base_seed}:{index}".encode()))


class IndexedQMCSampler(optuna.samplers.QMCSampler):
    """Optuna's scrambled Sobol sampler with trial i (i >= 1; trial 0 is the canonical point) taking
    sequence point i - 1, whatever the study's sample counter says (asks lost to a kill advance it)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed, scramble=True, warn_independent_sampling=False,
                         warn_asynchronous_seeding=False, independent_sampler=IndexedRandomSampler(seed))
        self.sample_id = 0

    def pin(self, index: int) -> None:
        self.sample_id = max(0, index - 1)
        self._independent_sampler.pin(index)

    def _find_sample_id(self, study, search_space) -> int:  # Optuna's counter, replaced by the index
        return self.sample_id


SAMPLERS = {
    # constant_liar only for populations: their K points are asked before any is told, and the liar
    # keeps TPE from proposing K near-copies. Single trials keep the plain sampler (same samples as before).
    "tpe": lambda seed, batched=False: optuna.samplers.TPESampler(seed=seed, constant_liar=batched),
    "qmc": lambda seed, batched=False: IndexedQMCSampler(seed),
    "random": lambda seed, batched=False: IndexedRandomSampler(seed),
}
"""Sampler name -> factory of a seeded Optuna sampler (``batched``: for populations). Every pair gets
its own, with the same seed."""


@dataclass(frozen=True)
class PairPlan:
    """What the searcher needs to propose trials for one (workload, strategy) pair.

    ``base`` is the tune trial config without ``hparams`` (workload, options, strategy, seed,
    epochs, stage, data_dir, ...); ``space`` the searched table; ``canonical`` trial 0's point;
    ``seed_base`` the seed run config without ``hparams`` and ``seed`` (None: no seed stage);
    ``population`` how many runs of the pair one Tune trial trains (``trainables.population``);
    ``fixed`` the ``(run, sweep)`` configs of seed runs fixed in advance, in place of the best tune
    trial's (a reproduction, which tunes nothing); ``sampler_seed`` its study's sampler seed (None: the
    searcher's); ``seed_offset`` added to its seed runs' seeds (a tuning study's own seeds); ``group`` the
    pair key that its studies share (None: a one-study pair), whose seed runs are queued together once every
    study has chosen, so they fill populations across studies; ``study`` its index among them.
    """

    key: str
    base: Mapping[str, Any]
    space: Mapping[str, ss.Range]
    canonical: Mapping[str, Any]
    seed_base: Mapping[str, Any] | None = None
    population: int = 1
    fixed: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...] = ()
    sampler_seed: int | None = None
    seed_offset: int = 0
    group: str | None = None
    study: int = 0


def study_plan(first: PairPlan, study: int) -> PairPlan:
    """Study ``study`` of a multi-study pair, from its study 0 (docs/PROTOCOL.md, "Tuning studies"): sampler
    seed and tune seed + ``study`` (the same for every strategy), its own validation split (the run config's
    ``study``), seed runs ``STUDY_SEED_STRIDE * study + 0..``. Study 0's configs are a one-study sweep's."""
    own = {"study": study} if study else {}
    base = {k: v for k, v in first.base.items() if k != "study"}
    return replace(first, key=f"{first.group}{STUDY_MARK}{study}", base={**base, "seed": base["seed"] + study, **own},
                   sampler_seed=(first.sampler_seed or 0) + study, seed_offset=STUDY_SEED_STRIDE * study, study=study)


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


def _score(history: list[Mapping[str, Any]], final: Mapping[str, Any] | None, error: bool,
           selection: str) -> float | None:
    """What a finished tune run tells its study: its ``objective`` (None: failed, or scored nothing)."""
    if error:
        return None
    value = objective(sorted(history, key=lambda h: h.get("epoch") or 0), selection)
    if value is None and final:
        value = objective([final], selection)
    return value


class PairSearcher(Searcher):
    """Round-robin over per-pair Optuna studies (see the module docstring)."""

    def __init__(self, plans: list[PairPlan], trials: int, sampler: str, sampler_seed: int,
                 journal_path: str, selection: str = "final", seeds: int = 0,
                 record_root: str | None = None, rounds: Rounds | StudyRounds | None = None) -> None:
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
        self.record_root = record_root  # named in each config, so a trial finds its record checkpoint
        self.issued = {k: 0 for k in self.order}
        # The Tune trials a unit's tune stage still has to give out, each a chunk of (key, index) slots: a
        # one-study pair's unit is its key, its chunks ``population`` consecutive indices; a multi-study
        # pair's unit is its group, whose chunks take study j's trial t beside study j+1's (its studies train
        # together). Chunks are fixed by the plan, so a resumed trial trains exactly the runs it did before.
        self.unit_of = {p.key: p.group or p.key for p in plans}
        self.units = list(dict.fromkeys(self.unit_of.values()))
        self.todo: dict[str, list[tuple[tuple[str, int], ...]]] = {
            u: self._chunks([p.key for p in plans if self.unit_of[p.key] == u]) for u in self.units}
        self.again: dict[str, dict[int, dict]] = {k: {} for k in self.order}  # index -> point asked before
        self.cursor = 0
        self.live: dict[str, _Live] = {}  # tune runs waited on, by run id (trial id or member id)
        self.populations: dict[str, list[str]] = {}  # Tune trial id -> the run ids it trains
        self.seeds = seeds
        self.finished: dict[str, list[tuple[float | None, int, dict]]] = {k: [] for k in self.order}
        self.pending: list[dict] = []  # seed run configs not given out yet
        self.queued: set[str] = set()  # record keys of the seed trials queued (the same seeds are asked once)
        # The selection design (None: a fixed one): ``seeds`` is then its first stage, and the seeds
        # after it come from ``rounds`` as seed runs end; over studies (``rounds.unit == "studies"``), every
        # study's seeds are fixed and the studies after the first stage come from ``rounds``. The seed
        # trials given out, by Tune trial id.
        self.rounds = rounds
        self.seed_trials: dict[str, list[tuple[str, int]]] = {}
        self.seed_results: dict[str, list[dict]] = {}  # their results so far (selection design only)
        self.chosen: dict[str, dict] = {}  # pair -> its best tune trial (what its seed runs retrain)
        self.done_keys: set[str] = set()  # record keys of trials finished before this driver
        self._studies: dict[str, optuna.Study] = {}  # a reproduction's fixed runs are queued by ``rebuild``
        self.groups: dict[str, list[str]] = {}  # a multi-study pair -> its studies' keys, study order
        for p in plans:
            if p.group is not None:
                self.groups.setdefault(p.group, []).append(p.key)
        # Studies added together (the plan's, then each round the selection over studies asks for) tune
        # together and queue their seed runs together: key -> the keys of its cohort.
        self.cohort: dict[str, tuple[str, ...]] = {k: tuple(keys) for keys in self.groups.values() for k in keys}
        self.grouped: dict[tuple[str, ...], dict[str, list[tuple[dict, dict]]]] = {}  # cohort -> key -> seed runs held

    def _chunks(self, keys: list[str]) -> list[tuple[tuple[str, int], ...]]:
        """The Tune trials of ``keys`` (one unit's), in order: their (key, trial index) slots, trial-major, in
        populations."""
        slots = [(key, t) for t in range(self.trials) for key in keys]
        size = self.plans[keys[0]].population
        return [tuple(slots[i:i + size]) for i in range(0, len(slots), size)]

    def add_studies(self, group: str, studies: range) -> list[str]:
        """Add studies ``studies`` of multi-study pair ``group`` (those it lacks) as one cohort: their tune
        trials go to the end of the pair's todo, study j's trial t beside study j+1's; return their keys.
        The chunks depend only on the cohort, so a resumed driver that asks for it again gets the same."""
        first = self.plans[self.groups[group][0]]
        new = [study_plan(first, j) for j in studies if f"{group}{STUDY_MARK}{j}" not in self.plans]
        if not new:
            return []
        for p in new:
            self.plans[p.key] = p
            self.order.append(p.key)
            self.unit_of[p.key] = group
            self.issued[p.key], self.again[p.key], self.finished[p.key] = 0, {}, []
            self.groups[group].append(p.key)
            self.cohort[p.key] = tuple(q.key for q in new)
        self.todo[group].extend(self._chunks([p.key for p in new]))
        return [p.key for p in new]

    # -- studies ---------------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_studies"] = {}  # rebuilt from the journal file; storages hold locks and file handles
        return state

    def _storage(self) -> JournalStorage:
        os.makedirs(os.path.dirname(os.path.abspath(self.journal_path)), exist_ok=True)
        return JournalStorage(JournalFileBackend(self.journal_path, _JournalLock(self.journal_path)))

    def study(self, key: str) -> optuna.Study:
        """The pair's study, created on first use (its trial 0, the canonical point, is enqueued
        when that trial is proposed)."""
        if key not in self._studies:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._studies[key] = optuna.create_study(
                    study_name=key, storage=self._storage(), direction="maximize",
                    sampler=SAMPLERS[self.sampler](self._sampler_seed(key), self.plans[key].population > 1),
                    load_if_exists=True,
                )
            crash_point("journal.create")
        return self._studies[key]

    def _sampler_seed(self, key: str) -> int:
        seed = self.plans[key].sampler_seed
        return self.sampler_seed if seed is None else seed

    def _ask(self, key: str, index: int, point: Mapping[str, Any] | None = None) -> tuple[optuna.Trial, dict]:
        """Ask the pair's study for trial ``index``: ``point`` if given (asked before a kill, or
        replayed), the canonical point for trial 0, else the sampler's (pinned to the index)."""
        plan, study = self.plans[key], self.study(key)
        if point is None:
            point = self.again[key].pop(index, None)
        if point is None and index == 0:
            point = dict(plan.canonical)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if point is not None:
                study.enqueue_trial(dict(point))  # a kill before the ask leaves it WAITING: see _replay_study
                crash_point("journal.enqueue")
            if hasattr(study.sampler, "pin"):
                study.sampler.pin(index)
            trial = study.ask()
            hparams = ss.define_by_run(plan.space)(trial)
        crash_point("journal.ask")
        trial.set_user_attr("trial_index", index)  # last: a trial without it was never fully asked
        return trial, hparams

    # -- Searcher API ----------------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        return True  # metric and mode are fixed: validation accuracy, maximised

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(len(self.units)):
            unit = self.units[self.cursor % len(self.units)]
            self.cursor += 1
            if self.todo[unit]:
                return self._propose(trial_id, unit)
        if self.pending:
            config = self.pending.pop(0)
            self.seed_trials[trial_id] = [(meta["pair"], meta["trial_index"]) for _, meta in trial_members(config)]
            return config
        if self.seeds and self.live:
            return None  # the seed runs of the pairs still tuning come when their trials end
        if self.rounds is not None and self.seed_trials and not self.rounds.stopped():
            return None  # the next round's seeds depend on the seed runs still running
        return Searcher.FINISHED

    def _propose(self, trial_id: str, unit: str) -> dict:
        """The unit's next chunk of points (``population`` of them, fewer at the end of its budget), asked at once."""
        chunk = self.todo[unit].pop(0)
        ids = run_ids(trial_id, len(chunk))
        runs, metas = [], []
        for run_id, (key, index) in zip(ids, chunk, strict=True):
            plan = self.plans[key]
            trial, hparams = self._ask(key, index)
            self.issued[key] += 1
            canonical = index == 0 and hparams == dict(plan.canonical)
            self.live[run_id] = _Live(key, trial.number, index, dict(hparams), canonical)
            runs.append({**plan.base, "hparams": hparams})
            metas.append({"pair": key, "trial_index": index, "optuna_number": trial.number, "canonical": canonical})
        self.populations[trial_id] = ids
        return self._tagged(trial_config(runs, metas))

    def _tuning(self, key: str) -> bool:
        """Whether a tune trial of ``key`` is still to be given out or waited on."""
        return any(k == key for chunk in self.todo[self.unit_of[key]] for k, _ in chunk) or \
            any(t.key == key for t in self.live.values())

    def _tagged(self, config: dict) -> dict:
        if self.record_root is not None:
            config["sweep"]["record"] = self.record_root
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # A restarted trial reports its epochs again: keep one dict per epoch, the latest.
        epoch = result.get("epoch")
        ids = self.populations.get(trial_id)
        if trial_id in self.seed_trials and self.rounds is not None:
            self.seed_results.setdefault(trial_id, []).append(result)  # a member that diverged stops reporting
        if not ids:
            return  # a seed run's result: nothing to tell a study
        for run_id, m in zip(ids, member_metrics(result, len(ids)), strict=True):
            live = self.live.get(run_id)
            if live is None or m is None:  # a seed run, or a member frozen earlier
                continue
            live.history = [h for h in live.history if h.get("epoch") != epoch]
            live.history.append({"epoch": epoch, VAL: m.get(VAL)})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        seeds = self.seed_trials.pop(trial_id, None)
        if seeds is not None and self.rounds is not None:
            self._scored(seeds, member_finals([*self.seed_results.pop(trial_id, []), result], len(seeds)), error)
        ids = self.populations.pop(trial_id, None)
        if not ids:
            return  # a seed run
        lives = [(run_id, self.live.pop(run_id)) for run_id in ids if run_id in self.live]
        last = dict(zip(ids, member_metrics(result, len(ids)), strict=True))
        for run_id, live in lives:
            value = _score(live.history, last[run_id], error, self.selection)
            self._tell(live.key, live.number, value)
            self._finished(live.key, value, live.index, run_id, live.hparams, live.canonical)
        for key in dict.fromkeys(live.key for _, live in lives):
            self._maybe_seed(key)

    def _tell(self, key: str, number: int, value: float | None) -> None:
        study = self.study(key)
        if value is None:
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        else:
            study.tell(number, value, skip_if_finished=True)
        crash_point("journal.tell")

    def _finished(self, key: str, value: float | None, index: int, run_id: str, hparams: Mapping[str, Any],
                  canonical: bool) -> None:
        self.finished[key].append((value, index, {"trial_id": run_id, "trial_index": index,
                                                  "hparams": dict(hparams), "canonical": canonical}))

    def _maybe_seed(self, key: str) -> None:
        """Queue the pair's seed runs once its last tune trial has ended."""
        if self.seeds and not self._tuning(key) and key not in self.chosen:
            self._queue_seed_runs(key)

    def _queue_seed_runs(self, key: str) -> None:
        """Queue the pair's seed runs: its best tune trial retrained with seeds 0..seeds-1 (or the
        plan's fixed runs), in populations of the pair's size (none when every tune trial errored or
        scored nothing; the budget table then says so). Trials a previous driver finished are left out."""
        plan = self.plans[key]
        if plan.fixed:
            self.chosen[key] = {}
            self._queue(key, [(dict(run), dict(meta)) for run, meta in plan.fixed])
            return
        best = best_trial(self.finished[key])
        self.chosen[key] = best or {}
        if best is not None:
            self._queue_seeds(key, range(self.seeds))
        elif plan.group is not None:
            self._queue(key, [])  # a study with nothing to retrain must not hold back its pair's other studies
        if self.rounds is not None:
            self.rounds.tuned(key, chosen=best is not None)
            self._select(self.rounds.workload(key))

    def _queue_seeds(self, key: str, seeds: range) -> None:
        """Queue the pair's best configuration retrained with ``seeds`` (shifted by its study's offset)."""
        plan, best = self.plans[key], self.chosen[key]
        study = {"study": plan.study} if plan.group is not None else {}
        self._queue(key, [({**plan.seed_base, "seed": seed, "hparams": dict(best["hparams"])},
                           {"pair": key, "trial_index": seed, "canonical": best["canonical"],
                            "selected_trial": best["trial_id"], "selected_index": best["trial_index"], **study})
                          for seed in (plan.seed_offset + s for s in seeds)])

    def _queue(self, key: str, runs: list[tuple[dict, dict]]) -> None:
        """Queue ``runs`` in populations of the pair's size, each Tune trial once (not one a previous
        driver finished, nor one already queued)."""
        from sweeps.record.durable import trial_key

        population, group = self.plans[key].population, self.plans[key].group
        if group is not None:  # a seed run does not depend on its study's split: the studies share populations
            cohort = self.cohort[key]
            held = self.grouped.setdefault(cohort, {})
            held[key] = runs
            if len(held) < len(cohort):
                return
            runs = [run for k in cohort for run in held[k]]  # study order: the same chunks on resume
        for start in range(0, len(runs), population):
            chunk = runs[start:start + population]
            config = self._tagged(trial_config([r for r, _ in chunk], [m for _, m in chunk]))
            name = trial_key(config)
            if name not in self.done_keys and name not in self.queued:
                self.pending.append(config)
            self.queued.add(name)

    # -- the selection design ------------------------------------------------------------------

    def _scored(self, seeds: list[tuple[str, int]], finals: list[dict | None], error: bool, ask: bool = True) -> None:
        """Tell ``rounds`` the final test accuracy (percent) of each of a seed trial's runs, then ask it."""
        for (key, seed), m in zip(seeds, finals, strict=True):
            value = None if error or m is None or m.get(TEST) is None else 100.0 * float(m[TEST])
            self.rounds.scored(key, seed, value)
        if not ask:
            return
        for workload in dict.fromkeys(self.rounds.workload(key) for key, _ in seeds):
            self._select(workload)

    def _select(self, workload: str) -> None:
        """Queue the seeds (or add the studies) the procedure asks for next, and write its decision to the record."""
        for key, asked in self.rounds.ask(workload):
            if self.rounds.unit == "studies":
                self.add_studies(key, asked)
            else:
                self._queue_seeds(key, asked)
        if self.record_root is not None and self.rounds.workloads[workload].decision is not None:
            from sweeps.record.storage import SweepDir

            SweepDir(self.record_root).write_text(f"record/selection/{workload}.json", self.rounds.record(workload),
                                                  point="selection")

    def remaining(self) -> int:
        """Tune trials still to run, seed trials of pairs still tuning included (upper bound; with the
        selection design, every round up to its cap for each pair while any procedure goes on)."""
        seeds = 0
        for unit in self.units:  # a unit's seed runs train in populations together (a group's studies too)
            keys = [k for k in self.order if self.unit_of[k] == unit and not self.plans[k].fixed]
            if keys and self.todo[unit]:
                seeds += -(-self.seeds * len(keys) // self.plans[keys[0]].population)
        if self.rounds is not None and not self.rounds.stopped() and self.rounds.unit == "studies":
            # Every study up to the cap, for each pair: its tune and seed runs, each as a trial of its own.
            cap = self.rounds.settings.max_seeds
            seeds += sum((cap - len(keys)) * (self.trials + self.seeds) for keys in self.groups.values())
        elif self.rounds is not None and not self.rounds.stopped():
            s = self.rounds.settings
            rounds = -(-(s.max_seeds or MAX_EVAL_SEEDS) - s.first_seeds) // s.batch
            seeds += sum(rounds * -(-s.batch // self.plans[k].population) for k in self.order)
        return sum(len(t) for t in self.todo.values()) + len(self.pending) + seeds

    # -- resume ----------------------------------------------------------------------------------

    def rebuild(self, finished: Mapping[str, Any]) -> list[str]:
        """Take up a sweep from its durable record: ``finished`` maps ``sweeps.record.durable.trial_key`` to
        the finished trials' ``RunRecord`` (config, history, error).

        Each finished tune run is told to its study (or replayed into it, when the journal lost it);
        a study trial the journal shows running is failed, and its point is asked again for the same
        index; the Tune trials left are those whose record key has no finished record; pairs done
        tuning get their seed runs queued again from their finished tune runs.
        """
        self.done_keys = set(finished)
        if self.rounds is not None:  # the scores first (replayed before any decision): they say which studies exist
            for run in finished.values():
                members = trial_members(run.config)
                if members[0][0]["stage"] == SEED and all(self._known(m["pair"]) for _, m in members):
                    self._scored([(m["pair"], m["trial_index"]) for _, m in members],
                                 member_finals(run.history, len(members)), run.error is not None, ask=False)
            if self.rounds.unit == "studies":
                for workload in self.rounds.workloads:
                    for group, asked in self.rounds.ask(workload):
                        self.add_studies(group, asked)
        notes = self._open_journal() if self.trials else []  # a reproduction tunes nothing: no studies
        log = logging.getLogger(__name__)
        by_pair: dict[str, list] = {k: [] for k in self.order}
        started = set()  # the first (key, index) slot of every finished tune trial: the chunks not to give again
        for run in finished.values():
            members = trial_members(run.config)
            if members[0][0]["stage"] == TUNE and members[0][1]["pair"] in by_pair:
                started.add((members[0][1]["pair"], members[0][1]["trial_index"]))
                for key in dict.fromkeys(m["pair"] for _, m in members):  # a group's chunk holds several studies
                    by_pair[key].append(run)
        for unit in self.units:
            self.todo[unit] = [chunk for chunk in self.todo[unit] if chunk[0] not in started]
        for key in self.order:
            if self.trials:  # a reproduction tunes nothing: no study to replay
                self._replay_study(key, by_pair[key], log)
            self._maybe_seed(key)
        return notes

    def _known(self, key: str) -> bool:
        """Whether ``key`` is a pair (or study) of this searcher, or a study the selection over studies may add."""
        studies = self.rounds is not None and self.rounds.unit == "studies"
        return key in self.plans or (studies and self.rounds.knows(key))

    def _replay_study(self, key: str, runs: list, log: logging.Logger) -> None:
        """Bring pair ``key``'s study in line with its finished tune ``runs`` (told, or replayed when the
        journal lost them), fail the trials its dead driver left running, and keep the points asked
        for the tune trials still to run, so they are asked again for the same index."""
        study = self.study(key)
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            # Enqueued by a driver killed before its ask: asked again, it would be the next ask's point.
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        asked = {t.user_attrs["trial_index"]: t for t in study.get_trials(deepcopy=False)
                 if "trial_index" in t.user_attrs}  # the latest ask of each index
        for run in sorted(runs, key=lambda r: trial_members(r.config)[0][1]["trial_index"]):
            members = trial_members(run.config)
            per_epoch = [member_metrics(h, len(members)) for h in run.history]
            for i, ((cfg, meta), run_id) in enumerate(
                    zip(members, run_ids(run.trial_id, len(members)), strict=True)):
                if meta["pair"] != key:
                    continue  # another study's member of the same population
                index, own = meta["trial_index"], [row[i] for row in per_epoch if row[i]]
                value = _score([{"epoch": h.get("epoch"), VAL: h.get(VAL)} for h in own],
                               own[-1] if own else None, run.error is not None, self.selection)
                t = asked.get(index)
                if t is not None and t.params == cfg["hparams"] and t.state == TrialState.RUNNING:
                    self._tell(key, t.number, value)  # the driver died before it told the study
                elif t is None or t.params != cfg["hparams"] or (t.state == TrialState.FAIL) != (value is None):
                    log.info("replaying %s trial %d into its study", key, index)
                    t, _ = self._ask(key, index, cfg["hparams"])
                    self._tell(key, t.number, value)
                self.issued[key] += 1
                self._finished(key, value, index, run_id, cfg["hparams"], bool(meta["canonical"]))
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)  # its driver died
        for chunk in self.todo[self.unit_of[key]]:  # what ``rebuild`` left to give out
            for k, index in chunk:
                if k == key and index in asked and asked[index].params:
                    self.again[key][index] = dict(asked[index].params)

    def _open_journal(self) -> list[str]:
        """Open every pair's study before a resume; return what had to be repaired, in words.

        Optuna's lock file of a driver killed mid-append is removed at once (Optuna would wait 30 s
        for it, its grace period): this driver holds the lease, so no other driver writes the journal.
        A torn last record (the driver died mid-append) is cut off, since Optuna would append after
        it; a journal Optuna cannot read is moved aside and the studies start empty, to be replayed
        from the finished runs (a sampler that learns, TPE, then has lost only the points of trials
        that were running, which are asked afresh)."""
        notes = []
        path = self.journal_path
        lock = path + ".lock"  # Optuna's JournalFileSymlinkLock, held by a driver that the lease proves gone
        if os.path.lexists(lock):
            os.unlink(lock)
            notes.append(f"{lock}: left by a driver killed mid-write; removed (the lease proves that driver gone)")
        for left in glob.glob(glob.escape(lock) + "*.rename"):  # a release cut short
            os.unlink(left)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
                notes.append(f"{path}: its last record was cut short (a kill mid-write) and is dropped")
        try:
            for key in self.order:
                self.study(key).get_trials(deepcopy=False)
        except Exception as err:  # noqa: BLE001 - whatever Optuna makes of a damaged file
            aside = f"{path}.unreadable-{int(time.time())}"
            os.replace(path, aside)
            self._studies = {}
            notes.append(f"{path} cannot be read ({type(err).__name__}: {err}); moved to {aside}; the studies "
                         "are rebuilt from the finished runs' results")
        return notes

    def save(self, checkpoint_path: str) -> None:
        """Tune snapshots its searcher with the experiment; that copy is a cache no resume reads."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
