"""Search spaces: one Optuna define-by-run space per strategy, written as data (docs/STYLE.md 7).

A space is a table ``{hparam: Range(low, high, scale)}``. Every table is derived from the
strategy's canonical configuration (for the workload's regime) by ONE width policy, ``POLICY``:
a hyperparameter is searched when the strategy has it and the policy names a rule for it, and the
rule turns the canonical value into a range that contains it. Rules, in words:

- magnitudes (learning rate, Muon's AdamW ``adam_lr``, weight decay, AdaBound final_lr, trust
  coefficient, SAM rho) on a log scale, a decade each side of the canonical value; gentler knobs
  (Grokfast amplification, STLR cut_frac and ratio, the warmup fractions of DALS, WSD, one-cycle
  and Schedule-Free) half a decade; DALS loss thresholds and the
  discriminative decay factor a factor ~2 / ~1.6 each side, so th1 and th2 never cross;
- coefficients just below 1 (momentum, betas, Grokfast EMA alpha): the gap ``1 - value`` half a
  decade each side, suggested on a linear scale (0.9 -> [0.684, 0.968], 0.999 -> [0.9968, 0.9997]);
- mixing coefficients (DALS filter strength, Lookahead alpha) a fixed distance either side;
- integers (Lookahead's k, SOAP's ``precondition_frequency``, the restart period ``T_0_epochs``
  and its multiplier ``T_mult`` of SGDR and DALS-Acc): from half to twice the canonical value.

WSD's ``decay_frac`` has no rule: the cooldown stays the paper's last 20%.

A strategy without weight decay (canonical 0) is not searched over weight decay. Each range is
clipped to the strategy's declared allowed range, so every suggestion is a value its Stepper
accepts. Cyclic schedules are tuned like any other hyperparameter: a restart period that ends a run
mid-cycle is the tuner's to avoid, not a handicap fixed in advance. The fine-tune warmup, shared by
every strategy alike, stays at its canonical value.

This package knows strategies only by name and hyperparameter name: callers pass the canonical
dict and the strategy's ``HParam`` declarations, its allowed values (``sweeps`` reads both from
``strategies``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strategies.hparams import HParam

__all__ = [
    "POLICY",
    "SCALES",
    "Range",
    "SearchSpaceError",
    "build_space",
    "canonical_point",
    "define_by_run",
    "markdown_table",
    "narrow",
]

SCALES = ("log", "linear", "int")


class SearchSpaceError(ValueError):
    """A search-space problem (bad override, canonical value outside its range), with the allowed values."""


@dataclass(frozen=True)
class Range:
    """The searched interval of one hyperparameter: ``low <= value <= high`` on ``scale``."""

    low: float
    high: float
    scale: str

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise SearchSpaceError(f"scale {self.scale!r} is not one of {SCALES}")
        if not self.low < self.high:
            raise SearchSpaceError(f"range [{self.low}, {self.high}] is empty: low must be below high")
        if self.scale == "log" and self.low <= 0:
            raise SearchSpaceError(f"log-scale range [{self.low}, {self.high}] must have low > 0")

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


# --- the width policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decades:
    """Log scale, ``decades`` powers of ten each side of the canonical value."""

    decades: float

    def around(self, c: float) -> Range | None:
        if c <= 0:  # the strategy does not use this knob (e.g. no weight decay): not searched
            return None
        f = 10.0**self.decades
        return Range(c / f, c * f, "log")


@dataclass(frozen=True)
class TowardOne:
    """A coefficient just below 1: the gap ``1 - c`` spans ``decades`` each side; linear values."""

    decades: float

    def around(self, c: float) -> Range | None:
        gap = 1.0 - c
        if not 0 < gap < 1:
            return None
        f = 10.0**self.decades
        return Range(max(0.0, 1.0 - gap * f), 1.0 - gap / f, "linear")


@dataclass(frozen=True)
class Plus:
    """Linear scale, a fixed distance each side of the canonical value."""

    distance: float

    def around(self, c: float) -> Range | None:
        return Range(c - self.distance, c + self.distance, "linear")


@dataclass(frozen=True)
class IntFactor:
    """Integers from ``c / factor`` to ``c * factor``."""

    factor: int

    def around(self, c: float) -> Range | None:
        low, high = max(1, math.ceil(c / self.factor)), int(c * self.factor)
        return Range(low, high, "int") if low < high else None


POLICY: Mapping[str, Decades | TowardOne | Plus | IntFactor] = {
    "lr": Decades(1.0),
    "adam_lr": Decades(1.0),
    "weight_decay": Decades(1.0),
    "final_lr": Decades(1.0),
    "trust_coef": Decades(1.0),
    "rho": Decades(1.0),
    "grok_lambda": Decades(0.5),
    "cut_frac": Decades(0.5),
    "ratio": Decades(0.5),
    "warmup_frac": Decades(0.5),
    "th1": Decades(0.3),
    "th2": Decades(0.3),
    "decay_factor": Decades(0.2),
    "momentum": TowardOne(0.5),
    "beta1": TowardOne(0.5),
    "beta2": TowardOne(0.5),
    "grok_alpha": TowardOne(0.5),
    "filter_alpha": Plus(0.2),
    "lookahead_alpha": Plus(0.3),
    "lookahead_k": IntFactor(2),
    "T_0_epochs": IntFactor(2),
    "T_mult": IntFactor(2),
    "precondition_frequency": IntFactor(2),
}
"""hparam name -> width rule. The whole policy: no per-strategy exceptions."""


def _clip(r: Range, allowed: HParam | None) -> Range:
    """``r`` intersected with the values ``allowed`` declares (exclusive bounds nudged inside)."""
    if allowed is None:
        return r
    lo, hi, whole = allowed.low, allowed.high, r.scale == "int"
    low, high = r.low, r.high
    # An excluded bound moves to the nearest value inside: the next integer, or a hair for a float.
    if low <= lo:
        low = lo if allowed.low_inclusive else (math.floor(lo) + 1 if whole else lo + abs(lo) * 1e-6 + 1e-12)
    if high >= hi:
        high = hi if allowed.high_inclusive else (math.ceil(hi) - 1 if whole else hi - abs(hi) * 1e-6 - 1e-12)
    return Range(low, high, r.scale)


def build_space(canonical: Mapping[str, float], hparams: Iterable[HParam] = ()) -> dict[str, Range]:
    """The search table of a strategy: ``POLICY`` applied to its canonical values, clipped to what
    its ``hparams`` (the strategy's ``HParam`` declarations) allow.

    ``canonical`` is the strategy's resolved canonical configuration for one workload (regime and
    workload overrides included); the space is centred on it, so trial 0 (canonical) lies inside.
    """
    allowed = {h.name: h for h in hparams}
    space: dict[str, Range] = {}
    for name, value in canonical.items():
        rule = POLICY.get(name)
        if rule is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        r = rule.around(float(value))
        if r is not None:
            space[name] = _clip(r, allowed.get(name))
    return space


def narrow(space: Mapping[str, Range], overrides: Mapping[str, tuple[float, float]]) -> dict[str, Range]:
    """``space`` with some ranges replaced by ``[low, high]`` (same scale); only existing hparams.

    The spec validates overrides first; this raises SearchSpaceError naming the hparam otherwise.
    """
    out = dict(space)
    for name, (low, high) in overrides.items():
        if name not in space:
            raise SearchSpaceError(f"hparam {name!r} is not searched; searched hparams: {', '.join(space)}")
        out[name] = Range(low, high, space[name].scale)
    return out


def canonical_point(space: Mapping[str, Range], canonical: Mapping[str, float]) -> dict[str, float]:
    """The canonical configuration restricted to the searched hparams (enqueued as trial 0)."""
    point = {}
    for name, r in space.items():
        value = canonical[name]
        if not r.contains(value):
            raise SearchSpaceError(
                f"canonical {name}={value} lies outside its searched range [{r.low}, {r.high}]"
            )
        point[name] = int(value) if r.scale == "int" else float(value)
    return point


_SUGGEST: Mapping[str, Callable] = {
    "log": lambda trial, name, r: trial.suggest_float(name, r.low, r.high, log=True),
    "linear": lambda trial, name, r: trial.suggest_float(name, r.low, r.high),
    "int": lambda trial, name, r: trial.suggest_int(name, int(r.low), int(r.high)),
}


def define_by_run(space: Mapping[str, Range]) -> Callable[[object], dict]:
    """The Optuna define-by-run function of ``space``: it only suggests values, in table order."""
    items = tuple(space.items())

    def suggest(trial) -> dict:
        return {name: _SUGGEST[r.scale](trial, name, r) for name, r in items}

    return suggest


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def markdown_table(spaces: Mapping[str, Mapping[str, Range]], canonicals: Mapping[str, Mapping]) -> str:
    """A Markdown table of every strategy's searched ranges (one row per strategy and hparam)."""
    lines = ["| strategy | hparam | canonical | low | high | scale |", "|---|---|---|---|---|---|"]
    for strategy, space in spaces.items():
        for name, r in space.items():
            c = canonicals[strategy][name]
            lines.append(f"| `{strategy}` | `{name}` | {_fmt(c)} | {_fmt(r.low)} | {_fmt(r.high)} | {r.scale} |")
    return "\n".join(lines)
