"""The sweep's Optuna studies, one per pair (or tuning study), in one ``JournalStorage`` file.

``StudyJournal`` creates each study on first use with its seeded sampler (``sweeps.search.samplers``), asks it
for trial i (the canonical point for trial 0; a point given, when asked again after a kill or replayed;
else the sampler's, pinned to i), tells it results, and on resume repairs the file a killed driver left
(``repair``) and brings each study in line with the finished runs of the record (``replay``). Each
study trial carries its ``trial_index``; nothing but the journal file is saved.
"""

from __future__ import annotations

import glob
import logging
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import TrialState

import search_spaces as ss
from lrresults.crashpoints import crash_point
from sweeps.designs.plans import PairPlan
from sweeps.search.samplers import SAMPLERS

__all__ = ["StudyJournal"]


class _JournalLock(JournalFileSymlinkLock):
    """Optuna's default journal lock, with a crash point while it is held (a kill inside a journal write)."""

    def acquire(self) -> bool:
        held = super().acquire()
        crash_point("journal.lock")
        return held


class StudyJournal:
    """The studies of ``plans`` (a dict the searcher extends as studies are added) in the journal at ``path``."""

    def __init__(self, path: str, sampler: str, sampler_seed: int, plans: Mapping[str, PairPlan]) -> None:
        self.path, self.sampler, self.sampler_seed, self.plans = path, sampler, sampler_seed, plans
        self._studies: dict[str, optuna.Study] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_studies": {}}  # rebuilt from the file; storages hold locks and file handles

    def _storage(self) -> JournalStorage:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        return JournalStorage(JournalFileBackend(self.path, _JournalLock(self.path)))

    def study(self, key: str) -> optuna.Study:
        """The pair's study, created on first use (its trial 0, the canonical point, is enqueued
        when that trial is proposed)."""
        if key not in self._studies:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            plan = self.plans[key]
            seed = self.sampler_seed if plan.sampler_seed is None else plan.sampler_seed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._studies[key] = optuna.create_study(
                    study_name=key, storage=self._storage(), direction="maximize",
                    sampler=SAMPLERS[self.sampler](seed, plan.population > 1), load_if_exists=True)
            crash_point("journal.create")
        return self._studies[key]

    def ask(self, key: str, index: int, point: Mapping[str, Any] | None = None) -> tuple[optuna.Trial, dict]:
        """Ask the pair's study for trial ``index``: ``point`` if given (asked before a kill, or
        replayed), the canonical point for trial 0, else the sampler's (pinned to the index)."""
        plan, study = self.plans[key], self.study(key)
        if point is None and index == 0:
            point = dict(plan.canonical)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if point is not None:
                study.enqueue_trial(dict(point))  # a kill before the ask leaves it WAITING: see replay
                crash_point("journal.enqueue")
            if hasattr(study.sampler, "pin"):
                study.sampler.pin(index)
            trial = study.ask()
            hparams = ss.define_by_run(plan.space)(trial)
        crash_point("journal.ask")
        trial.set_user_attr("trial_index", index)  # last: a trial without it was never fully asked
        return trial, hparams

    def tell(self, key: str, number: int, value: float | None) -> None:
        study = self.study(key)
        if value is None:
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        else:
            study.tell(number, value, skip_if_finished=True)
        crash_point("journal.tell")

    def replay(self, key: str, finished: Iterable[tuple[int, Mapping[str, Any], float | None]]) -> dict[int, dict]:
        """Bring study ``key`` in line with its finished tune runs ``(trial index, hparams, score)`` (told, or
        replayed when the journal lost them) and fail the trials its dead driver left running; return the
        point last asked for each trial index, so a trial still to run is asked again with the same one."""
        study, log = self.study(key), logging.getLogger(__name__)
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            # Enqueued by a driver killed before its ask: asked again, it would be the next ask's point.
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        asked = {t.user_attrs["trial_index"]: t for t in study.get_trials(deepcopy=False)
                 if "trial_index" in t.user_attrs}  # the latest ask of each index
        for index, hparams, value in finished:
            t = asked.get(index)
            if t is not None and t.params == hparams and t.state == TrialState.RUNNING:
                self.tell(key, t.number, value)  # the driver died before it told the study
            elif t is None or t.params != hparams or (t.state == TrialState.FAIL) != (value is None):
                log.info("replaying %s trial %d into its study", key, index)
                t, _ = self.ask(key, index, hparams)
                self.tell(key, t.number, value)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)  # its driver died
        return {index: dict(t.params) for index, t in asked.items() if t.params}

    def repair(self, keys: Iterable[str]) -> list[str]:
        """Open the studies of ``keys`` before a resume; return what had to be repaired, in words.

        Optuna's lock file of a driver killed mid-append is removed at once (Optuna would wait 30 s
        for it, its grace period): this driver holds the lease, so no other driver writes the journal.
        A torn last record (the driver died mid-append) is cut off, since Optuna would append after
        it; a journal Optuna cannot read is moved aside and the studies start empty, to be replayed
        from the finished runs (a sampler that learns, TPE, then has lost only the points of trials
        that were running, which are asked afresh)."""
        notes = []
        path = self.path
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
            for key in keys:
                self.study(key).get_trials(deepcopy=False)
        except Exception as err:  # noqa: BLE001 - whatever Optuna makes of a damaged file
            aside = f"{path}.unreadable-{int(time.time())}"
            os.replace(path, aside)
            self._studies = {}
            notes.append(f"{path} cannot be read ({type(err).__name__}: {err}); moved to {aside}; the studies "
                         "are rebuilt from the finished runs' results")
        return notes
