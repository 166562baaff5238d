"""Learning-rate schedules as pure functions of the step: ``schedule(t, peak) -> lr``.

``t`` is the 0-based step and ``peak`` a param group's peak LR (the base LR times the group's
discriminative scale); each function's keyword settings (run length, hyperparameters) are bound
once per run, e.g. ``partial(cosine, T=1000, eta_min=1e-5)``. Nothing keeps state (no
``last_epoch``, no cycle counter), so a restored run only needs its step counter to land on the
same LR, and every LR the run has had can be recomputed from the step.

DALS's two schedules are a peak times a factor of the step (``Scaled``). Cosine and SGDR are not:
their 1e-5 floor is an absolute LR, as in torch's schedulers; STLR divides by ``ratio`` after
multiplying the peak. Each keeps the order of arithmetic it has always had, and so its bits.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Schedule", "Scaled", "constant", "cosine", "exponential_ramp", "linear_warmup", "one_cycle", "restarts",
           "sgdr", "stlr", "warmup_cosine", "with_warmup", "wsd"]

Schedule = Callable[[int, float], float]  # (step t, a group's peak LR) -> that group's LR at step t


def _half_cosine(angle: float) -> float:
    return 0.5 * (1.0 + math.cos(angle))


def _cycle(n: int, T_0: int, T_mult: int) -> tuple[int, int]:
    """Position ``n``'s place in cycles of ``T_0 * T_mult**k`` steps: ``(position in cycle, cycle length)``."""
    if T_mult == 1:
        return n % T_0, T_0
    cycle_len = T_0
    while n >= cycle_len:
        n -= cycle_len
        cycle_len *= T_mult
    return n, cycle_len


@dataclass(frozen=True)
class Scaled:
    """A schedule that is the peak times a factor of the step alone: ``peak * factor(t)``."""

    factor: Callable[[int], float]

    def __call__(self, t: int, peak: float) -> float:
        return peak * self.factor(t)


def constant(t: int, peak: float) -> float:
    """The peak at every step."""
    return peak


def cosine(t: int, peak: float, *, T: int, eta_min: float) -> float:
    """Cosine from ``peak`` at t = 0 to ``eta_min`` at t = T (torch ``CosineAnnealingLR(T_max=T)``)."""
    return eta_min + (peak - eta_min) * _half_cosine(math.pi * min(t, T) / max(1, T))


def sgdr(t: int, peak: float, *, T_0: int, T_mult: int, eta_min: float) -> float:
    """Cosine warm restarts: cycle ``i`` lasts ``T_0 * T_mult**i`` steps and restarts at ``peak``.

    Same values as torch ``CosineAnnealingWarmRestarts`` stepped once per step; ``T_0`` is in steps
    here, the caller converts epochs (docs/STRATEGIES.md: the reference code's steps-not-epochs defect).
    """
    position, length = _cycle(t, T_0, T_mult)
    return eta_min + (peak - eta_min) * _half_cosine(math.pi * position / length)


def stlr(t: int, peak: float, *, T: int, cut_frac: float, ratio: float) -> float:
    """Slanted triangular LR (Howard and Ruder 2018), per step: ``peak/ratio`` up to ``peak`` at cut, back down.

    ``cut = floor(T * cut_frac)``, kept at least 1 so that a run shorter than ``1 / cut_frac`` steps
    does not divide by zero.
    """
    cut = max(1, math.floor(T * cut_frac))
    p = t / cut if t < cut else 1.0 - (t - cut) / (cut * (1.0 / cut_frac - 1.0))
    return peak * (1.0 + p * (ratio - 1.0)) / ratio


def warmup_cosine(t: int, *, T: int, warmup_frac: float) -> float:
    """DALS's factor: linear warmup over ``W = floor(warmup_frac * T)`` steps, then cosine to 0 at T."""
    W = math.floor(warmup_frac * T)
    if t < W:
        return t / max(1, W)
    return _half_cosine(math.pi * min(1.0, (t - W) / max(1, T - W)))


def restarts(t: int, *, T_0: int, T_mult: int) -> float:
    """DALS-Acc's factor: SGDR to 0 without warmup, its counter advanced before the LR is read.

    docs/STRATEGIES.md's counter ``c`` is ``t + 1`` steps into the run at step ``t``: the first restart
    (factor 1) is at step ``T_0 - 1``, one step before plain SGDR's.
    """
    position, length = _cycle(t + 1, T_0, T_mult)
    return _half_cosine(math.pi * min(1.0, position / length))


def wsd(t: int, *, T: int, warmup_frac: float, decay_frac: float) -> float:
    """Warmup-stable-decay factor (Hägele et al. 2024): linear warmup over ``W = floor(warmup_frac * T)``
    steps, 1 until the cooldown's ``D = floor(decay_frac * T)`` last steps, then ``1 - sqrt((t - (T - D)) / D)``.

    The values of pytorch-optimizer's ``get_wsd_scheduler_lambda(cooldown_type="1-sqrt")`` with
    ``T - W - D`` stable steps, without its scheduler's ``last_epoch`` state.
    """
    W, D = math.floor(warmup_frac * T), math.floor(decay_frac * T)
    if t < W:
        return t / max(1, W)
    if t < T - D or D == 0:
        return 1.0
    return 1.0 - math.sqrt(min(1.0, (t - (T - D)) / D))


def one_cycle(t: int, *, T: int, warmup_frac: float, div_factor: float, final_div_factor: float) -> float:
    """One-cycle factor (Smith and Topin 2019), torch ``OneCycleLR``'s two cosine phases without its state:
    from ``1 / div_factor`` up to 1 at step ``warmup_frac * T - 1``, then down to
    ``1 / (div_factor * final_div_factor)`` at step ``T - 1``."""
    start, low, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor), 1.0
    top = warmup_frac * T - 1.0  # torch's float end step of the warmup phase
    if t <= top:
        begin, stop, first, last = 0.0, top, start, end
    else:
        begin, stop, first, last = top, T - 1.0, end, low
    fraction = (t - begin) / (stop - begin) if stop > begin else 1.0
    return last + (first - last) * _half_cosine(math.pi * fraction)


def exponential_ramp(t: int, *, start: float, end: float, T: int) -> float:
    """The LR range test's factor (Smith 2017, section 3.3): geometric from ``start`` at t = 0 to ``end``
    at t = T - 1, held there after; as a ``Scaled`` factor it moves every group's LR alike."""
    return start * (end / start) ** (min(t, T - 1) / max(1, T - 1))


def linear_warmup(t: int, peak: float, *, T: int, frac: float) -> float:
    """Fine-tuning: ``peak * t / W`` for ``t < W = floor(frac * T)``, then ``peak`` (throughout if W = 0)."""
    W = math.floor(frac * T)
    return peak * (t / W) if t < W else peak


def with_warmup(schedule: Schedule, T: int, frac: float) -> Schedule:
    """``schedule`` with the fine-tuning regime's linear warmup multiplied onto it (itself if ``frac`` is 0).

    A ``Scaled`` schedule scales the warmed-up peak, any other is warmed after: the same product,
    each in the order it has always been computed, so that every LR keeps its last bit.
    """
    if frac == 0:
        return schedule
    if isinstance(schedule, Scaled):
        return lambda t, peak: schedule(t, linear_warmup(t, peak, T=T, frac=frac))
    return lambda t, peak: linear_warmup(t, schedule(t, peak), T=T, frac=frac)
