"""The spec's ``calibrate`` section: each pair's lr range calibrated on the workload before tuning.

``calibrate: lr`` (the defaults) or ``calibrate: {hparam: lr, steps: 300, min_lr: 1.0e-6, max_lr: 10,
seed: 0}``. One procedure for every pair: the LR range test (``trainables.lr_range``) with the same
ramp, steps and seed; the range runs from the steepest descent to the loss minimum, widened to hold
the canonical value (``sweeps.engine.calibrate`` runs it). It is part of the protocol, so it is in the spec
hash; a spec without it keeps the hash it had before the section existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweeps.spec.checks import Problems, is_number, read_fields, read_int

__all__ = ["CALIBRATED", "CALIBRATION_FIELDS", "Calibration", "parse_calibration"]

CALIBRATED = ("lr",)
"""The hyperparameters a range test can calibrate: the one it ramps."""
CALIBRATION_FIELDS = ("hparam", "steps", "min_lr", "max_lr", "seed")
# The lr_range defaults, copied as plain numbers: the spec layer imports no torch.
MIN_LR, MAX_LR, STEPS = 1e-6, 10.0, 300


@dataclass(frozen=True)
class Calibration:
    """The range test every pair runs before tuning: ``steps`` steps from ``min_lr`` to ``max_lr``
    (geometric), training seed ``seed``. 300 steps over the default seven decades is about 43 per
    decade: enough to read the steepest descent (``lrsweep lr-range`` uses 1000 for a plot)."""

    hparam: str = "lr"
    steps: int = STEPS
    min_lr: float = MIN_LR
    max_lr: float = MAX_LR
    seed: int = 0

    def to_dict(self) -> dict:
        return {"hparam": self.hparam, "steps": self.steps, "min_lr": self.min_lr, "max_lr": self.max_lr,
                "seed": self.seed}


def parse_calibration(raw: Any, p: Problems) -> Calibration | None:
    """The ``calibrate`` section (None when absent), every problem named with its allowed values."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"hparam": raw}
    raw = read_fields(raw, "calibrate", CALIBRATION_FIELDS, p)
    hparam = raw.get("hparam", "lr")
    if hparam not in CALIBRATED:
        p.add("calibrate.hparam", f"got {hparam!r}; allowed: {', '.join(CALIBRATED)}")
    steps = read_int(raw, "steps", "calibrate", p, default=STEPS, minimum=20)
    seed = read_int(raw, "seed", "calibrate", p, default=0, minimum=0)
    low, high = raw.get("min_lr", MIN_LR), raw.get("max_lr", MAX_LR)
    good = True
    for key, value in (("min_lr", low), ("max_lr", high)):
        if not is_number(value) or not math.isfinite(value) or value <= 0:
            p.add(f"calibrate.{key}", f"got {value!r}; allowed: a finite number > 0")
            good = False
    if good and not low < high:
        p.add("calibrate.max_lr", f"got {high!r}; allowed: a number > calibrate.min_lr ({low:g})")
        good = False
    if hparam not in CALIBRATED or steps is None or seed is None or not good:
        return None
    return Calibration(hparam, steps, float(low), float(high), seed)
