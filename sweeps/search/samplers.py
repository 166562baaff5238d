"""The seeded Optuna samplers a sweep's studies use, by name (``budget.sampler``).

``random`` and ``qmc`` give a study's trial i the same point however many points were asked before
(``pin``), so a resumed driver, which asks again, runs the same experiment.
"""

from __future__ import annotations

import zlib

import optuna

__all__ = ["SAMPLERS", "IndexedQMCSampler", "IndexedRandomSampler"]


class IndexedRandomSampler(optuna.samplers.RandomSampler):
    """Optuna's random sampler with trial i's point drawn from a generator seeded by (seed, i), so
    the point does not depend on how many points were asked before (a resumed driver asks again)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.base_seed = seed

    def pin(self, index: int) -> None:
        from optuna.samplers._lazy_random_state import LazyRandomState

        self._rng = LazyRandomState(zlib.crc32(f"{self.base_seed}:{index}".encode()))


class IndexedQMCSampler(optuna.samplers.QMCSampler):
    """Optuna's scrambled Sobol sampler with trial i (i >= 1; trial 0 is the canonical point) taking
    sequence point i - 1, whatever the study's sample counter says (asks lost to a kill advance it)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed, scramble=True, warn_independent_sampling=False,
                         warn_asynchronous_seeding=False, independent_sampler=IndexedRandomSampler(seed))
        self.sample_id = 0

    def pin(self, index: int) -> None:
        self.sample_id = max(0, index - 1)
        self._independent_sampler.pin(index)

    def _find_sample_id(self, study, search_space) -> int:  # Optuna's counter, replaced by the index
        return self.sample_id


SAMPLERS = {
    # constant_liar only for populations: their K points are asked before any is told, and the liar
    # keeps TPE from proposing K near-copies. Single trials keep the plain sampler (same samples as before).
    "tpe": lambda seed, batched=False: optuna.samplers.TPESampler(seed=seed, constant_liar=batched),
    "qmc": lambda seed, batched=False: IndexedQMCSampler(seed),
    "random": lambda seed, batched=False: IndexedRandomSampler(seed),
}
"""Sampler name -> factory of a seeded Optuna sampler (``batched``: for populations). Every pair gets
its own, with the same seed."""
