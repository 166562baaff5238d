"""The bridge from the strategies and workloads registries to search spaces.

``search_spaces`` knows hyperparameters only by name; this module feeds it the canonical
configuration of a strategy *for a workload* (``strategies.resolve_hparams`` given the workload's
regime and overrides, which are workload metadata) and the strategy's ``HParam`` declarations, so
that a space is centred on what trial 0 actually trains with and never leaves what the Stepper
accepts. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping

import search_spaces as ss


def resolved_canonical(workload: str, options: Mapping, strategy: str) -> dict:
    """The strategy's canonical hyperparameters as the workload trains them (trial 0 of its study)."""
    from strategies import get_strategy, resolve_hparams
    from trainables import get_workload

    w = get_workload(workload)
    regime = w.regime_for(w.validate_options(dict(options)))
    return resolve_hparams(get_strategy(strategy), regime, w.family_overrides)


def default_space(workload: str, options: Mapping, strategy: str) -> dict[str, ss.Range]:
    """The width policy applied to the strategy's canonical values for this workload."""
    from strategies import get_strategy

    return ss.build_space(resolved_canonical(workload, options, strategy), get_strategy(strategy).hparams)


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
    spaces = {s: default_space(workload, options or {}, s) for s in names}
    return ss.markdown_table(spaces, canon)


def calibration_override(calibration: Mapping | None) -> dict[str, tuple[float, float]]:
    """A pair's calibration (``sweeps.engine.calibrate``) as a search-space override, ``{hparam: (low, high)}``
    (none without one)."""
    return {calibration["hparam"]: (calibration["low"], calibration["high"])} if calibration else {}
