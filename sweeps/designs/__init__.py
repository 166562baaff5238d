"""Seed designs: what a sweep trains after each pair's tuning, behind one interface (``base.SeedDesign``).

``design_for`` is the one place that picks a sweep's design from its spec and plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sweeps.designs.base import Ask, Score, SeedDesign, score_runs, seed_scores
from sweeps.designs.fixed import FixedSeeds
from sweeps.designs.reproduction import Reproduction

if TYPE_CHECKING:
    from sweeps.designs.plans import PairPlan
    from sweeps.spec import Spec

__all__ = ["Ask", "FixedSeeds", "Reproduction", "Score", "SeedDesign", "SeedSelection", "StudySelection",
           "design_for", "score_runs", "seed_scores"]


def design_for(spec: Spec, plans: Sequence[PairPlan]) -> SeedDesign:
    """The design a sweep (or reproduction) runs: a plan with fixed runs is a reproduction's; else the spec's
    selection over seeds (``evaluation.seeds: auto``), over studies (``budget.studies: auto``), or fixed seeds."""
    from vocab.contracts import Pair

    if any(p.fixed for p in plans):
        return Reproduction(plans)
    pairs = {Pair(w.name, s).key: (w.name, s) for w, s in spec.pairs()}
    if spec.evaluation.adaptive:
        from sweeps.designs.selection import SeedSelection

        return SeedSelection(spec.evaluation.settings(), pairs, spec.evaluation.first_stage)
    if spec.budget.adaptive_studies:
        from sweeps.designs.studies import StudySelection

        return StudySelection(spec.budget.study_selection.settings(), pairs, int(spec.evaluation.seeds))
    return FixedSeeds(spec.evaluation.first_stage)


def __getattr__(name: str):
    # The selection designs import the statistics (lrstats.selection and .studies with scipy.special: about
    # 0.4 s), which a fixed-seed sweep never uses.
    if name in ("SeedSelection", "StudySelection"):
        from sweeps.designs import selection, studies

        return {"SeedSelection": selection.SeedSelection, "StudySelection": studies.StudySelection}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
