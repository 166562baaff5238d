"""What the searcher proposes for each (workload, strategy) pair, and how a finished tune run is scored.

A ``PairPlan`` describes one pair (or one tuning study of a pair); ``best_trial`` picks the tune trial
its seed runs retrain; ``tuned_members`` reads a finished tune trial of the record back as the runs its
study was told. No Ray and no Optuna here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import search_spaces as ss
from sweeps.spec.model import STUDY_SEED_STRIDE
from vocab.contracts import STAGE_METRIC, STUDY_MARK, TUNE
from vocab.members import member_metrics, run_ids, trial_members

VAL = STAGE_METRIC[TUNE]  # what a tune trial is ranked by

__all__ = ["PairPlan", "best_trial", "chunks", "objective", "score", "stage", "study_plan", "tune_runs",
           "tuned_members"]


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


def chunks(plans: list[PairPlan], trials: int) -> list[tuple[tuple[str, int], ...]]:
    """The Tune trials of one unit's tune stage (``plans``: a one-study pair, or studies of a multi-study pair
    added together), in order: chunks of (key, trial index) slots, trial-major, in populations. A one-study
    pair's chunks are ``population`` consecutive indices; a multi-study pair's take study j's trial t beside
    study j+1's (its studies train together). Chunks are fixed by the plan, so a resumed trial trains exactly
    the runs it did before."""
    slots = [(p.key, t) for t in range(trials) for p in plans]
    size = plans[0].population if plans else 1  # no plans (studies asked again): no trials
    return [tuple(slots[i:i + size]) for i in range(0, len(slots), size)]


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


def score(history: list[Mapping[str, Any]], final: Mapping[str, Any] | None, error: bool,
           selection: str) -> float | None:
    """What a finished tune run tells its study: its ``objective`` (None: failed, or scored nothing)."""
    if error:
        return None
    value = objective(sorted(history, key=lambda h: h.get("epoch") or 0), selection)
    if value is None and final:
        value = objective([final], selection)
    return value


def tuned_members(run: Any, key: str, selection: str) -> list[tuple[str, int, dict, bool, float | None]]:
    """``(run id, trial index, hparams, canonical, score)`` of each run of study ``key`` that the finished
    tune trial ``run`` (a ``sweeps.record.durable.RunRecord``) trained; a population may hold other studies' runs."""
    members = trial_members(run.config)
    per_epoch = [member_metrics(h, len(members)) for h in run.history]
    out = []
    for i, ((cfg, meta), run_id) in enumerate(zip(members, run_ids(run.trial_id, len(members)), strict=True)):
        if meta["pair"] != key:
            continue  # another study's member of the same population
        own = [row[i] for row in per_epoch if row[i]]
        value = score([{"epoch": h.get("epoch"), VAL: h.get(VAL)} for h in own], own[-1] if own else None,
                      run.error is not None, selection)
        out.append((run_id, meta["trial_index"], cfg["hparams"], bool(meta["canonical"]), value))
    return out


def stage(run: Any) -> str:
    """The stage (tune or seed) of a finished trial of the record."""
    return trial_members(run.config)[0][0]["stage"]


def tune_runs(finished: Iterable[Any], keys: Iterable[str]) -> tuple[dict[str, list], set[tuple[str, int]]]:
    """The finished tune trials of the record by study key (``keys``; a group's trial holds several studies),
    in trial index order, and the first (key, index) slot of each: the Tune trials not to give out again."""
    by_pair: dict[str, list] = {k: [] for k in keys}
    started = set()
    for run in finished:
        members = trial_members(run.config)
        if members[0][0]["stage"] == TUNE and members[0][1]["pair"] in by_pair:
            started.add((members[0][1]["pair"], members[0][1]["trial_index"]))
            for key in dict.fromkeys(m["pair"] for _, m in members):
                by_pair[key].append(run)
    for runs in by_pair.values():
        runs.sort(key=lambda r: trial_members(r.config)[0][1]["trial_index"])
    return by_pair, started
