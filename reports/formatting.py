"""How every lrsweep report prints a number: one place, so two reports cannot disagree.

Accuracies are stored as fractions and printed as percent; differences as percentage points (pp);
"n/a" (or the caller's ``missing``) where a number is undefined.
"""

from __future__ import annotations

import json
import math

import numpy as np

#: Printed where a number is undefined.
NA = "n/a"


def _finite(x) -> bool:
    return x is not None and isinstance(x, int | float | np.integer | np.floating) and bool(np.isfinite(x))


def num(x: float | None, digits: int = 2, missing: str = NA) -> str:
    """A plain number with ``digits`` decimals."""
    return f"{x:.{digits}f}" if _finite(x) else missing


def pct(x: float | None, digits: int = 1, missing: str = NA) -> str:
    """A fraction as percent (one decimal by default)."""
    return f"{100 * x:.{digits}f}" if _finite(x) else missing


def pp(x: float | None, digits: int = 2, missing: str = NA) -> str:
    """A difference of fractions in percentage points."""
    return f"{100 * x:.{digits}f}" if _finite(x) else missing


def pval(p: float | None) -> str:
    """A p-value to three significant digits, '<0.001' below that, 'n/a' when no test was possible."""
    if not _finite(p):
        return NA
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def interval(lo: float | None, hi: float | None, scale: float = 100, digits: int = 1, missing: str = NA) -> str:
    """``[lo, hi]`` of fractions, printed times ``scale`` (percent by default)."""
    if not (_finite(lo) and _finite(hi)):
        return missing
    return f"[{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def ci(lo: float | None, hi: float | None) -> str:
    """A 95% interval of accuracies, in percent with one decimal."""
    return interval(lo, hi)


def mean_ci(mean: float | None, lo: float | None, hi: float | None, digits: int = 1, scale: float = 100,
            missing: str = NA) -> str:
    """``mean [lo, hi]``; the mean alone when the interval is undefined (one seed)."""
    if not _finite(mean):
        return missing
    text = f"{scale * mean:.{digits}f}"
    return text if not (_finite(lo) and _finite(hi)) else f"{text} {interval(lo, hi, scale, digits)}"


def seeds(n: float | None, most: int) -> str:
    """A number of seeds, ``>most`` past the search limit."""
    if not _finite(n):
        return NA
    return f">{most}" if n > most else str(int(n))


def value(x) -> str:
    """A hyperparameter value, distinguishable at a glance: 4 significant digits, and numbers in
    (0.9, 1) as ``1-<1 - x>`` (beta2 = 0.99962 prints 1-3.8e-4, never a rounded 1)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return json.dumps(x) if not isinstance(x, str) else x
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if 0.9 < x < 1:
        return f"1-{1 - x:.2g}"
    return f"{x:.4g}"


def config(hparams_json: str) -> str:
    """A JSON hyperparameter object as ``key=value`` pairs in key order, values as `value` prints them."""
    if not hparams_json:
        return ""
    return ", ".join(f"{k}={value(v)}" for k, v in sorted(json.loads(hparams_json).items()))
