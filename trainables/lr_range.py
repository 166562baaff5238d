"""The LR range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", section 3.3).

A short run from a strategy's canonical settings whose LR grows geometrically from ``min_lr`` to
``max_lr``; the smoothed mini-batch loss against the LR shows where training starts to work and
where it breaks down, and so where a sweep's ``lr`` range belongs. The ramp is a Schedule that
replaces the strategy's own (``Strategy.build(schedule=...)``): it scales every layer group's LR
alike, so discriminative groups keep their ratios; the update itself (momentum, trust ratios,
DALS's phase, SAM's two passes) is the strategy's. No Ray here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strategies.schedules import Scaled, Schedule, exponential_ramp

if TYPE_CHECKING:
    import torch

    from strategies import Stepper

BETA = 0.95
"""Loss EMA factor, bias-corrected as in Adam. fastai's ``lr_find`` uses 0.98 over 100 steps; over this
module's 1000 its 50-step memory spans a third of a decade and delays the stop, so 0.95 (20 steps)."""

DIV_FACTOR = 4.0
"""Stop once the smoothed loss exceeds this multiple of its best so far (fastai's ``stop_div`` rule)."""

HIGH_FRACTION = 1 / 3
"""The suggested range ends at most at this fraction of the divergence LR (see ``suggest``)."""

MIN_LR, MAX_LR, STEPS = 1e-6, 10.0, 1000
"""Default ramp: seven decades at about 140 steps per decade. The stop rule fires late, by the EMA's
memory and the loss's climb to 4x: on tests/test_lr_range.py's quadratic 1.17-1.44x past the true
divergence LR (8 seeds) at this resolution, later at coarser ones."""


class RangeTestError(ValueError):
    """A bad ramp (the message names the option and what it allows) or a curve that suggests nothing."""


def check_ramp(min_lr: float, max_lr: float, steps: int) -> None:
    """Raise RangeTestError naming the CLI option when the ramp cannot run."""
    if not (isinstance(min_lr, float | int) and math.isfinite(min_lr) and min_lr > 0):
        raise RangeTestError(f"--min-lr {min_lr!r}; allowed: a finite number > 0")
    if not (isinstance(max_lr, float | int) and math.isfinite(max_lr) and max_lr > min_lr):
        raise RangeTestError(f"--max-lr {max_lr!r}; allowed: a finite number > --min-lr ({min_lr:g})")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise RangeTestError(f"--steps {steps!r}; allowed: an int >= 2")


def ramp(min_lr: float, max_lr: float, steps: int, base_lr: float) -> Schedule:
    """The Schedule that takes a group whose built LR is ``base_lr * scale`` from ``min_lr * scale`` to
    ``max_lr * scale`` over ``steps`` steps (the top group, scale 1, follows ``min_lr .. max_lr``)."""
    return Scaled(partial(exponential_ramp, start=min_lr / base_lr, end=max_lr / base_lr, T=steps))


@dataclass(frozen=True)
class Curve:
    """One range test: per step, the top group's LR, the mini-batch loss and its smoothed value.

    ``diverged``: the last step tripped the stop rule (smoothed loss above ``DIV_FACTOR`` times its
    best, or a non-finite loss); otherwise the ramp ran to its end.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    diverged: bool
    beta: float = BETA
    div_factor: float = DIV_FACTOR

    @property
    def divergence_lr(self) -> float | None:
        """The LR of the step at which the stop rule fired; None if it never did."""
        return self.lrs[-1] if self.diverged else None


def run_range_test(stepper: Stepper, closure_at: Callable[[int], Callable[[], torch.Tensor]], steps: int, *,
                   beta: float = BETA, div_factor: float = DIV_FACTOR) -> Curve:
    """Step ``stepper`` (built with a ``ramp``) up to ``steps`` times, stopping at divergence.

    ``closure_at(t)``: the training closure of step ``t`` (zero grads, forward, backward, return the
    loss). The loss recorded for step ``t`` is what ``stepper.step`` returns (SAM: its first,
    unperturbed pass), measured before step ``t``'s update, against that step's LR (fastai's convention).
    """
    import torch

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    for t in range(steps):
        loss = float(torch.as_tensor(stepper.step(closure_at(t))).detach())
        lrs.append(float(stepper.lrs()[-1]))
        losses.append(loss)
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** (t + 1)))
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > div_factor * best:
            return Curve(tuple(lrs), tuple(losses), tuple(smoothed), True, beta, div_factor)
        best = min(best, smoothed[-1])
    return Curve(tuple(lrs), tuple(losses), tuple(smoothed), False, beta, div_factor)


@dataclass(frozen=True)
class Suggestion:
    """The suggested ``lr`` range and the points it is read from, with notes on any adjustment."""

    steepest_lr: float
    minimum_lr: float
    divergence_lr: float | None
    low: float
    high: float
    notes: tuple[str, ...] = ()


def _usable(curve: Curve) -> int:
    """How many leading steps came before the divergence (all of them if there was none)."""
    usable = len(curve.lrs) - 1 if curve.diverged else len(curve.lrs)
    if usable < 3:
        raise RangeTestError(f"the loss diverged after {len(curve.lrs)} steps, before it could fall; "
                             "allowed: a lower --min-lr or more --steps")
    return usable


def smallest_loss(curve: Curve) -> int:
    """Index of the smallest smoothed loss before any divergence."""
    usable = _usable(curve)
    return min(range(usable), key=curve.smoothed.__getitem__)


def steepest_descent(curve: Curve) -> int:
    """Index of the steepest fall of the smoothed loss per unit of log LR on the way down to its
    smallest value (a fall after a blow-up is recovery, not descent).

    The slope at step i is taken across steps i - k .. i + k, k the EMA's memory (1 / (1 - beta)
    steps, at most a quarter of the descent): step-to-step slopes of a smoothed curve are still noise.
    """
    import numpy as np

    end = smallest_loss(curve) + 1
    if end < 2:
        raise RangeTestError("the smoothed loss never fell below its first value; allowed: a lower --min-lr")
    loss, log_lr = np.asarray(curve.smoothed[:end]), np.log(np.asarray(curve.lrs[:end]))
    k = max(1, min(round(1 / (1 - curve.beta)), (end - 1) // 4))
    index = np.arange(end)
    before, after = np.maximum(index - k, 0), np.minimum(index + k, end - 1)
    slope = (loss[after] - loss[before]) / (log_lr[after] - log_lr[before])
    return int(np.argmin(slope))


def suggest(curve: Curve, canonical_lr: float, lr_ceiling: float = 10.0) -> Suggestion:
    """The rule. Low: the LR of the steepest fall of the smoothed loss (fastai's "steep" point; the
    loss falls fastest there, past Smith 2017, 3.3's "starts to decrease"). High: the LR of the
    smallest smoothed loss (Smith 2017, 3.3: where the loss stops falling), but at most
    ``HIGH_FRACTION`` of the divergence LR, since the stop rule fires late.

    A low at or above high becomes high / 10. The range is then widened to contain
    ``canonical_lr`` (a sweep's trial 0 must lie inside it) and capped at ``lr_ceiling`` (the
    ``lr`` hyperparameter's upper bound); each change is noted.
    """
    steep, minimum = curve.lrs[steepest_descent(curve)], curve.lrs[smallest_loss(curve)]
    notes = []
    high = minimum
    if curve.diverged:
        high = min(high, HIGH_FRACTION * curve.lrs[-1])
    else:
        notes.append(f"no divergence up to lr {curve.lrs[-1]:.3g}: high is the smallest loss's lr alone")
    low = steep
    if low >= high:
        low = high / 10
        notes.append(f"the steepest descent (lr {steep:.3g}) is not below the high end: low set to high / 10")
    if not low <= canonical_lr <= high:
        low, high = min(low, canonical_lr), max(high, canonical_lr)
        notes.append(f"widened to contain the canonical lr {canonical_lr:g} (trial 0 of a sweep)")
    if high > lr_ceiling:
        high = lr_ceiling
        notes.append(f"high capped at {lr_ceiling:g}, the largest lr a trial accepts")
    return Suggestion(steep, minimum, curve.divergence_lr, low, high, tuple(notes))


def outward(value: float, up: bool, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant digits away from the range's inside."""
    exponent = math.floor(math.log10(value)) - digits + 1
    scaled = value / 10 ** exponent
    return (math.ceil(scaled) if up else math.floor(scaled)) * 10 ** exponent


def search_space_lines(strategy: str, suggestion: Suggestion) -> list[str]:
    """The ``search_space`` section of a sweep spec that searches ``lr`` over the suggested range,
    bounds rounded outwards to 3 significant digits (so the range still contains what it did)."""
    low, high = outward(suggestion.low, up=False), outward(suggestion.high, up=True)
    return ["search_space:", f"  {strategy}: {{lr: [{low:.3g}, {high:.3g}]}}"]


def plot(curve: Curve, suggestion: Suggestion | None, path: str | Path, title: str) -> Path:
    """A PNG of the raw and smoothed loss against the LR (log axis), the suggested range shaded."""
    import matplotlib

    matplotlib.use("Agg")  # headless: the range test runs on servers without a display
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4.2))
    finite = [(lr, loss) for lr, loss in zip(curve.lrs, curve.losses, strict=True) if math.isfinite(loss)]
    axes.plot([lr for lr, _ in finite], [loss for _, loss in finite], color="0.75", lw=0.8, label="mini-batch loss")
    axes.plot(curve.lrs, curve.smoothed, color="C0", lw=1.8,
              label=f"smoothed (EMA beta {curve.beta:g}, bias-corrected)")
    if suggestion is not None:
        axes.axvspan(suggestion.low, suggestion.high, color="C2", alpha=0.15, label="suggested lr range")
        axes.axvline(suggestion.steepest_lr, color="C2", ls="--", lw=1, label="steepest descent")
    if curve.divergence_lr is not None:
        axes.axvline(curve.divergence_lr, color="C3", ls=":", lw=1.2,
                     label=f"divergence (> {curve.div_factor:g}x best)")
    finite_smoothed = [s for s in curve.smoothed if math.isfinite(s)]
    if finite_smoothed:  # the diverging tail would flatten the rest of the curve
        best = min(finite_smoothed)
        axes.set_ylim(min(min(loss for _, loss in finite), best) * 0.9 if finite else None,
                      max(finite_smoothed[0], best * curve.div_factor) * 1.1)
    axes.set_xscale("log")
    axes.set_xlabel("learning rate (top layer group)")
    axes.set_ylabel("training loss")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


# ----- a workload and a registered strategy ---------------------------------------------------------

@dataclass(frozen=True)
class WorkloadRangeTest:
    """A range test on a workload: its curve, the resolved hyperparameters it started from, and the run's shape."""

    curve: Curve
    hparams: Mapping[str, Any]
    steps: int
    min_lr: float
    max_lr: float
    device: str
    steps_per_epoch: int = 0  # batches in one pass over the training split: the cost in epochs


def range_test_workload(workload: str, strategy: str, *, min_lr: float = MIN_LR, max_lr: float = MAX_LR,
                        steps: int = STEPS, options: Mapping[str, Any] | None = None, seed: int = 0,
                        device: str = "auto", data_dir: str | None = None) -> WorkloadRangeTest:
    """Run the range test of ``strategy`` on ``workload``'s tune-stage training split (never test).

    The hyperparameters are resolved as a trial resolves them (``strategies.resolve_hparams`` with
    the workload's regime and overrides); the ramp then sets the LR in their place.
    """
    import torch
    from torch.nn import functional as F

    import strategies
    from trainables.trial import TrialConfig, load_splits, select_device
    from trainables.workload import check_layer_groups, get_workload

    check_ramp(min_lr, max_lr, steps)
    cfg = TrialConfig.from_dict({"workload": workload, "strategy": strategy, "workload_options": dict(options or {}),
                                 "seed": seed, "device": device, "data_dir": data_dir})
    w = get_workload(cfg.workload)
    validated = w.validate_options(cfg.workload_options)
    entry = strategies.get_strategy(cfg.strategy)
    regime = w.regime_for(validated)
    hparams = strategies.resolve_hparams(entry, regime, w.family_overrides)
    where = select_device(cfg.device)
    data, train, _, _ = load_splits(w, validated, cfg, where)
    torch.manual_seed(cfg.seed)
    model = w.build_model(validated, data).to(where)
    groups = w.layer_groups(model)
    check_layer_groups(w.name, model, groups)
    steps_per_epoch = train.num_batches(w.batch_size)
    stepper = entry.build(groups, hparams, total_steps=steps, steps_per_epoch=steps_per_epoch, regime=regime,
                          schedule=ramp(min_lr, max_lr, steps, hparams["lr"]))
    generator = torch.Generator().manual_seed(cfg.seed)

    def batches() -> Iterator[tuple[Any, torch.Tensor]]:
        while True:  # epochs of shuffled batches, as many as the ramp needs
            yield from train.batches(w.batch_size, shuffle=True, generator=generator, train=True)

    stream = batches()

    def closure_at(t: int) -> Callable[[], torch.Tensor]:
        inputs, labels = next(stream)

        def closure() -> torch.Tensor:
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(inputs).float(), labels)
            loss.backward()
            return loss

        return closure

    model.train()
    curve = run_range_test(stepper, closure_at, steps)
    return WorkloadRangeTest(curve, hparams, steps, min_lr, max_lr, str(where), steps_per_epoch)
