"""The selection design over seeds (``evaluation.seeds: auto``): Kim & Nelson's procedure asks, per
workload, which pairs get more seeds (``sweeps.designs.rounds.Rounds``, docs/SELECTION.md). ``Selection`` is
what it shares with the selection over studies (``sweeps.designs.studies``): a procedure replayed from
the scores, whose decision is written to ``record/selection/<workload>.json``."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping

from lrstats.selection import SelectionSettings
from sweeps.designs.base import Ask, Score, SeedDesign
from sweeps.designs.plans import PairPlan
from sweeps.designs.rounds import Rounds, StudyRounds
from sweeps.spec.model import MAX_EVAL_SEEDS

__all__ = ["SeedSelection", "Selection"]


class Selection(SeedDesign):
    """A design whose asks after the first ``seeds`` are a procedure's (``rounds``), replayed from the scores."""

    rounds: Rounds | StudyRounds

    @abstractmethod
    def asks(self, workload: str) -> list[Ask]:
        """What the workload's procedure asks for next (a subclass says in which unit)."""

    def tuned(self, key: str, chosen: bool) -> list[Ask]:
        self.rounds.tuned(key, chosen=chosen)
        return [Ask(key, range(self.seeds if chosen else 0)), *self.asks(self.rounds.workload(key))]

    def scored(self, scores: list[Score]) -> list[Ask]:
        for key, seed, value in scores:
            self.rounds.scored(key, seed, value)
        return [a for w in dict.fromkeys(self.rounds.workload(k) for k, _, _ in scores) for a in self.asks(w)]

    def rebuild(self, trials: Iterable[list[Score]]) -> list[Ask]:
        # Every score first: the decisions are replayed from them, so a resumed driver asks what the first did.
        for scores in trials:
            if all(self.knows(key) for key, _, _ in scores):
                for key, seed, value in scores:
                    self.rounds.scored(key, seed, value)
        return [a for w in self.rounds.workloads for a in self.asks(w)]

    @abstractmethod
    def knows(self, key: str) -> bool:
        """Whether ``key`` is one of the design's pairs (a seed run of another is not scored)."""

    def record(self, key: str) -> tuple[str, str] | None:
        workload = self.rounds.workload(key)
        if self.rounds.workloads[workload].decision is None:
            return None
        return f"record/selection/{workload}.json", self.rounds.record(workload)

    def stopped(self) -> bool:
        return self.rounds.stopped()


class SeedSelection(Selection):
    """Seeds ``0..seeds-1`` of every pair's best configuration (the first stage), then the seeds the
    workload's procedure asks for its pairs still in contention."""

    def __init__(self, settings: SelectionSettings, pairs: Mapping[str, tuple[str, str]], seeds: int) -> None:
        self.rounds, self.seeds = Rounds(settings, pairs), seeds

    def asks(self, workload: str) -> list[Ask]:
        return [Ask(key, seeds) for key, seeds in self.rounds.ask(workload)]

    def knows(self, key: str) -> bool:
        return key in self.rounds.workload_of

    def further(self, plans: Mapping[str, PairPlan], trials: int) -> int:
        # Every round up to the cap for each pair, while any procedure goes on.
        if self.stopped():
            return 0
        s = self.rounds.settings
        rounds = -(-(s.max_seeds or MAX_EVAL_SEEDS) - s.first_seeds) // s.batch
        return sum(rounds * -(-s.batch // p.population) for p in plans.values())
