"""The selection design over tuning studies (``budget.studies: auto``): every study's best configuration gets
the same seeds, and Kim & Nelson's procedure over study scores asks, per workload, which pairs get more
studies (``sweeps.designs.rounds.StudyRounds``, docs/PROTOCOL.md "Tuning studies")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from lrstats.selection import SelectionSettings
from sweeps.designs.base import Ask
from sweeps.designs.plans import PairPlan
from sweeps.designs.rounds import StudyRounds
from sweeps.designs.selection import Selection

__all__ = ["StudySelection"]


class StudySelection(Selection):
    """Seeds ``0..seeds-1`` of each study's best configuration; the studies after the first stage are the
    procedure's asks, each round's studies of a pair one cohort (they tune and retrain together)."""

    def __init__(self, settings: SelectionSettings, pairs: Mapping[str, tuple[str, str]], seeds: int) -> None:
        self.rounds, self.seeds = StudyRounds(settings, pairs, seeds), seeds

    def asks(self, workload: str) -> list[Ask]:
        return [Ask(group, studies=studies) for group, studies in self.rounds.ask(workload)]

    def knows(self, key: str) -> bool:
        return self.rounds.knows(key)

    def further(self, plans: Mapping[str, PairPlan], trials: int) -> int:
        # Every study up to the cap, for each pair: its tune and seed runs, each as a trial of its own.
        if self.stopped():
            return 0
        studies = Counter(p.group for p in plans.values() if p.group is not None)
        return sum((self.rounds.settings.max_seeds - n) * (trials + self.seeds) for n in studies.values())
