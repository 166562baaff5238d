"""A reproduction's design (``lrsweep reproduce``): no tuning, and seed runs fixed in advance by its plan."""

from __future__ import annotations

from collections.abc import Iterable

from sweeps.designs.base import Ask, SeedDesign
from sweeps.designs.plans import PairPlan

__all__ = ["Reproduction"]


class Reproduction(SeedDesign):
    """Each pair's ``PairPlan.fixed`` runs (the reference code's seeds), queued when its (empty) tuning ends."""

    def __init__(self, plans: Iterable[PairPlan]) -> None:
        self.runs = {p.key: p.fixed for p in plans}
        self.seeds = max((len(r) for r in self.runs.values()), default=0)

    def tuned(self, key: str, chosen: bool) -> list[Ask]:
        return [Ask(key, runs=self.runs[key])]
