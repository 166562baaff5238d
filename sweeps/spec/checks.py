"""The validation toolkit every spec section parser uses (the sweep's and ``lrsweep reproduce``'s).

Each reader reports what is wrong as ``<field path>: <problem>; allowed: <values>`` into one
``Problems`` and returns None, so that a parse collects every problem before raising ``SpecError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MISSING", "Problems", "is_int", "is_number", "read_choice", "read_fields", "read_int"]


class Problems:
    """Collects ``path: message`` problems so that all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


MISSING = object()
"""The default of a required field."""


def is_int(v: Any) -> bool:
    """An integer that is not a bool (YAML's true would pass ``isinstance(v, int)``)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def read_fields(raw: Any, path: str, allowed: tuple[str, ...], p: Problems) -> dict:
    """``raw`` as a dict, reporting a non-mapping and every unknown key."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        p.add(path, f"must be a mapping with fields {', '.join(allowed)}; got {type(raw).__name__}")
        return {}
    for key in raw:
        if key not in allowed:
            p.add(f"{path}.{key}" if path else str(key), f"unknown field; allowed fields: {', '.join(allowed)}")
    return dict(raw)


def read_int(raw: dict, key: str, path: str, p: Problems, *, default: Any = MISSING, minimum: int = 1,
             nullable: bool = False) -> Any:
    """``raw[key]`` as an integer >= ``minimum`` (``default`` when absent; required when no default)."""
    value = raw.get(key, default)
    where = f"{path}.{key}" if path else key
    if value is MISSING:
        p.add(where, f"is required; allowed: an integer >= {minimum}")
        return None
    if value is None and nullable:
        return None
    if not is_int(value) or value < minimum:
        p.add(where, f"got {value!r}; allowed: an integer >= {minimum}" + (" or null" if nullable else ""))
        return None
    return value


def read_choice(raw: dict, key: str, path: str, p: Problems, choices: tuple[str, ...], default: str) -> Any:
    """``raw[key]`` if it is one of ``choices`` (``default`` when absent)."""
    value = raw.get(key, default)
    if value not in choices:
        p.add(f"{path}.{key}", f"got {value!r}; allowed: {', '.join(choices)}")
        return None
    return value
