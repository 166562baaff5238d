"""The 18 learning-rate strategies of STRATEGIES.md behind one registry (see docs/CONTRACTS.md).

    stepper = get_strategy("dals").build(layer_groups, {"lr": 0.01}, total_steps, steps_per_epoch)
    loss = stepper.step(closure)  # closure: zero grads, forward, backward, return the loss
"""

from strategies.dals import DALS
from strategies.lars import LARS
from strategies.registry import (
    HParam,
    Strategy,
    StrategyError,
    get_strategy,
    list_strategies,
    register_strategy,
)
from strategies.stepper import Stepper

__all__ = ["DALS", "LARS", "HParam", "Stepper", "Strategy", "StrategyError", "get_strategy", "list_strategies",
           "register_strategy"]
