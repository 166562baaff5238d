"""Argument checks shared by the optimizers in this package: one message format,
``Invalid <name>: <value> (allowed: <values>)``, as torch's own optimizers word it."""

import math
from collections.abc import Mapping
from typing import Any


def check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} (allowed: {allowed})")


def is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_trust_group(group: Mapping[str, Any]) -> None:
    """The settings LARS and DALS share: lr >= 0, momentum in [0, 1), weight_decay >= 0, trust_coef > 0."""
    check(is_real(group["lr"]) and group["lr"] >= 0.0, "lr", group["lr"], ">= 0")
    check(is_real(group["momentum"]) and 0.0 <= group["momentum"] < 1.0, "momentum", group["momentum"], "[0, 1)")
    check(is_real(group["weight_decay"]) and group["weight_decay"] >= 0.0, "weight_decay",
          group["weight_decay"], ">= 0")
    check(is_real(group["trust_coef"]) and group["trust_coef"] > 0.0, "trust_coef", group["trust_coef"], "> 0")
