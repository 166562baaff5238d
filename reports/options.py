"""The report's options, their defaults and their checks: plain Python, so `lrsweep --help` stays fast."""

from __future__ import annotations

from collections.abc import Sequence

#: The paper's Table 2 thresholds (fractions of test accuracy).
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8, 0.9)
#: Default equivalence margin of the TOST against the best: 0.5 percentage points, as a fraction.
DEFAULT_MARGIN = 0.005


def check_thresholds(thresholds: Sequence[float] | None) -> list[float]:
    """Convergence thresholds, sorted; ValueError unless each is a test-accuracy fraction in (0, 1]."""
    values = list(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    bad = [t for t in values if not (isinstance(t, int | float) and 0 < t <= 1)]
    if bad or not values:
        raise ValueError(f"thresholds are test-accuracy fractions in (0, 1], e.g. 0.9,0.95; got {values}")
    return sorted(values)


def check_margin(margin: float) -> float:
    """The equivalence margin; ValueError unless it is an accuracy fraction in (0, 1)."""
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin < 1:
        raise ValueError(f"margin is an accuracy fraction in (0, 1), e.g. 0.005 for 0.5 pp; got {margin!r}")
    return float(margin)
