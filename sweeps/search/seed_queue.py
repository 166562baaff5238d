"""The seed trials a sweep has queued and not given out yet, whatever seed design asked for them.

Each Tune trial is queued once (not one a previous driver finished, nor one already queued), in
populations of its pair's size; the studies of a multi-study pair that were added together (a cohort)
are held until every one of them has its runs, then queued together in study order, so their seed runs
share populations and a resumed driver forms the same trials.
"""

from __future__ import annotations

from collections.abc import Mapping

from sweeps.designs.plans import PairPlan
from sweeps.record.durable import trial_key
from vocab.members import trial_config

__all__ = ["SeedQueue", "tagged"]


def tagged(config: dict, record_root: str | None) -> dict:
    """``config`` naming the sweep's record, so its trial finds its record checkpoint."""
    if record_root is not None:
        config["sweep"]["record"] = record_root
    return config


class SeedQueue:
    """The seed trial configs waiting (``pending``) of the pairs ``plans`` (a dict the searcher extends)."""

    def __init__(self, plans: Mapping[str, PairPlan], record_root: str | None) -> None:
        self.plans, self.record_root = plans, record_root
        self.pending: list[dict] = []  # seed trial configs not given out yet
        self.queued: set[str] = set()  # record keys of the trials queued (the same seeds are asked once)
        self.done: set[str] = set()  # record keys of trials finished before this driver
        # A study's key -> the keys of the studies added with it (the plan's, then each cohort a design asks for).
        self.cohort = {k: tuple(q for q, o in plans.items() if o.group == p.group)
                       for k, p in plans.items() if p.group is not None}
        self.held: dict[tuple[str, ...], dict[str, list[tuple[dict, dict]]]] = {}  # cohort -> key -> its runs

    def retrain(self, key: str, best: Mapping[str, object], seeds: range) -> None:
        """Queue the pair's ``best`` tune trial retrained with ``seeds`` (shifted by its study's offset)."""
        plan = self.plans[key]
        study = {"study": plan.study} if plan.group is not None else {}
        self.put(key, [({**plan.seed_base, "seed": seed, "hparams": dict(best["hparams"])},
                        {"pair": key, "trial_index": seed, "canonical": best["canonical"],
                         "selected_trial": best["trial_id"], "selected_index": best["trial_index"], **study})
                       for seed in (plan.seed_offset + s for s in seeds)])

    def put(self, key: str, runs: list[tuple[dict, dict]]) -> None:
        """Queue pair ``key``'s seed ``runs`` ``(run config, meta)`` (none: its seed runs are settled)."""
        population, group = self.plans[key].population, self.plans[key].group
        if group is not None:  # a seed run does not depend on its study's split: the studies share populations
            cohort = self.cohort[key]
            held = self.held.setdefault(cohort, {})
            held[key] = runs
            if len(held) < len(cohort):
                return
            runs = [run for k in cohort for run in held[k]]  # study order: the same chunks on resume
        for start in range(0, len(runs), population):
            chunk = runs[start:start + population]
            config = tagged(trial_config([r for r, _ in chunk], [m for _, m in chunk]), self.record_root)
            name = trial_key(config)
            if name not in self.done and name not in self.queued:
                self.pending.append(config)
            self.queued.add(name)
