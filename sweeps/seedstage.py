"""The selection design's seed stage: which seeds each pair gets after the common first stage.

Per workload, Kim & Nelson's procedure (``reports.selection.decide``, a pure function of the
per-seed scores) is asked whenever a seed run ends. Every pair whose tuning ended with a best
configuration gets seeds ``0..first_seeds-1`` (common random numbers: the same seed numbers for
every pair); once every pair of the workload has them, the procedure screens, and the pairs still
in contention get seeds ``r..seeds_wanted-1``, until it stops. Nothing here is stored as state:
the decisions are replayed from the scores, so a resumed driver that rebuilds the scores from the
record asks for exactly the seeds the first one would have (``docs/SELECTION.md``). Each decision
is written to ``record/selection/<workload>.json`` so a reader can see which seeds were asked for
and why. No Ray and no torch here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from lrstats.replay import replay
from lrstats.selection import Decision, SelectionSettings

__all__ = ["Rounds", "WorkloadSeeds", "decision_json"]


@dataclass
class WorkloadSeeds:
    """One workload's pairs in the selection design: their scores so far, by seed."""

    pairs: dict[str, str]  # pair key -> strategy
    tuned: set[str] = field(default_factory=set)  # pairs whose tuning ended
    chosen: set[str] = field(default_factory=set)  # ... with a best configuration to retrain
    scores: dict[str, dict[int, float | None]] = field(default_factory=dict)  # pair -> seed -> score (None: error)
    decision: Decision | None = None
    errored: dict[str, int] = field(default_factory=dict)  # strategy -> the seed whose run errored

    def ready(self) -> bool:
        """Whether every pair has ended its tuning (the procedure compares all of them at once)."""
        return self.tuned == set(self.pairs)

    def rows(self) -> list[tuple[str, int, float | None]]:
        """``(strategy, seed, score)`` of every seed run of a pair with a configuration to retrain."""
        return [(self.pairs[k], seed, v) for k in sorted(self.chosen) for seed, v in self.scores.get(k, {}).items()]


class Rounds:
    """The seed stage of a selection sweep, across its workloads (see the module docstring)."""

    def __init__(self, settings: SelectionSettings, pairs: Mapping[str, tuple[str, str]]) -> None:
        self.settings = settings
        self.workloads: dict[str, WorkloadSeeds] = {}
        self.workload_of: dict[str, str] = {}
        for key, (workload, strategy) in pairs.items():
            self.workloads.setdefault(workload, WorkloadSeeds({})).pairs[key] = strategy
            self.workload_of[key] = workload

    def tuned(self, key: str, chosen: bool) -> None:
        """Pair ``key`` ended its tuning, with (``chosen``) or without a configuration to retrain."""
        w = self.workloads[self.workload_of[key]]
        w.tuned.add(key)
        if chosen:
            w.chosen.add(key)

    def scored(self, key: str, seed: int, value: float | None) -> None:
        """Seed ``seed`` of pair ``key`` ended with final test accuracy ``value`` in percent (None: an error)."""
        self.workloads[self.workload_of[key]].scores.setdefault(key, {})[seed] = value

    def ask(self, workload: str) -> list[tuple[str, range]]:
        """Ask the procedure; return the seeds its contenders need next, ``(pair key, seeds)`` (nothing
        while the workload is still tuning or the procedure has stopped)."""
        w = self.workloads[workload]
        if not w.ready() or (w.decision is not None and w.decision.stopped):
            return []
        result = replay(w.rows(), self.settings, [w.pairs[k] for k in w.chosen])
        w.errored = result.errored
        if result.decision is None:
            return []
        w.decision = result.decision
        if w.decision.stopped:
            return []
        by_strategy = {s: k for k, s in w.pairs.items()}
        start = w.decision.r if w.decision.rounds else 0  # nothing screened yet: the first stage
        return [(by_strategy[s], range(start, w.decision.seeds_wanted)) for s in w.decision.contenders]

    def stopped(self) -> bool:
        """Whether every workload's procedure has stopped (or has nothing to select from)."""
        return all(w.ready() and (w.chosen <= {k for k, s in w.pairs.items() if s in w.errored}
                                  or (w.decision is not None and w.decision.stopped)) for w in self.workloads.values())

    def record(self, workload: str) -> str:
        """``record/selection/<workload>.json``: the settings, the decision so far and the pairs left out."""
        w = self.workloads[workload]
        return json.dumps({"workload": workload, "settings": asdict(self.settings),
                           "decision": decision_json(w.decision), "errored": w.errored,
                           "not_selectable": sorted(set(w.pairs) - w.chosen)}, indent=1, default=str)


def decision_json(decision: Decision | None) -> dict | None:
    """A decision as plain JSON (its rounds say which seeds were asked for and why)."""
    return None if decision is None else json.loads(json.dumps(asdict(decision), default=str))
