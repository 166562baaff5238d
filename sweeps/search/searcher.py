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

What follows a pair's tuning is its seed design's (``sweeps.designs``): the searcher asks the design
what to train when a pair's tuning or a seed trial ends, writes what the design says was asked and why
to the record, and never asks which design it runs.

Several tuning studies per pair (``budget.studies``): each study is a key of its own (an Optuna study
``workload/strategy#study<j>`` with its sampler seed), and a pair's studies form a group that trains
together: a Tune trial of the group takes study j's trial t beside study j+1's (each member on its own
study's validation rows, ``trainables.population``), and once every study has chosen, the studies'
seed runs are queued together, in populations across studies. Under the selection design over studies
(``budget.studies: auto``, ``sweeps.designs.studies``) the studies after the first stage are added
during the sweep (``add_studies``), one cohort per round: the round's studies of a pair tune together and
queue their seed runs together. Which studies exist is a function of the decision, which ``rebuild``
replays from the record's seed runs before anything else, so a resumed driver has the same studies.

Persistence: the studies live in an Optuna ``JournalStorage`` file (``sweeps.search.journal``; one study per
pair, named by the pair; each study trial carries its ``trial_index``). Nothing else of this searcher is saved:
a resume builds a new one and ``rebuild``s it from the durable record (``sweeps.record.durable``): the
finished runs are told to their studies (replayed into a fresh study if the journal was lost), a
trial that was running is proposed again with the point the journal gave it, and the seed queue
is derived again from the finished tune runs. With the ``random`` and ``qmc`` samplers a pair's
trial i always gets the same point (``pin``), so a resumed sweep is the same experiment.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from ray.tune.search import Searcher

from sweeps.designs import Ask, FixedSeeds, SeedDesign, score_runs, seed_scores
from sweeps.designs.plans import (
    PairPlan,
    best_trial,
    chunks,
    objective,
    score,
    stage,
    study_plan,
    tune_runs,
    tuned_members,
)
from sweeps.record.storage import SweepDir
from sweeps.search.journal import StudyJournal
from sweeps.search.samplers import SAMPLERS, IndexedQMCSampler, IndexedRandomSampler
from sweeps.search.seed_queue import SeedQueue, tagged
from vocab.contracts import SEED, STAGE_METRIC, STUDY_MARK, TUNE
from vocab.members import member_finals, member_metrics, run_ids, trial_config, trial_members

VAL = STAGE_METRIC[TUNE]  # what a tune trial is ranked by

__all__ = ["SAMPLERS", "IndexedQMCSampler", "IndexedRandomSampler", "PairPlan", "PairSearcher", "best_trial",
           "objective", "study_plan"]


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
    """Round-robin over per-pair Optuna studies, then what the seed design asks (see the module docstring).
    ``design`` defaults to ``seeds`` fixed seeds of each pair's best configuration."""

    def __init__(self, plans: list[PairPlan], trials: int, sampler: str, sampler_seed: int, journal_path: str,
                 selection: str = "final", seeds: int = 0, sweep: SweepDir | None = None,
                 design: SeedDesign | None = None) -> None:
        # No metric for Tune to enforce: seed runs report test_accuracy, and the searcher reads
        # val_accuracy from tune trials' results itself.
        super().__init__(metric=None, mode="max")
        self.plans = {p.key: p for p in plans}
        self.order = [p.key for p in plans]
        self.trials, self.selection, self.design = trials, selection, design or FixedSeeds(seeds)
        self.journal = StudyJournal(journal_path, sampler, sampler_seed, self.plans)
        self.sweep = sweep  # the record's directory: the design's record files are written there
        # The Tune trials each unit (a pair, or a multi-study pair's group) still has to give out (``chunks``).
        self.unit_of = {p.key: p.group or p.key for p in plans}
        self.units = list(dict.fromkeys(self.unit_of.values()))
        self.todo = {u: chunks([p for p in plans if self.unit_of[p.key] == u], trials) for u in self.units}
        self.again: dict[str, dict[int, dict]] = defaultdict(dict)  # key -> index -> point asked before
        self.cursor = 0
        self.live: dict[str, _Live] = {}  # tune runs waited on, by run id (trial id or member id)
        self.populations: dict[str, list[str]] = {}  # Tune trial id -> the run ids it trains
        self.finished: dict[str, list[tuple[float | None, int, dict]]] = defaultdict(list)  # its tune runs'
        self.queue = SeedQueue(self.plans, sweep.root if sweep else None)  # configs name the record's root
        self.pending = self.queue.pending  # seed trial configs not given out yet
        self.seed_trials: dict[str, list[tuple[str, int]]] = {}  # Tune trial id -> its seed runs given out
        self.seed_results: dict[str, list[dict]] = {}  # their results so far
        self.chosen: dict[str, dict] = {}  # pair -> its best tune trial (what its seed runs retrain)

    def add_studies(self, group: str, studies: range) -> list[str]:
        """Add studies ``studies`` of multi-study pair ``group`` (those it lacks) as one cohort: their tune
        trials go to the end of the pair's todo, study j's trial t beside study j+1's; return their keys.
        The chunks depend only on the cohort, so a resumed driver that asks for it again gets the same."""
        first = self.plans[f"{group}{STUDY_MARK}0"]
        new = [study_plan(first, j) for j in studies if f"{group}{STUDY_MARK}{j}" not in self.plans]
        for p in new:
            self.plans[p.key], self.unit_of[p.key] = p, group
            self.order.append(p.key)
            self.queue.cohort[p.key] = tuple(q.key for q in new)
        self.todo[group].extend(chunks(new, self.trials))
        return [p.key for p in new]

    def study(self, key: str) -> optuna.Study:
        return self.journal.study(key)

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
        if self.design.seeds and self.live:
            return None  # the seed runs of the pairs still tuning come when their trials end
        if self.seed_trials and not self.design.stopped():
            return None  # what the design asks next depends on the seed runs still running
        return Searcher.FINISHED

    def _propose(self, trial_id: str, unit: str) -> dict:
        """The unit's next chunk of points (``population`` of them, fewer at the end of its budget), asked at once."""
        chunk = self.todo[unit].pop(0)
        ids = run_ids(trial_id, len(chunk))
        runs, metas = [], []
        for run_id, (key, index) in zip(ids, chunk, strict=True):
            plan = self.plans[key]
            trial, hparams = self.journal.ask(key, index, self.again[key].pop(index, None))
            canonical = index == 0 and hparams == dict(plan.canonical)
            self.live[run_id] = _Live(key, trial.number, index, dict(hparams), canonical)
            runs.append({**plan.base, "hparams": hparams})
            metas.append({"pair": key, "trial_index": index, "optuna_number": trial.number, "canonical": canonical})
        self.populations[trial_id] = ids
        return tagged(trial_config(runs, metas), self.queue.record_root)

    def _tuning(self, key: str) -> bool:
        """Whether a tune trial of ``key`` is still to be given out or waited on."""
        return any(k == key for chunk in self.todo[self.unit_of[key]] for k, _ in chunk) or \
            any(t.key == key for t in self.live.values())

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # A restarted trial reports its epochs again: keep one dict per epoch, the latest.
        epoch = result.get("epoch")
        ids = self.populations.get(trial_id)
        if trial_id in self.seed_trials:
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
        if seeds is not None:
            scores = score_runs(seeds, member_finals([*self.seed_results.pop(trial_id, []), result], len(seeds)), error)
            self._train(self.design.scored(scores), [key for key, _, _ in scores])
        ids = self.populations.pop(trial_id, None)
        if not ids:
            return  # a seed run
        lives = [(run_id, self.live.pop(run_id)) for run_id in ids if run_id in self.live]
        last = dict(zip(ids, member_metrics(result, len(ids)), strict=True))
        for run_id, live in lives:
            value = score(live.history, last[run_id], error, self.selection)
            self.journal.tell(live.key, live.number, value)
            self._finished(live.key, value, live.index, run_id, live.hparams, live.canonical)
        for key in dict.fromkeys(live.key for _, live in lives):
            self._maybe_seed(key)

    def _finished(self, key: str, value: float | None, index: int, run_id: str, hparams: Mapping[str, Any],
                  canonical: bool) -> None:
        self.finished[key].append((value, index, {"trial_id": run_id, "trial_index": index,
                                                  "hparams": dict(hparams), "canonical": canonical}))

    def _maybe_seed(self, key: str) -> None:
        """Once the pair's last tune trial has ended, its best tune trial is chosen and the design asked what
        follows (no best when every tune trial errored or scored nothing; the budget table then says so)."""
        if self.design.seeds and not self._tuning(key) and key not in self.chosen:
            best = best_trial(self.finished[key])
            self.chosen[key] = best or {}
            self._train(self.design.tuned(key, best is not None), [key])

    def _train(self, asks: list[Ask], keys: list[str]) -> None:
        """Queue what the design asks, then write to the record what it says was asked (by ``keys``) and why."""
        for ask in asks:
            if ask.studies is not None:
                self.add_studies(ask.key, ask.studies)
            elif ask.runs:
                self.queue.put(ask.key, [(dict(run), dict(meta)) for run, meta in ask.runs])
            else:
                self.queue.retrain(ask.key, self.chosen[ask.key], ask.seeds)
        if self.sweep is not None:
            for path, text in dict(filter(None, (self.design.record(k) for k in keys))).items():
                self.sweep.write_text(path, text, point="selection")

    def remaining(self) -> int:
        """Tune trials still to run, seed trials of pairs still tuning included, and what the design may still
        ask (an upper bound)."""
        seeds = 0
        for unit in self.units:  # a unit's seed runs train in populations together (a group's studies too)
            keys = [k for k in self.order if self.unit_of[k] == unit]
            if self.todo[unit]:
                seeds += -(-self.design.seeds * len(keys) // self.plans[keys[0]].population)
        seeds += self.design.further(self.plans, self.trials)
        return sum(len(t) for t in self.todo.values()) + len(self.pending) + seeds

    # -- resume ----------------------------------------------------------------------------------

    def rebuild(self, finished: Mapping[str, Any]) -> list[str]:
        """Take up a sweep from its durable record: ``finished`` maps ``sweeps.record.durable.trial_key`` to
        the finished trials' ``RunRecord`` (config, history, error).

        The design replays its decisions from the seed runs' scores first (they may say which studies
        exist); each study is brought in line with its finished tune runs (``StudyJournal.replay``); the Tune
        trials left are those with no finished record; pairs done tuning ask their design again.
        """
        self.queue.done = set(finished)
        self._train(self.design.rebuild(seed_scores(r) for r in finished.values() if stage(r) == SEED), [])
        notes = self.journal.repair(self.order) if self.trials else []  # a reproduction tunes nothing
        by_pair, started = tune_runs(finished.values(), self.order)
        for unit in self.units:
            self.todo[unit] = [chunk for chunk in self.todo[unit] if chunk[0] not in started]
        for key in self.order:
            if self.trials:  # a reproduction tunes nothing: no study to replay
                self._replay(key, by_pair[key])
            self._maybe_seed(key)
        return notes

    def _replay(self, key: str, runs: list) -> None:
        """Tell (or replay into) study ``key`` its finished tune runs, and keep the points asked for the tune
        trials still to run, so they are asked again for the same index."""
        members = [m for run in runs for m in tuned_members(run, key, self.selection)]
        asked = self.journal.replay(key, [(index, hparams, value) for _, index, hparams, _, value in members])
        for run_id, index, hparams, canonical, value in members:
            self._finished(key, value, index, run_id, hparams, canonical)
        for chunk in self.todo[self.unit_of[key]]:  # what ``rebuild`` left to give out
            for k, index in chunk:
                if k == key and index in asked:
                    self.again[key][index] = asked[index]

    def save(self, checkpoint_path: str) -> None:  # Tune's snapshot of the searcher: a cache no resume reads
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
