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

Where members differ in whether a setting is zero (weight decay, momentum, Grokfast's lambda, a
DALS-Fast member in phase 0 skipping its filter), the stacked op runs for every member, with 0 for
those whose own update skips it: the same values for finite numbers, not once a member's numbers
are inf or NaN (0 * inf), by which point that member has diverged and its run stops at the next check.

A strategy whose update has no stacked form here (a plugin's own ``make_update``, a paper-code
variant with its own optimizer) gets None from ``stacked_stepper``; the population then steps each
member's own ``Stepper``. Which form applies is decided by ``Strategy.make_update`` alone: the LR
schedule is always each member's own function, so a variant that changes only the schedule keeps
the stacked form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from strategies import registry
from strategies.dals import EMA_DECAY, MAX_STRENGTH, RATIO_MAX, RATIO_MIN
from strategies.hparams import resolve_hparams
from strategies.param_groups import build_param_groups, discriminative_scales
from strategies.registry import Run, Strategy
from strategies.schedules import Scaled, Schedule
from vocab.contracts import SCRATCH

__all__ = ["MemberStepper", "StackedStepper", "has_stacked_form", "stacked_stepper"]

ADAM_EPS = 1e-8  # torch's Adam, AdamW, RAdam and pytorch-optimizer's AdaBound, at their defaults
ADABOUND_GAMMA = 1e-3  # pytorch-optimizer AdaBound's defaults, as registry._adabound builds it
ADABOUND_SQ_EPS = 1e-15
SAM_PERTURB_EPS = 1e-12  # pytorch-optimizer SAM's perturb_eps


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
        r.sgd_update: _Form("sgd"),
        r._adam: _Form("adam"),
        r.adamw_update: _Form("adamw"),
        r._radam: _Form("radam"),
        r._adabound: _Form("adabound"),
        r._lion: _Form("lion"),
        r._lars: _Form("lars"),
        r._grokfast: _Form("sgd", pre="grokfast"),
        r._lookahead_adamw: _Form("adamw", lookahead=True),
        r._sam: _Form("sgd", pre="sam"),
        r._dals: _Form("dals", dals=(0.3, 0.3, False)),  # DALS's own defaults
        r._dals_fast: _Form("dals", dals=(0.3, 0.3, True)),
        r._dals_acc: _Form("dals", dals=(0.4, 0.15, False)),
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
    run = Run(int(total_steps), int(steps_per_epoch), regime)
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
    member's ``lrs()`` stay those of its last step. The update may overwrite the stacks' ``.grad``
    (as LARS and DALS do theirs): the next batched pass recomputes them.
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
        self._workspace: list[list[torch.Tensor]] = []
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

    def _members(self, values: Sequence[float] | torch.Tensor) -> list[torch.Tensor]:
        """One value per member (a list, or a (K,) tensor) as a ``(K, 1, ...)`` view per parameter."""
        x = values if isinstance(values, torch.Tensor) else self._tensor(values)
        by_dim: dict[int, torch.Tensor] = {}
        out = []
        for p in self.params:
            view = by_dim.get(p.dim())
            if view is None:
                view = by_dim[p.dim()] = x.view((self.k,) + (1,) * (p.dim() - 1))
            out.append(view)
        return out

    def _groups(self, rows: Sequence[Sequence[float]] | torch.Tensor) -> list[torch.Tensor]:
        """One value per (member, group), ``rows[member][group]`` or a (G, K) tensor, as a ``(K, 1, ...)``
        view per parameter."""
        x = rows if isinstance(rows, torch.Tensor) else self._tensor([list(c) for c in zip(*rows, strict=True)])
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

    def _work(self, j: int) -> list[torch.Tensor]:
        """Scratch tensor set ``j``, one per parameter, kept between steps: a fresh (K, ...) temporary per
        step would cost more (allocation and first touch) than the arithmetic written into it."""
        while len(self._workspace) <= j:
            self._workspace.append([torch.empty_like(p, memory_format=torch.preserve_format) for p in self.params])
        return self._workspace[j]

    # ----- state --------------------------------------------------------------------------------

    def _init_state(self) -> None:
        form, hp = self.form, self._hp
        self.c: dict[str, list[torch.Tensor]] = {}  # constant per-member hyperparameters, as views
        if form.base == "sgd":
            self.c["weight_decay"] = self._members(hp("weight_decay"))
            self.c["momentum"] = self._members(hp("momentum"))
            self.state["momentum_buffer"] = self._zeros()
        elif form.base in ("adam", "adamw", "radam", "adabound", "lion"):
            self.c["weight_decay"] = self._members(hp("weight_decay"))
            self.c["1-beta1"] = self._members([1 - b for b in hp("beta1")])
            self.c["beta2"] = self._members(hp("beta2"))
            self.c["1-beta2"] = self._members([1 - b for b in hp("beta2")])
            self.state["exp_avg"] = self._zeros()
            if form.base != "lion":
                self.state["exp_avg_sq"] = self._zeros()
        elif form.base == "lars":
            self.c["weight_decay"] = self._members(hp("weight_decay"))
            self.c["momentum"] = self._members(hp("momentum"))
            self.trust_coef = self._tensor(hp("trust_coef"))  # (K,), against (T, K) norms
            self.state["momentum_buffer"] = self._zeros()
        elif form.base == "dals":
            self.c["weight_decay"] = self._members(hp("weight_decay"))
            self.c["momentum"] = self._members(hp("momentum"))
            f64 = dict(dtype=torch.float64, device=self.device)
            for name in ("trust_coef", "filter_alpha", "th1", "th2"):
                setattr(self, name, torch.tensor(hp(name), **f64))
            self.one_minus_blend = torch.tensor([1.0 - (0.3 + 0.4 * d) for d in self.depths], **f64)  # (G,)
            self.state["filter"] = self._zeros()
            self.state["momentum_buffer"] = self._zeros()
            self.member_state["loss_ema"] = torch.zeros(self.k, **f64)
            self.member_state["phase"] = torch.zeros(self.k, dtype=torch.int64, device=self.device)
            self.member_state["trust_ratio"] = torch.ones(self.k, **f64)
        if form.pre == "sam":
            self.rho = self._tensor(hp("rho"))  # (K,)
        if form.pre == "grokfast":
            self.c["1-grok_alpha"] = self._members([1.0 - a for a in hp("grok_alpha")])
            self.c["grok_lambda"] = self._members(hp("grok_lambda"))
            self.state["grokfast_ema"] = self._zeros()
        if form.lookahead:
            self.c["1-lookahead_alpha"] = self._members([1.0 - a for a in hp("lookahead_alpha")])
            self.state["slow_params"] = [p.detach().clone() for p in self.params]  # Lookahead's, at build time

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
        if self.form.base != "dals":
            return {}
        state = self.member_state
        return {"phase": float(state["phase"][i]), "trust_ratio": float(state["trust_ratio"][i])}

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
        self._update(grads, lrs, self.steps[active[0]], active, losses, second_pass)
        if saved is not None:
            for t, s in zip(self._tensors(), saved, strict=True):
                t[index] = s
        for i in active:
            self.steps[i] += 1
            self._latest[i] = lrs[i]
        return losses

    def _update(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int, active: list[int],
                losses: torch.Tensor, second_pass: Callable[[], torch.Tensor] | None) -> None:
        """One step of the form: ``n`` is the number of steps the running members took before this one."""
        form = self.form
        if form.pre == "grokfast":
            self._grokfast(grads, n)
        elif form.pre == "sam":
            grads = self._sam(grads, second_pass)
        base = form.base
        if base == "sgd":
            self._sgd(grads, lrs, n)
        elif base in ("adam", "adamw"):
            self._adam(grads, lrs, n, decoupled=base == "adamw")
        elif base == "radam":
            self._radam(grads, lrs, n)
        elif base == "adabound":
            self._adabound(grads, lrs, n)
        elif base == "lion":
            self._lion(grads, lrs)
        elif base == "lars":
            self._lars(grads, lrs)
        elif base == "dals":
            self._dals(grads, lrs, n, losses)
        if form.lookahead:
            self._lookahead(active)

    # ----- gradient stages and Lookahead --------------------------------------------------------

    def _grokfast(self, grads: list[torch.Tensor], n: int) -> None:
        """pytorch-optimizer's gradfilter_ema in the grads' storage: EMA from the first gradient, g += lam EMA."""
        ema = self.state["grokfast_ema"]
        if n == 0:
            torch._foreach_copy_(ema, grads)
        else:
            torch._foreach_lerp_(ema, grads, self.c["1-grok_alpha"])
        torch._foreach_addcmul_(grads, ema, self.c["grok_lambda"])  # p.grad.add_(ema, alpha=lamb)

    def _sam(self, grads: list[torch.Tensor], second_pass: Callable[[], torch.Tensor]) -> list[torch.Tensor]:
        """pytorch-optimizer's SAM with ``adaptive=True`` (ASAM): each member's weights move to w + e(w), one
        batched pass takes the gradients there, the weights come back; returns those gradients.

        e(w) = w^2 g rho / (||g |w|||_2 + 1e-12), the norm over all of a member's tensors.
        """
        params, work, old = self.params, self._work(0), self._work(1)
        for p, w in zip(params, work, strict=True):
            torch.abs(p, out=w)
        torch._foreach_mul_(work, grads)  # p.grad * p.abs()
        squared = self._norms(work).square().t().contiguous()  # (K, T): each member's sum as SAM's
        grad_norm = squared.sum(dim=1).sqrt_().add_(SAM_PERTURB_EPS)
        scale = grad_norm.reciprocal() * self.rho  # rho / grad_norm, a float over a tensor
        for p, w in zip(params, work, strict=True):
            torch.pow(p, 2, out=w)
        torch._foreach_mul_(work, grads)
        torch._foreach_mul_(work, self._members(scale))
        torch._foreach_copy_(old, params)
        torch._foreach_add_(params, work)
        with torch.enable_grad():
            second_pass()
        torch._foreach_copy_(params, old)
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            raise ValueError("second_pass() left a stacked parameter without .grad")
        return grads

    def _lookahead(self, active: list[int]) -> None:
        """pytorch-optimizer's Lookahead: a member's every k-th step, its weights lerp toward the slow ones."""
        hits = []
        for i in active:
            self.counters[i] += 1
            if self.counters[i] >= self.plans[i].config["lookahead_k"]:
                self.counters[i] = 0
                hits.append(i)
        if not hits:
            return
        params, slow, weight = self.params, self.state["slow_params"], self.c["1-lookahead_alpha"]
        if hits == active:  # a stopped member's slice is put back after the step
            torch._foreach_lerp_(params, slow, weight)
            torch._foreach_copy_(slow, params)
            return
        index = torch.tensor(hits, device=self.device)
        for p, s, w in zip(params, slow, weight, strict=True):
            moved = p[index].lerp_(s[index], w[index])
            p[index] = moved
            s[index] = moved

    # ----- base updates -------------------------------------------------------------------------

    def _sgd(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int) -> None:
        """torch.optim.SGD (single-tensor path): coupled decay, heavy ball without dampening, p -= lr * d."""
        params = self.params
        d = grads
        if self._any("weight_decay"):  # grad.add(param, alpha=wd), in the grad's storage
            torch._foreach_addcmul_(grads, params, self.c["weight_decay"])
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
            else:  # grad.add(param, alpha=wd), in the grad's storage
                torch._foreach_addcmul_(grads, params, c["weight_decay"])
        self._moments(d)
        denom, scaled = self._work(0), self._work(1)
        for v, w in zip(exp_avg_sqs, denom, strict=True):
            torch.sqrt(v, out=w)
        torch._foreach_div_(denom, self._members(bc2_sqrt))
        torch._foreach_add_(denom, ADAM_EPS)
        for m, w, s in zip(exp_avgs, scaled, self._groups(neg_step_size), strict=True):
            torch.mul(m, s, out=w)  # addcdiv_(exp_avg, denom, value=-step_size): value * exp_avg first
        torch._foreach_addcdiv_(params, scaled, denom)

    def _moments(self, d: list[torch.Tensor]) -> None:
        """Adam's two moments: exp_avg.lerp_(d, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(d, d, value=1 - beta2)."""
        c, work = self.c, self._work(0)
        torch._foreach_lerp_(self.state["exp_avg"], d, c["1-beta1"])
        torch._foreach_mul_(self.state["exp_avg_sq"], c["beta2"])
        for g, v, w in zip(d, c["1-beta2"], work, strict=True):
            torch.mul(g, v, out=w)
        torch._foreach_addcmul_(self.state["exp_avg_sq"], work, d)


    def _radam(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int) -> None:
        """torch.optim.RAdam (single-tensor path, coupled decay): rectified where rho_t > 5, per member."""
        params, c = self.params, self.c
        exp_avgs, exp_avg_sqs = self.state["exp_avg"], self.state["exp_avg_sq"]
        step = float(n + 1)
        bc1, bc2_sqrt, rects, rectified = [], [], [], []
        for plan in self.plans:
            beta1, beta2 = plan.config["beta1"], plan.config["beta2"]
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
            rectified.append(rho_t > 5.0)
            rects.append(((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                         if rho_t > 5.0 else 1.0)
            bc1.append(bias_correction1)
            bc2_sqrt.append(bias_correction2**0.5)
        d = grads
        if self._any("weight_decay"):  # grad.add(param, alpha=wd), in the grad's storage
            torch._foreach_addcmul_(grads, params, c["weight_decay"])
        self._moments(d)
        update, adaptive = self._work(1), self._work(0)
        for m, w, b in zip(exp_avgs, update, self._members(bc1), strict=True):
            torch.div(m, b, out=w)  # bias_corrected_exp_avg
        torch._foreach_mul_(update, self._groups(lrs))
        if any(rectified):
            for v, w in zip(exp_avg_sqs, adaptive, strict=True):
                torch.sqrt(v, out=w)
            torch._foreach_add_(adaptive, ADAM_EPS)
            torch._foreach_reciprocal_(adaptive)  # (bc2 ** 0.5) / denom is denom.reciprocal() * bc2 ** 0.5
            torch._foreach_mul_(adaptive, self._members(bc2_sqrt))
            torch._foreach_mul_(adaptive, update)  # (bias_corrected * lr) * adaptive
            torch._foreach_mul_(adaptive, self._members(rects))
            if all(rectified):
                update = adaptive
            else:
                mask = self._members(torch.tensor(rectified, device=self.device))
                for m, a, u in zip(mask, adaptive, update, strict=True):
                    torch.where(m, a, u, out=u)
        torch._foreach_add_(params, update, alpha=-1.0)

    def _adabound(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int) -> None:
        """pytorch-optimizer's AdaBound (foreach path), coupled decay (``weight_decouple=False``), gamma 1e-3."""
        params, c = self.params, self.c
        exp_avgs, exp_avg_sqs = self.state["exp_avg"], self.state["exp_avg_sq"]
        step = n + 1
        step_sizes, lowers, uppers = [], [], []
        for plan, row in zip(self.plans, lrs, strict=True):
            beta1, beta2 = plan.config["beta1"], plan.config["beta2"]
            bias_correction1 = 1.0 - math.pow(beta1, step)
            bias_correction2_sq = math.sqrt(1.0 - math.pow(beta2, step))
            sizes, low, high = [], [], []
            for lr, base_lr in zip(row, plan.peaks, strict=True):  # AdaBound's base_lrs: the peaks it is built at
                final_lr = plan.config["final_lr"] * lr / base_lr if base_lr > 0.0 else 0.0
                low.append(final_lr * (1 - 1 / (ADABOUND_GAMMA * step + 1)))
                high.append(final_lr * (1 + 1 / (ADABOUND_GAMMA * step)))
                sizes.append(lr * bias_correction2_sq / bias_correction1)
            step_sizes.append(sizes)
            lowers.append(low)
            uppers.append(high)
        if self._any("weight_decay"):
            torch._foreach_addcmul_(grads, params, c["weight_decay"])  # _foreach_add_(grads, params, alpha=wd)
        self._moments(grads)
        updates = self._work(0)
        for v, w in zip(exp_avg_sqs, updates, strict=True):
            torch.add(v, ADABOUND_SQ_EPS, out=w)
        torch._foreach_sqrt_(updates)
        torch._foreach_add_(updates, ADAM_EPS)
        for w, size in zip(updates, self._groups(step_sizes), strict=True):
            torch.div(size, w, out=w)  # step_size / de_nom
        torch._foreach_clamp_min_(updates, self._groups(lowers))
        torch._foreach_clamp_max_(updates, self._groups(uppers))
        torch._foreach_mul_(updates, exp_avgs)
        torch._foreach_sub_(params, updates)

    def _lion(self, grads: list[torch.Tensor], lrs: list[list[float]]) -> None:
        """pytorch-optimizer's Lion (foreach path): decoupled decay, sign of the interpolated momentum."""
        params, c = self.params, self.c
        exp_avgs = self.state["exp_avg"]
        if self._any("weight_decay"):
            factors = [[1.0 - plan.config["weight_decay"] * lr for lr in row]
                       for plan, row in zip(self.plans, lrs, strict=True)]
            torch._foreach_mul_(params, self._groups(factors))
        updates = self._work(0)
        for m, g, w, weight in zip(exp_avgs, grads, updates, c["1-beta1"], strict=True):
            torch.lerp(m, g, weight, out=w)
        torch._foreach_sign_(updates)
        torch._foreach_lerp_(exp_avgs, grads, c["1-beta2"])
        torch._foreach_addcmul_(params, updates, self._groups([[-lr for lr in row] for row in lrs]))

    def _norms(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """Each member's L2 norm of each tensor, ``(T, K)``."""
        return torch.stack([torch.linalg.vector_norm(t, dim=tuple(range(1, t.dim()))) if t.dim() > 1
                            else t.abs() for t in tensors])

    def _lars(self, grads: list[torch.Tensor], lrs: list[list[float]]) -> None:
        """strategies.lars.LARS: g_hat = g + wd p, r = c ||p|| / ||g_hat|| (1 if a norm is 0), momentum on r g_hat."""
        params, c = self.params, self.c
        torch._foreach_addcmul_(grads, params, c["weight_decay"])  # g_hat, in the grad's storage
        p_norm, g_norm = self._norms(params), self._norms(grads)
        ratio = torch.where((p_norm > 0) & (g_norm > 0), self.trust_coef * p_norm / g_norm, 1.0)
        torch._foreach_mul_(grads, [r.view((self.k,) + (1,) * (g.dim() - 1)) for r, g in zip(ratio, grads,
                                                                                              strict=True)])
        self._ratios = ratio  # (T, K), averaged per layer group only when logged
        bufs = self.state["momentum_buffer"]
        torch._foreach_mul_(bufs, c["momentum"])
        torch._foreach_add_(bufs, grads)
        torch._foreach_addcmul_(params, bufs, self._groups([[-lr for lr in row] for row in lrs]))


    def _dals_phase(self, losses: torch.Tensor, n: int) -> None:
        """DALS step 1 per member: loss EMA and phase (float64, as DALS's Python floats; NaN gives phase 2)."""
        state = self.member_state
        loss = losses.detach().to(device=self.device, dtype=torch.float64)
        ema = state["loss_ema"]
        if n == 0:  # DALS's first step: the EMA starts at the loss, the phase stays 0
            ema.copy_(loss)
            return
        old = ema.clone()
        new = EMA_DECAY * old + (1.0 - EMA_DECAY) * loss
        ema.copy_(new)
        size = old.abs()
        delta = (old - new) / torch.where(1e-8 > size, 1e-8, size)  # max(abs(old), 1e-8), NaN kept
        state["phase"].copy_(torch.where(delta > self.th1, 0, torch.where(delta > self.th2, 1, 2)))

    def _dals(self, grads: list[torch.Tensor], lrs: list[list[float]], n: int, losses: torch.Tensor) -> None:
        """strategies.dals.DALS, each member with its own phase, filter strength and per-tensor trust ratio.

        A DALS-Fast member in phase 0 skips the filter: its two lerps run with weight 0, which leaves
        the filter and the gradient as they are (for finite values, as DALS's skipping does).
        """
        self._dals_phase(losses, n)
        floor, drop, bypass = self.form.dals
        phase, fa = self.member_state["phase"], self.filter_alpha
        # DALS._strength: max(floor, a0 - drop), a0, min(0.9, a0 + 0.1), Python's max/min
        low, high = fa - drop, fa + 0.1
        strength = torch.where(phase == 0, torch.where(low > floor, low, floor),
                               torch.where(phase == 1, fa, torch.where(high < MAX_STRENGTH, high,
                                                                         MAX_STRENGTH)))
        keep = 1.0 - strength  # (K,)
        blend = self.one_minus_blend.unsqueeze(1).expand(self.num_groups, self.k)  # (G, K)
        if bypass:
            skip = phase == 0
            keep = torch.where(skip, 0.0, keep)
            blend = torch.where(skip, 0.0, blend)
        params, c = self.params, self.c
        filters, bufs = self.state["filter"], self.state["momentum_buffer"]
        torch._foreach_lerp_(filters, grads, self._members(keep.to(self.dtype)))  # f = a f + (1 - a) g
        torch._foreach_lerp_(grads, filters, self._groups(blend.to(self.dtype)))  # g_hat = b g + (1 - b) f
        torch._foreach_addcmul_(grads, params, c["weight_decay"])  # g_hat += wd p
        p_norm = self._norms(params).to(torch.float64)
        g_norm = self._norms(grads).to(torch.float64)
        ratio = self.trust_coef * p_norm / g_norm
        ratio = torch.where(ratio > RATIO_MIN, ratio, RATIO_MIN)  # max(0.2, .)
        ratio = torch.where(ratio < RATIO_MAX, ratio, RATIO_MAX)  # min(5, .)
        ratio = torch.where((p_norm > 0.0) & (g_norm > 0.0), ratio, 1.0)  # (T, K)
        neg_lr = torch.tensor([[-row[g] for row in lrs] for g in self.group_of], dtype=torch.float64,
                              device=self.device)
        alphas = (neg_lr * ratio).to(self.dtype)  # -lr * r, as DALS's Python float
        for p, g, m, mu, alpha in zip(params, grads, bufs, c["momentum"], alphas, strict=True):
            torch.addcmul(g, m, mu, out=m)  # m = mu m + g_hat (torch.add(g, m, alpha=mu, out=m))
            p.addcmul_(m, alpha.view((self.k,) + (1,) * (p.dim() - 1)))
        self.member_state["trust_ratio"].copy_(ratio.cumsum(0)[-1] / len(params))  # sum(ratios) / len(ratios)
        self._ratios = ratio

    def layer_diagnostics(self, i: int) -> dict[str, list[float]]:
        """DALS and LARS: member ``i``'s mean trust ratio per layer group of the latest step; others empty."""
        ratios = getattr(self, "_ratios", None)
        if ratios is None:
            return {}
        mine = ratios[:, i].tolist()
        sums, counts = [0.0] * self.num_groups, [0] * self.num_groups
        for g, r in zip(self.group_of, mine, strict=True):
            sums[g] += r
            counts[g] += 1
        return {"trust_ratio": [s / n if n else 1.0 for s, n in zip(sums, counts, strict=True)]}


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

    def layer_diagnostics(self) -> dict[str, list[float]]:
        """DALS and LARS: the member's mean trust ratio per layer group of its latest step; others empty."""
        return self.stacked.layer_diagnostics(self.index)

    def evaluating(self) -> AbstractContextManager[None]:
        """A stacked update scores at the weights it trains (none has an averaged point to swap in)."""
        return nullcontext()

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
