"""Stacked updates: one strategy's update for K runs at once, over parameters stacked along a new first dimension.

A population (``trainables.population``) trains K runs of one strategy whose members differ in
hyperparameters and seed; their parameters are stacked tensors of shape ``(K, *param_shape)``
whose ``.grad`` one batched backward fills. ``stacked_stepper`` returns a ``StackedStepper`` that
updates all K members in one set of tensor ops over the member dimension, doing what each member's
own ``Stepper`` (``Strategy.build``) would do to its slice: every per-member hyperparameter is a
``(K,)`` tensor broadcast over the member dimension, every LR is the member's own ``Schedule`` at
the member's own step, and each strategy's state (momentum, Adam moments, Grokfast's EMA, Lookahead's
slow weights and counter, DALS's loss EMA and phase) is held per member.

Exactness: each update repeats its library's operations in their order (torch.optim's single-tensor
CPU paths for SGD, Adam, AdamW and RAdam; pytorch-optimizer's AdaBound, Lion, Lookahead, SAM and
gradfilter_ema; ``strategies.lars`` and ``strategies.dals``), with the Python-float arithmetic of the
per-step scalars (bias corrections, bounds, trust ratios) done in float64 and cast once, as a scalar
argument is. On the CPU a broadcast ``(K, 1, ...)`` operand rounds as the scalar did, so the stacked
update equals the members' own to the last bit there (``tests/test_stacked.py``); torch's CUDA
optimizers take their multi-tensor paths, which order some products differently (about 1e-7
relative per step).

A strategy whose update has no stacked form here (a plugin's own ``make_update``, a paper-code
variant with its own optimizer) gets None from ``stacked_stepper``; the population then steps each
member's own ``Stepper``. Which form applies is decided by ``Strategy.make_update`` alone: the LR
schedule is always each member's own function, so a variant that changes only the schedule keeps
the stacked form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from strategies import registry
from strategies.hparams import resolve_hparams
from strategies.param_groups import build_param_groups, discriminative_scales
from strategies.registry import Run, Strategy
from strategies.schedules import Scaled, Schedule
from vocab.contracts import SCRATCH

__all__ = ["MemberStepper", "StackedStepper", "has_stacked_form", "stacked_stepper"]

ADAM_EPS = 1e-8  # torch's Adam, AdamW, RAdam and pytorch-optimizer's AdaBound, at their defaults


@dataclass(frozen=True)
class _Form:
    """How a strategy's update is composed: a base update, an optional gradient stage before it, Lookahead after."""

    base: str  # "sgd" | "adam" | "adamw" | "radam" | "adabound" | "lion" | "lars" | "dals"
    pre: str | None = None  # "grokfast" | "sam"
    lookahead: bool = False
    dals: tuple[float, float, bool] = (0.3, 0.3, False)  # phase0_floor, phase0_drop, phase0_bypass


def _forms() -> dict[Callable, _Form]:
    """The stacked form of each built-in ``make_update`` (registry.py's builders)."""
    r = registry
    return {
        r._sgd: _Form("sgd"),
        r._adam: _Form("adam"),
        r._adamw: _Form("adamw"),
    }


def has_stacked_form(strategy: Strategy) -> bool:
    """Whether ``stacked_stepper`` can build ``strategy``'s update for a population."""
    return strategy.make_update in _forms()


@dataclass
class _Plan:
    """One member's resolved settings: its hyperparameters, each group's peak LR and its schedule."""

    config: dict[str, Any]
    peaks: list[float]
    schedule: Schedule
    one_peak: bool = field(init=False)

    def __post_init__(self) -> None:
        self.one_peak = all(peak == self.peaks[0] for peak in self.peaks)

    def lrs(self, t: int) -> list[float]:
        """Each group's LR at step ``t``, as the member's Stepper sets them (one call per distinct peak)."""
        schedule = self.schedule
        if isinstance(schedule, Scaled):  # peak * factor(t): the factor once
            factor = schedule.factor(t)
            return [peak * factor for peak in self.peaks]
        if self.one_peak:
            return [schedule(t, self.peaks[0])] * len(self.peaks)
        return [schedule(t, peak) for peak in self.peaks]


def stacked_stepper(
    strategy: Strategy,
    layer_groups: Sequence[Sequence[torch.Tensor]],
    hparams: Sequence[Mapping[str, Any] | None],
    total_steps: int,
    steps_per_epoch: int,
    regime: str = SCRATCH,
) -> StackedStepper | None:
    """A ``StackedStepper`` for K members of ``strategy``, or None when its update has no stacked form.

    ``layer_groups``: bottom-to-top lists of stacked leaf tensors, each ``(K, *shape)``, in the
    order a member's ``Strategy.build`` would get its own parameters. ``hparams``: one dict per
    member, resolved like ``build`` resolves its ``hparams``.
    """
    form = _forms().get(strategy.make_update)
    if form is None:
        return None
    # Same arguments as Strategy.build, checked the same way (StrategyError on a bad value).
    for name, value in (("total_steps", total_steps), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise registry.StrategyError(f"strategy {strategy.name!r}: {name} = {value!r} must be an int >= 1")
    if not hparams:
        raise registry.StrategyError(f"strategy {strategy.name!r}: a stacked update needs at least one member")
    try:
        groups = build_param_groups(layer_groups)  # the same checks as a member's param groups
    except ValueError as error:
        raise registry.StrategyError(f"strategy {strategy.name!r}: {error}") from error
    run = Run(int(total_steps), int(steps_per_epoch))
    plans = []
    for sampled in hparams:
        config = resolve_hparams(strategy, regime, sampled=sampled)
        n = len(groups)
        scales = discriminative_scales(n, config["decay_factor"]) if strategy.discriminative else [1.0] * n
        plans.append(_Plan(config, [config["lr"] * scale for scale in scales], strategy.schedule(config, run)))
    return StackedStepper(form, [g["params"] for g in groups], [g["depth"] for g in groups], plans)


class StackedStepper:
    """K members' updates in one set of tensor ops; ``member(i)`` is member i's view for the metrics.

    ``step(losses, active, second_pass)`` runs one step of every member in ``active`` (default: all);
    the others (stopped: diverged or frozen) keep their parameters and state unchanged. ``losses``
    are the members' losses of the batched pass whose gradients fill the stacks' ``.grad`` (DALS
    reads them). ``second_pass()`` recomputes the batched forward and backward at the current
    parameters into the stacks' ``.grad`` and returns the per-member losses: SAM's perturbed pass
    (``needs_second_pass``). Each member's schedule position is its own step counter, so a stopped
    member's ``lrs()`` stay those of its last step.
    """

    def __init__(self, form: _Form, groups: list[list[torch.Tensor]], depths: list[float],
                 plans: list[_Plan]) -> None:
        self.form = form
        self.plans = plans
        self.k = k = len(plans)
        self.params = [p for group in groups for p in group]
        self.group_of = [g for g, group in enumerate(groups) for _ in group]
        self.num_groups = len(groups)
        self.depths = list(depths)
        for p in self.params:
            if p.dim() < 1 or p.shape[0] != k:
                raise ValueError(f"a stacked tensor of shape {tuple(p.shape)} does not hold {k} members "
                                 "along its first dimension")
        first = self.params[0]
        self.device, self.dtype = first.device, first.dtype
        self.steps = [0] * k
        self._latest = [plan.lrs(0) for plan in plans]  # the LRs of each member's latest step
        self.state: dict[str, list[torch.Tensor]] = {}  # per parameter, (K, *shape)
        self.member_state: dict[str, torch.Tensor] = {}  # per member, (K,)
        self.counters = [0] * k  # Lookahead's, per member
        self._views: dict[tuple[int, int], list[torch.Tensor]] = {}
        self.needs_second_pass = form.pre == "sam"
        self._init_state()

    # ----- per-member scalars -------------------------------------------------------------------

    def _hp(self, name: str) -> list[float]:
        return [float(plan.config[name]) for plan in self.plans]

    def _any(self, name: str) -> bool:
        return any(plan.config[name] != 0 for plan in self.plans)

    def _tensor(self, values: Sequence) -> torch.Tensor:
        """Python floats (float64 arithmetic) as the parameters' dtype: the cast a scalar argument gets."""
        return torch.tensor(values, dtype=self.dtype).to(self.device)

    def _members(self, values: Sequence[float]) -> list[torch.Tensor]:
        """One value per member as a ``(K, 1, ...)`` view per parameter."""
        x = self._tensor(values)
        by_dim: dict[int, torch.Tensor] = {}
        out = []
        for p in self.params:
            view = by_dim.get(p.dim())
            if view is None:
                view = by_dim[p.dim()] = x.view((self.k,) + (1,) * (p.dim() - 1))
            out.append(view)
        return out

    def _groups(self, rows: Sequence[Sequence[float]]) -> list[torch.Tensor]:
        """One value per (member, group), ``rows[member][group]``, as a ``(K, 1, ...)`` view per parameter."""
        x = self._tensor([list(column) for column in zip(*rows, strict=True)])  # (G, K)
        cache: dict[tuple[int, int], torch.Tensor] = {}
        out = []
        for g, p in zip(self.group_of, self.params, strict=True):
            view = cache.get((g, p.dim()))
            if view is None:
                view = cache[(g, p.dim())] = x[g].view((self.k,) + (1,) * (p.dim() - 1))
            out.append(view)
        return out

    def _zeros(self) -> list[torch.Tensor]:
        return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    # ----- state --------------------------------------------------------------------------------

    def _init_state(self) -> None:
        form, hp = self.form, self._hp
        self.c: dict[str, list[torch.Tensor]] = {}  # constant per-member hyperparameters, as views
        if form.base == "sgd":
            self.c["weight_decay"] = self._members(hp("weight_decay"))
            self.c["momentum"] = self._members(hp("momentum"))
            self.state["momentum_buffer"] = self._zeros()
        elif form.base in ("adam", "adamw"):
            self.c["weight_decay"] = self._members(hp("weight_decay"))
            self.c["1-beta1"] = self._members([1 - b for b in hp("beta1")])
            self.c["beta2"] = self._members(hp("beta2"))
            self.c["1-beta2"] = self._members([1 - b for b in hp("beta2")])
            self.state["exp_avg"] = self._zeros()
            self.state["exp_avg_sq"] = self._zeros()

    def _tensors(self) -> list[torch.Tensor]:
        """Everything ``step`` writes with a member dimension: the parameters, then the state."""
        return [*self.params, *(t for ts in self.state.values() for t in ts), *self.member_state.values()]

    def state_dict(self) -> dict[str, Any]:
        """Step counters, the latest LRs, Lookahead's counters and every state tensor (cloned)."""
        return {
            "k": self.k,
            "steps": list(self.steps),
            "latest": [list(lrs) for lrs in self._latest],
            "counters": list(self.counters),
            "state": {name: [t.detach().clone() for t in ts] for name, ts in self.state.items()},
            "member_state": {name: t.detach().clone() for name, t in self.member_state.items()},
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if state_dict["k"] != self.k or set(state_dict["state"]) != set(self.state) \
                or set(state_dict["member_state"]) != set(self.member_state):
            raise ValueError(f"stacked state of {state_dict['k']} members holding {sorted(state_dict['state'])} "
                             f"does not fit this stepper ({self.k} members, {sorted(self.state)})")
        with torch.no_grad():
            for name, ts in self.state.items():
                for t, saved in zip(ts, state_dict["state"][name], strict=True):
                    t.copy_(saved)
            for name, t in self.member_state.items():
                t.copy_(state_dict["member_state"][name])
        self.steps = [int(s) for s in state_dict["steps"]]
        self._latest = [list(lrs) for lrs in state_dict["latest"]]
        self.counters = [int(c) for c in state_dict["counters"]]

    def member(self, i: int) -> MemberStepper:
        """Member ``i``'s view: ``lrs()``, ``diagnostics()``, ``state_dict()`` as its own Stepper has them."""
        return MemberStepper(self, i)

    def lrs(self, i: int) -> list[float]:
        return list(self._latest[i])

    def diagnostics(self, i: int) -> dict[str, float]:
        return {}

    # ----- the step -----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, losses: torch.Tensor, active: Sequence[int] | None = None,
             second_pass: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """One step of every member in ``active``; returns ``losses`` (those of the first pass)."""
        k = self.k
        active = list(range(k)) if active is None else sorted(set(active))
        if not active:
            return losses
        if self.needs_second_pass and second_pass is None:
            raise ValueError(f"this update ({self.form.pre}) needs second_pass: the batched pass at the "
                             "perturbed weights")
        stopped = sorted(set(range(k)).difference(active))
        saved = None
        if stopped:  # computed along with the others, then put back: one code path for every step
            index = torch.tensor(stopped, device=self.device)
            saved = [t[index].clone() for t in self._tensors()]
        lrs = [plan.lrs(self.steps[i]) for i, plan in enumerate(self.plans)]
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            raise ValueError("a stacked parameter has no .grad: run the batched backward before step()")
        self._update(grads, lrs, self.steps[active[0]], losses, second_pass)
        if saved is not None:
            for t, s in zip(self._tensors(), saved, strict=True):
                t[index] = s
        for i in active:
            self.steps[i] += 1
            self._latest[i] = lrs[i]
        return losses

    def _update(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int, losses: torch.Tensor,
                second_pass: Callable[[], torch.Tensor] | None) -> None:
        """One step of the form: ``n`` is the number of steps the running members took before this one."""
        base = self.form.base
        if base == "sgd":
            self._sgd(grads, lrs, n)
        elif base in ("adam", "adamw"):
            self._adam(grads, lrs, n, decoupled=base == "adamw")

    # ----- base updates -------------------------------------------------------------------------

    def _sgd(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int) -> None:
        """torch.optim.SGD (single-tensor path): coupled decay, heavy ball without dampening, p -= lr * d."""
        params = self.params
        d = grads
        if self._any("weight_decay"):
            d = torch._foreach_addcmul(grads, params, self.c["weight_decay"])  # grad.add(param, alpha=wd)
        if self._any("momentum"):
            bufs = self.state["momentum_buffer"]
            if n == 0:  # torch's buffer starts as the first step's d; a member with momentum 0 keeps d
                torch._foreach_copy_(bufs, d)
            else:
                torch._foreach_mul_(bufs, self.c["momentum"])
                torch._foreach_add_(bufs, d)
            d = bufs
        torch._foreach_addcmul_(params, d, self._groups([[-lr for lr in row] for row in lrs]))

    def _adam(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int, decoupled: bool) -> None:
        """torch.optim.Adam / AdamW (single-tensor path, amsgrad off, eps 1e-8)."""
        params, c = self.params, self.c
        exp_avgs, exp_avg_sqs = self.state["exp_avg"], self.state["exp_avg_sq"]
        step = float(n + 1)
        neg_step_size, bc2_sqrt, factors = [], [], []
        for plan, row in zip(self.plans, lrs, strict=True):
            beta1, beta2, wd = plan.config["beta1"], plan.config["beta2"], plan.config["weight_decay"]
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            neg_step_size.append([-(lr / bias_correction1) for lr in row])
            bc2_sqrt.append(bias_correction2**0.5)
            factors.append([1 - lr * wd for lr in row])
        d = grads
        if self._any("weight_decay"):
            if decoupled:
                torch._foreach_mul_(params, self._groups(factors))  # param.mul_(1 - lr * wd)
            else:
                d = torch._foreach_addcmul(grads, params, c["weight_decay"])
        torch._foreach_lerp_(exp_avgs, d, c["1-beta1"])
        torch._foreach_mul_(exp_avg_sqs, c["beta2"])
        torch._foreach_addcmul_(exp_avg_sqs, torch._foreach_mul(d, c["1-beta2"]), d)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, self._members(bc2_sqrt))
        torch._foreach_add_(denom, ADAM_EPS)
        torch._foreach_addcdiv_(params, torch._foreach_mul(exp_avgs, self._groups(neg_step_size)), denom)


class MemberStepper:
    """Member ``i`` of a ``StackedStepper``, shaped like its own ``Stepper`` for the metrics and checkpoints."""

    def __init__(self, stacked: StackedStepper, i: int) -> None:
        self.stacked, self.index = stacked, i

    @property
    def step_count(self) -> int:
        return self.stacked.steps[self.index]

    def lrs(self) -> list[float]:
        """Per layer group, bottom to top: the LR of the member's latest step (before any: the first's)."""
        return self.stacked.lrs(self.index)

    def diagnostics(self) -> dict[str, float]:
        """DALS: the member's phase and mean trust ratio of its latest step; others empty."""
        return self.stacked.diagnostics(self.index)

    def state_dict(self) -> dict[str, Any]:
        """The member's slice of the stacked state: its step counter, LRs and every state tensor."""
        s, i = self.stacked, self.index
        return {
            "step_count": s.steps[i],
            "latest": list(s._latest[i]),
            "counter": s.counters[i],
            "state": {name: [t[i].detach().clone() for t in ts] for name, ts in s.state.items()},
            "member_state": {name: t[i].detach().clone() for name, t in s.member_state.items()},
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Write a ``state_dict()`` of this member back into its slice."""
        s, i = self.stacked, self.index
        with torch.no_grad():
            for name, ts in s.state.items():
                for t, saved in zip(ts, state_dict["state"][name], strict=True):
                    t[i].copy_(saved)
            for name, t in s.member_state.items():
                t[i].copy_(state_dict["member_state"][name])
        s.steps[i] = int(state_dict["step_count"])
        s._latest[i] = list(state_dict["latest"])
        s.counters[i] = int(state_dict["counter"])
