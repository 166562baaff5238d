"""The selection design's seed stage: which seeds each pair gets after the common first stage.

Per workload, Kim & Nelson's procedure (``lrstats.selection.decide``, a pure function of the
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
from sweeps.spec.model import STUDY_SEED_STRIDE
from vocab.contracts import STUDY_MARK

__all__ = ["Rounds", "StudiesAsked", "StudyRounds", "WorkloadSeeds", "WorkloadStudies", "decision_json",
           "studies_asked"]


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

    unit = "seeds"

    def workload(self, key: str) -> str:
        """The workload of pair ``key``."""
        return self.workload_of[key]

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


@dataclass(frozen=True)
class StudiesAsked:
    """Studies the procedure gives one strategy, and why (``studies_asked``)."""

    strategy: str
    studies: range
    why: str


def studies_asked(decision: Decision | None, strategies, first: int) -> list[StudiesAsked]:
    """Every study the study-level procedure has asked for so far, in the order asked: studies
    ``0..first-1`` of every strategy (the first stage), then after each screening at r studies, studies
    ``r..r'-1`` of each strategy still in contention (r' the next screening's count). A pure function of
    the decision, so a driver that replays the decision from the record asks for the same studies."""
    out = [StudiesAsked(s, range(first), "the first stage: every strategy") for s in sorted(strategies)]
    rounds = decision.rounds if decision is not None else ()
    for i, screened in enumerate(rounds):
        if i + 1 < len(rounds):
            end = rounds[i + 1].r
        elif not decision.stopped:
            end = decision.seeds_wanted
        else:
            break
        out += [StudiesAsked(s, range(screened.r, end), f"in contention after the screening at {screened.r} studies")
                for s in screened.contenders]
    return out


@dataclass
class WorkloadStudies:
    """One workload's strategies in the study-level selection design: each study's seed scores so far."""

    pairs: dict[str, str]  # pair key (the studies' group) -> strategy
    seeds: dict[tuple[str, int], dict[int, float | None]] = field(default_factory=dict)  # (strategy, study) -> ...
    empty: set[tuple[str, int]] = field(default_factory=set)  # studies whose tuning chose nothing
    decision: Decision | None = None
    errored: dict[str, int] = field(default_factory=dict)  # strategy -> the study that left it without a score

    def rows(self, per_study: int) -> list[tuple[str, int, float | None]]:
        """``(strategy, study, score)`` of every study with a score: the mean final test accuracy of its
        ``per_study`` seed runs, None when one errored or its tuning chose nothing (the strategy leaves)."""
        out = [(s, j, None) for s, j in sorted(self.empty)]
        for (s, j), by_seed in sorted(self.seeds.items()):
            if (s, j) in self.empty or len(by_seed) < per_study:
                continue
            values = [by_seed.get(i) for i in range(per_study)]
            out.append((s, j, None if None in values else sum(values) / per_study))
        return out


class StudyRounds:
    """The study-level selection design across a sweep's workloads (``budget.studies: auto``).

    The same interface as ``Rounds``, with the whole tuning study as the replicate: a study's score is the
    mean final test accuracy (pp) of its ``per_study`` seed runs, and Kim & Nelson's KN
    (``lrstats.studies.study_decide``: ``settings.first_seeds`` first-stage studies, ``batch`` studies per
    round, ``max_seeds`` the cap on studies) screens on those. ``ask`` returns every study asked so far
    (``studies_asked``), pair key by pair key; the searcher adds the ones it lacks. Nothing is stored as
    state: the decision is replayed from the study scores, so a resumed driver asks for the same studies.
    """

    unit = "studies"

    def __init__(self, settings: SelectionSettings, pairs: Mapping[str, tuple[str, str]], per_study: int) -> None:
        self.settings = settings
        self.per_study = per_study
        self.workloads: dict[str, WorkloadStudies] = {}
        self.group_of: dict[str, tuple[str, str]] = {}  # pair key -> (workload, strategy)
        for key, (workload, strategy) in pairs.items():
            self.workloads.setdefault(workload, WorkloadStudies({})).pairs[key] = strategy
            self.group_of[key] = (workload, strategy)

    def locate(self, key: str) -> tuple[str, str, int]:
        """``(workload, strategy, study)`` of study key ``workload/strategy#study<j>``."""
        group, _, j = key.partition(STUDY_MARK)
        return (*self.group_of[group], int(j or 0))

    def knows(self, key: str) -> bool:
        return key.partition(STUDY_MARK)[0] in self.group_of

    def workload(self, key: str) -> str:
        return self.locate(key)[0]

    def tuned(self, key: str, chosen: bool) -> None:
        """Study ``key`` ended its tuning; without a configuration to retrain it has no score."""
        workload, strategy, j = self.locate(key)
        if not chosen:
            self.workloads[workload].empty.add((strategy, j))

    def scored(self, key: str, seed: int, value: float | None) -> None:
        """Seed run ``seed`` (``STUDY_SEED_STRIDE * j + i``) of study ``key`` ended with ``value`` (pp; None: error)."""
        workload, strategy, j = self.locate(key)
        self.workloads[workload].seeds.setdefault((strategy, j), {})[seed - STUDY_SEED_STRIDE * j] = value

    def ask(self, workload: str) -> list[tuple[str, range]]:
        """Replay the procedure; return every ``(pair key, studies)`` it has asked for (idempotent)."""
        w = self.workloads[workload]
        result = replay(w.rows(self.per_study), self.settings, w.pairs.values(), unit=self.unit)
        w.decision, w.errored = result.decision, result.errored
        key_of = {s: k for k, s in w.pairs.items()}
        return [(key_of[a.strategy], a.studies) for a in self.asked(workload)]

    def asked(self, workload: str) -> list[StudiesAsked]:
        """The studies asked so far, with why (from the last replay)."""
        w = self.workloads[workload]
        return studies_asked(w.decision, w.pairs.values(), self.settings.first_seeds)

    def stopped(self) -> bool:
        """Whether every workload's procedure has stopped (or has no strategy left to select from)."""
        return all(set(w.errored) >= set(w.pairs.values()) or (w.decision is not None and w.decision.stopped)
                   for w in self.workloads.values())

    def record(self, workload: str) -> str:
        """``record/selection/<workload>.json``: the settings, the decision, the studies asked and why,
        the study scores, and the strategies left out."""
        w = self.workloads[workload]
        scores = {s: {} for s in sorted(w.pairs.values())}
        for s, j, v in w.rows(self.per_study):
            scores[s][j] = v
        return json.dumps({"workload": workload, "unit": "studies", "seeds_per_study": self.per_study,
                           "settings": asdict(self.settings), "decision": decision_json(w.decision),
                           "asked": [{"strategy": a.strategy, "studies": [a.studies.start, a.studies.stop],
                                      "why": a.why} for a in self.asked(workload)],
                           "study_scores": scores, "errored": w.errored}, indent=1, default=str)


def decision_json(decision: Decision | None) -> dict | None:
    """A decision as plain JSON (its rounds say which seeds were asked for and why)."""
    return None if decision is None else json.loads(json.dumps(asdict(decision), default=str))
