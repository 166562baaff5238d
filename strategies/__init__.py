"""The 18 strategies of docs/STRATEGIES.md and six modern baselines behind one registry (docs/CONTRACTS.md).

    stepper = get_strategy("dals").build(layer_groups, {"lr": 0.01}, total_steps, steps_per_epoch)
    loss = stepper.step(closure)  # closure: zero grads, forward, backward, return the loss

Importing the package imports no torch (a spec is validated with the metadata alone); building a
Stepper, or reaching for ``DALS`` / ``LARS``, does.
"""

import importlib

from strategies import modern  # noqa: F401 - registers the six modern baselines, as a plugin does
from strategies.hparams import REGIMES, HParam, StrategyError, resolve_hparams
from strategies.registry import Strategy, get_strategy, list_strategies, register_strategy
from strategies.stepper import Stepper

__all__ = ["DALS", "LARS", "REGIMES", "HParam", "Stepper", "Strategy", "StrategyError", "get_strategy",
           "list_strategies", "register_strategy", "resolve_hparams"]

_TORCH_OPTIMIZERS = {"DALS": "strategies.dals", "LARS": "strategies.lars"}


def __getattr__(name: str):
    """``DALS`` and ``LARS`` on first use: they are torch optimizers."""
    if name in _TORCH_OPTIMIZERS:
        return getattr(importlib.import_module(_TORCH_OPTIMIZERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
