"""Hyperparameters: their declared ranges, and the one function that resolves what a trial trains with.

Torch-free, so that a sweep spec is validated without importing torch. The regime and the
workload's overrides are workload metadata; callers pass them in as data, so this package never
imports ``trainables``. Nor does it import ``strategies.registry``: it reads a strategy through the
``Described`` protocol below, so the registry depends on this module and never the other way.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from vocab.contracts import FINETUNE, REGIMES, SCRATCH

__all__ = ["FINETUNE_LR", "FINETUNE_WARMUP_FRAC", "REGIMES", "Described", "HParam", "StrategyError",
           "canonical", "resolve_hparams"]

FINETUNE_LR = MappingProxyType({"adam": 2e-5, "sgd": 1e-3, "dals": 1e-3})
FINETUNE_WARMUP_FRAC = 0.1


class StrategyError(ValueError):
    """An unknown strategy, regime or hyperparameter, or a value outside its range."""


@dataclass(frozen=True)
class HParam:
    """A tunable hyperparameter: its name, its allowed range and whether it is a float or an int."""

    name: str
    low: float
    high: float
    low_inclusive: bool = True
    high_inclusive: bool = True
    kind: str = "float"

    def describe(self) -> str:
        """The range as an interval, e.g. ``(0, 10]``, with ``int`` when only integers are allowed."""
        left, right = "[" if self.low_inclusive else "(", "]" if self.high_inclusive else ")"
        interval = f"{left}{self.low:g}, {self.high:g}{right}"
        return f"{interval} int" if self.kind == "int" else interval

    def contains(self, value: Any) -> bool:
        """True if ``value`` has the right kind (bools are neither) and lies in the range."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.kind == "int" and value != int(value):
            return False
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below


class Described(Protocol):
    """What resolution reads of a strategy (``strategies.registry.Strategy`` has it): its name for
    messages, its family for the regime's LR and the workload's overrides, its settings, ranges and
    fine-tune settings."""

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def defaults(self) -> Mapping[str, float]: ...

    @property
    def hparams(self) -> tuple[HParam, ...]: ...

    @property
    def finetune(self) -> Mapping[str, float]: ...


def canonical(strategy: Described, regime: str = SCRATCH) -> dict[str, Any]:
    """A fresh dict of the strategy's canonical settings; "finetune" swaps the LR (the family's, then the
    strategy's ``finetune`` settings) and adds the warmup fraction."""
    if regime not in REGIMES:
        raise StrategyError(f"strategy {strategy.name!r}: unknown regime {regime!r}; valid: {', '.join(REGIMES)}")
    config = dict(strategy.defaults)
    if regime == FINETUNE:
        config["lr"] = FINETUNE_LR[strategy.family]
        config.update(strategy.finetune)  # a strategy's own fine-tune settings (Prodigy keeps lr 1)
        config["ft_warmup_frac"] = FINETUNE_WARMUP_FRAC
    return config


def resolve_hparams(
    strategy: Described,
    regime: str = SCRATCH,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    sampled: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every hyperparameter a trial of ``strategy`` trains with, each checked against its ``HParam``.

    The canonical settings for ``regime``, then the workload's ``overrides`` for the strategy's
    family (``{family: {hparam: value}}``, e.g. CIFAR-10's SGD weight decay; names the strategy
    lacks are skipped), then the ``sampled`` values. Ints stay ints and the rest become floats;
    an unknown name or a value outside its range raises ``StrategyError``.
    """
    config = canonical(strategy, regime)
    family = (overrides or {}).get(strategy.family, {})
    config.update({name: value for name, value in family.items() if name in config})
    config.update(sampled or {})
    specs = {spec.name: spec for spec in strategy.hparams}
    for name, value in config.items():
        spec = specs.get(name)
        if spec is None:
            raise StrategyError(f"strategy {strategy.name!r}: unknown hyperparameter {name!r}; "
                                f"valid: {', '.join(specs)}")
        if not spec.contains(value):
            raise StrategyError(f"strategy {strategy.name!r}: hyperparameter {name!r} = {value!r} is outside "
                                f"{spec.describe()}")
        config[name] = int(value) if spec.kind == "int" else float(value)
    return config
