"""The interface every seed design answers: what to train once a pair's tuning or a seed trial ends.

The searcher (``sweeps.search.searcher.PairSearcher``) tunes every pair the same way; what follows a pair's
tuning is the design's: a fixed number of seeds of its best configuration (``FixedSeeds``), the runs a
reproduction fixes in advance (``Reproduction``), or as many seeds (``SeedSelection``) or tuning studies
(``StudySelection``) as a selection procedure asks for. The searcher asks each design the same few
questions, as Optuna asks each of its samplers, and never which design it runs. No Ray and no Optuna here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vocab.contracts import SEED, STAGE_METRIC
from vocab.members import member_finals, trial_members

if TYPE_CHECKING:
    from sweeps.designs.plans import PairPlan

TEST = STAGE_METRIC[SEED]  # what a design compares seed runs by

__all__ = ["Ask", "Score", "SeedDesign", "score_runs", "seed_scores"]

Score = tuple[str, int, "float | None"]
"""``(pair key, seed, final test accuracy in percent)`` of one seed run (None: it errored or scored nothing)."""


def score_runs(seeds: list[tuple[str, int]], finals: list[Mapping[str, Any] | None], error: bool) -> list[Score]:
    """The ``Score`` of each ``(pair key, seed)`` run of a seed trial, from its runs' last results ``finals``."""
    return [(key, seed, None if error or m is None or m.get(TEST) is None else 100.0 * float(m[TEST]))
            for (key, seed), m in zip(seeds, finals, strict=True)]


def seed_scores(run: Any) -> list[Score]:
    """The scores of a finished seed trial of the record (a ``sweeps.record.durable.RunRecord``)."""
    members = trial_members(run.config)
    return score_runs([(m["pair"], m["trial_index"]) for _, m in members],
                      member_finals(run.history, len(members)), run.error is not None)


@dataclass(frozen=True)
class Ask:
    """What a design asks the searcher to train: pair ``key``'s chosen configuration with ``seeds`` (shifted
    by its study's seed offset), or the seed runs ``runs`` fixed in advance, or, ``key`` being a multi-study
    pair, its tuning ``studies`` (those it lacks, as one cohort). An empty ask still tells the searcher that
    the pair's own seed runs are settled (a study with nothing to retrain must not hold back its cohort)."""

    key: str
    seeds: range = range(0)
    runs: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...] = ()
    studies: range | None = None


class SeedDesign(ABC):
    """A seed design: the questions the searcher asks it, and nothing of Ray, Optuna or the record's files.

    ``seeds`` is how many seed runs a chosen configuration is given as soon as its tuning ends (0: the sweep
    has no seed stage); the searcher waits for running tune trials while it is not 0.
    """

    seeds: int = 0

    @abstractmethod
    def tuned(self, key: str, chosen: bool) -> list[Ask]:
        """Pair ``key``'s tuning ended, with (``chosen``) or without a configuration to retrain: what to train now."""

    def scored(self, scores: list[Score]) -> list[Ask]:
        """A seed trial ended with ``scores``: what to train next. A design that never looks at scores asks nothing."""
        return []

    def rebuild(self, trials: Iterable[list[Score]]) -> list[Ask]:
        """Take up a resumed sweep from its finished seed trials' scores (before any tuning is told again):
        what was asked beyond the plan. Nothing, for a design that never looks at scores."""
        return []

    def record(self, key: str) -> tuple[str, str] | None:
        """``(path in the sweep, text)`` saying what pair ``key``'s workload was asked and why, or None (nothing
        to say yet, or a design that decides nothing)."""
        return None

    def stopped(self) -> bool:
        """Whether the design will ask for nothing more than what is queued (the searcher may then finish)."""
        return True

    def further(self, plans: Mapping[str, PairPlan], trials: int) -> int:
        """An upper bound on the Tune trials the design may still ask for beyond the first ``seeds``."""
        return 0
