"""Learning-rate schedules as pure functions of the 0-based step ``t`` and the run length ``T``.

Each returns the LR of step ``t`` given the peak ``lr``. They keep no state (no ``last_epoch``),
so a restored run only needs its step counter to land on the same LR.
"""

import math

__all__ = ["cosine", "linear_warmup", "sgdr", "stlr", "warmup_cosine"]


def cosine(t: int, T: int, lr: float, eta_min: float = 1e-5) -> float:
    """Cosine from ``lr`` at t = 0 to ``eta_min`` at t = T (torch ``CosineAnnealingLR(T_max=T)``)."""
    return eta_min + (lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * min(t, T) / max(1, T)))


def sgdr(t: int, lr: float, T_0: int, T_mult: int = 2, eta_min: float = 1e-5) -> float:
    """Cosine warm restarts: cycle ``i`` lasts ``T_0 * T_mult**i`` steps and restarts at ``lr``.

    Same values as torch ``CosineAnnealingWarmRestarts`` stepped once per step; ``T_0`` is in steps
    here, the caller converts epochs (STRATEGIES.md: the reference code's steps-not-epochs defect).
    """
    if T_mult == 1:
        cycle_pos, cycle_len = t % T_0, T_0
    else:
        cycle_pos, cycle_len = t, T_0
        while cycle_pos >= cycle_len:
            cycle_pos -= cycle_len
            cycle_len *= T_mult
    return eta_min + (lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * cycle_pos / cycle_len))


def stlr(t: int, T: int, lr: float, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """Slanted triangular LR (Howard and Ruder 2018), per step: ``lr/ratio`` up to ``lr`` at cut, back down.

    ``cut = floor(T * cut_frac)``, kept at least 1 so that a run shorter than ``1 / cut_frac`` steps
    does not divide by zero.
    """
    cut = max(1, math.floor(T * cut_frac))
    p = t / cut if t < cut else 1.0 - (t - cut) / (cut * (1.0 / cut_frac - 1.0))
    return lr * (1.0 + p * (ratio - 1.0)) / ratio


def warmup_cosine(t: int, T: int, lr: float, warmup_frac: float) -> float:
    """DALS's LR: linear warmup over ``W = floor(warmup_frac * T)`` steps, then cosine to 0 at T."""
    W = math.floor(warmup_frac * T)
    if t < W:
        return lr * t / max(1, W)
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (t - W) / max(1, T - W))))


def linear_warmup(t: int, T: int, frac: float) -> float:
    """Fine-tuning multiplier: ``t / W`` for ``t < W = floor(frac * T)``, then 1 (1 throughout if W = 0)."""
    W = math.floor(frac * T)
    return t / W if t < W else 1.0
