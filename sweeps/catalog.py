"""The bridge from the strategies and workloads registries to search spaces.

``search_spaces`` knows hyperparameters only by name; this module feeds it the canonical
configuration of a strategy *for a workload* (regime plus workload overrides, through
``trainables.resolve_hparams``) and the strategy's allowed values, so that a space is centred on
what trial 0 actually trains with and never leaves what the Stepper accepts.
"""

from __future__ import annotations

from collections.abc import Mapping

import search_spaces as ss


def resolved_canonical(workload: str, options: Mapping, strategy: str) -> dict:
    """The strategy's canonical hyperparameters as the workload trains them (trial 0 of its study)."""
    from trainables import resolve_hparams

    return resolve_hparams(workload, strategy, None, dict(options))


def limits(strategy: str) -> ss.Limits:
    """``{hparam: (low, high, low_inclusive, high_inclusive)}`` from the strategy registry."""
    from strategies import get_strategy

    return {h.name: (h.low, h.high, h.low_inclusive, h.high_inclusive) for h in get_strategy(strategy).hparams}


def default_space(workload: str, options: Mapping, strategy: str) -> dict[str, ss.Range]:
    """The width policy applied to the strategy's canonical values for this workload."""
    return ss.build_space(resolved_canonical(workload, options, strategy), limits(strategy))


def space(workload: str, options: Mapping, strategy: str,
          overrides: Mapping[str, tuple[float, float]] | None = None) -> dict[str, ss.Range]:
    """The searched space of one (workload, strategy) pair, spec overrides applied."""
    return ss.narrow(default_space(workload, options, strategy), overrides or {})


def canonical_point(workload: str, options: Mapping, strategy: str,
                    overrides: Mapping[str, tuple[float, float]] | None = None) -> dict:
    """Trial 0 of the pair's study: the canonical values of the searched hparams."""
    return ss.canonical_point(space(workload, options, strategy, overrides),
                              resolved_canonical(workload, options, strategy))


def strategy_markdown(workload: str = "synthetic", options: Mapping | None = None) -> str:
    """The Markdown table of every registered strategy's searched ranges on ``workload``."""
    from strategies import list_strategies

    names = [s.name for s in list_strategies()]
    canon = {s: resolved_canonical(workload, options or {}, s) for s in names}
    spaces = {s: ss.build_space(canon[s], limits(s)) for s in names}
    return ss.markdown_table(spaces, canon)
