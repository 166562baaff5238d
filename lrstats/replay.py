"""The selection design replayed from per-seed scores: the one place that turns a workload's seed runs
into the series ``lrstats.selection.decide`` compares, for the driver (``sweeps.designs.rounds``), the
budget table and the report alike, so all three reach the same decision.

Pure functions, no I/O: a score is a seed run's final test accuracy in percent, None for a run that
errored (its pair leaves the procedure at that seed; a diverged run has a score and stays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lrstats.selection import Decision, SelectionSettings, decide

__all__ = ["Replay", "replay", "series"]


def series(scores: Mapping[str, Mapping[int, float | None]]) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each strategy's scores of seeds 0, 1, 2, ... up to its first missing seed, and the strategies
    left out because a seed run errored (strategy -> that seed)."""
    out, errored = {}, {}
    for name in sorted(scores):
        seeds, values = scores[name], []
        bad = [s for s, v in seeds.items() if v is None]
        if bad:
            errored[name] = min(bad)
            continue
        while len(values) in seeds:
            values.append(float(seeds[len(values)]))
        out[name] = values
    return out, errored


@dataclass(frozen=True)
class Replay:
    """One workload's selection, as the procedure decided it on the seed runs at hand."""

    decision: Decision | None  # None: no strategy had a seed run to compare
    errored: dict[str, int]  # strategies left out: a seed run errored (strategy -> seed)

    def seeds_asked(self, strategy: str) -> int | None:
        """The seeds the procedure gave ``strategy``: up to its elimination, or all it asked for a
        contender (None: the strategy was not in the procedure)."""
        d = self.decision
        if d is None or strategy in self.errored:
            return None
        if strategy in d.eliminated:
            return d.eliminated[strategy]
        return d.seeds_wanted if strategy in d.contenders else None


def replay(rows: Iterable[tuple[str, int, float | None]], settings: SelectionSettings,
           strategies: Iterable[str] = (), unit: str = "seeds") -> Replay:
    """The decision over ``rows`` of ``(strategy, seed, score)``: one workload's seed runs (or, ``unit``
    ``"studies"``, its study scores); each of ``strategies`` takes part even before its first one ends
    (the procedure waits for it)."""
    scores: dict[str, dict[int, float | None]] = {name: {} for name in strategies}
    for strategy, seed, score in rows:
        scores.setdefault(strategy, {})[int(seed)] = score
    values, errored = series(scores)
    return Replay(decide(values, settings, unit) if values else None, errored)
