"""The fixed design: every pair's chosen configuration is retrained with the same seeds, decided in advance."""

from __future__ import annotations

from sweeps.designs.base import Ask, SeedDesign

__all__ = ["FixedSeeds"]


class FixedSeeds(SeedDesign):
    """Seeds ``0..seeds-1`` of each pair's best tune trial, as soon as its tuning ends (``evaluation.seeds``)."""

    def __init__(self, seeds: int) -> None:
        self.seeds = seeds

    def tuned(self, key: str, chosen: bool) -> list[Ask]:
        return [Ask(key, range(self.seeds if chosen else 0))]
