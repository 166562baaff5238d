"""Stacked updates (strategies/stacked.py) against each member's own Stepper.

Every built-in strategy, K = 4 members with their own random hyperparameters, the same random
parameters and gradients both ways: after every step the stacked parameters equal each member's
own to 1e-6 relative (on the CPU they agree to the last bit: the stacked update repeats each
library's operations in their order, and a broadcast per-member operand rounds as the scalar does),
and so do the LRs, DALS's phase sequence and trust ratio.

Where agreement is looser, and why (named in the tests that loosen it):
- The 300-step trajectories on a real MLP agree to 1e-5: they are chaotic maps, in which a
  last-bit difference, if one ever arose, would grow; on the CPU they come out equal.
"""

from __future__ import annotations

import io
import math
import random

import pytest
import torch
from torch.nn import functional as F

import strategies
from strategies import get_strategy, list_strategies
from strategies.stacked import has_stacked_form, stacked_stepper

K = 4
STEPS = 40
STEPS_PER_EPOCH = 2  # restarts every few "epochs" fall inside the run
SHAPES = [[(6, 5), (6,)], [(7, 6), (7,)], [(3, 7), (3,)]]  # three layer groups, bottom to top
BIG = [[(260, 256), (260,)]]  # one tensor of 2**16 elements or more: DALS's per-tensor path on the CPU
BUILT_IN = [s.name for s in list_strategies() if has_stacked_form(s)]  # Muon, SOAP, Schedule-Free, Prodigy: none


def _sample(strategy, rng: random.Random, member: int) -> dict:
    """Random hyperparameters inside sensible ranges; member 0 has zero weight decay and (where it has
    one) zero Grokfast lambda, member 1 zero momentum, so that mixed zero/non-zero settings are covered;
    Lookahead's k differs between members, so its slow-weight steps fall on different steps."""
    family = strategy.family
    lo_lr, hi_lr = {"sgd": (0.005, 0.1), "dals": (0.01, 0.1), "adam": (1e-4, 3e-3)}[family]
    if strategy.name == "lion":
        lo_lr, hi_lr = 1e-5, 3e-4
    ranges = {
        "lr": lambda: math.exp(rng.uniform(math.log(lo_lr), math.log(hi_lr))),
        "momentum": lambda: rng.uniform(0.5, 0.95),
        "weight_decay": lambda: rng.uniform(1e-4, 1e-2),
        "beta1": lambda: rng.uniform(0.8, 0.95),
        "beta2": lambda: rng.choice([rng.uniform(0.9, 0.99), rng.uniform(0.99, 0.9999)]),
        "trust_coef": lambda: rng.uniform(0.005, 0.1),
        "filter_alpha": lambda: rng.uniform(0.4, 0.85),
        "th1": lambda: rng.uniform(0.008, 0.015),
        "th2": lambda: rng.uniform(0.001, 0.003),
        "warmup_frac": lambda: rng.uniform(0.02, 0.2),
        "T_0_epochs": lambda: rng.randint(2, 5),
        "T_mult": lambda: rng.randint(1, 2),
        "final_lr": lambda: rng.uniform(0.005, 0.05),
        "decay_factor": lambda: rng.uniform(1.5, 3.0),
        "cut_frac": lambda: rng.uniform(0.05, 0.3),
        "ratio": lambda: rng.uniform(8.0, 64.0),
        "rho": lambda: rng.uniform(0.01, 0.1),
        "grok_alpha": lambda: rng.uniform(0.8, 0.99),
        "grok_lambda": lambda: rng.uniform(0.1, 2.0),
        "lookahead_k": lambda: rng.randint(2, 6),
        "lookahead_alpha": lambda: rng.uniform(0.3, 0.8),
    }
    hp = {spec.name: ranges[spec.name]() for spec in strategy.hparams if spec.name in ranges}
    if member == 0:
        hp.update({name: 0.0 for name in ("weight_decay", "grok_lambda") if name in hp})
    if member == 1 and "momentum" in hp:
        hp["momentum"] = 0.0
    if member == 3 and strategy.name == "radam":
        hp["beta2"] = 0.6  # rho_inf = 4: never rectified while the others are (per-member branch)
    return hp


def _params(shapes, seed: int) -> list[list[torch.Tensor]]:
    """K members' initial parameters, ``[member][flat index]``."""
    g = torch.Generator().manual_seed(seed)
    flat = [shape for group in shapes for shape in group]
    return [[torch.randn(shape, generator=g) * 0.5 for shape in flat] for _ in range(K)]


def _grouped(flat: list, shapes) -> list[list]:
    out, i = [], 0
    for group in shapes:
        out.append(flat[i:i + len(group)])
        i += len(group)
    return out


def _losses(steps: int, seed: int) -> torch.Tensor:
    """(steps, K) float32 losses whose EMA moves DALS through phases 0, 1 and 2 and back: segments of
    fast decrease (the loss at half its EMA), slow decrease (0.9) and increase (1.05)."""
    rng = random.Random(seed)
    out = torch.empty(steps, K)
    for k in range(K):
        ema = 2.0 + k
        for t in range(steps):
            ratio = (0.5, 0.9, 1.05)[(t // 7 + k) % 3] * rng.uniform(0.98, 1.02)
            loss = ema * ratio
            out[t, k] = loss
            ema = 0.95 * ema + 0.05 * float(out[t, k])
    return out


class _Pair:
    """One strategy run both ways: K solo Steppers on plain tensors, and one stacked stepper."""

    def __init__(self, name: str, shapes=SHAPES, seed: int = 0, steps: int = STEPS, regime: str = "scratch",
                 hparams=None) -> None:
        self.strategy = get_strategy(name)
        self.shapes, self.steps = shapes, steps
        rng = random.Random(seed)
        self.hparams = hparams or [_sample(self.strategy, rng, k) for k in range(K)]
        init = _params(shapes, seed)
        self.solo = [[torch.nn.Parameter(t.clone()) for t in member] for member in init]
        self.steppers = [self.strategy.build(_grouped(ps, shapes), hp, steps, STEPS_PER_EPOCH, regime=regime)
                         for ps, hp in zip(self.solo, self.hparams, strict=True)]
        self.stack = [torch.stack([init[k][j] for k in range(K)]).requires_grad_(True)
                      for j in range(len(init[0]))]
        self.stacked = stacked_stepper(self.strategy, _grouped(self.stack, shapes), self.hparams, steps,
                                       STEPS_PER_EPOCH, regime=regime)
        assert self.stacked is not None
        g = torch.Generator().manual_seed(seed + 1)
        # Per step, two gradient draws per tensor (SAM's second pass uses the second), one slice per member.
        self.draws = [[[torch.randn(p.shape, generator=g) for p in self.stack] for _ in range(2)]
                      for _ in range(steps)]
        self.losses = _losses(steps, seed)

    @staticmethod
    def _grad(draw: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        # Depends on the weights, so that SAM's second pass sees its perturbation.
        return draw + 0.5 * p.detach()

    def step_solo(self, t: int, members=range(K)) -> None:
        for k in members:
            calls = []

            def closure(k=k, calls=calls):
                draws = self.draws[t][len(calls)]
                calls.append(None)
                for j, p in enumerate(self.solo[k]):
                    p.grad = self._grad(draws[j][k], p)
                return self.losses[t, k].clone()

            self.steppers[k].step(closure)

    def step_stacked(self, t: int, active=None) -> None:
        calls = []

        def gradients():
            draws = self.draws[t][len(calls)]
            calls.append(None)
            for j, p in enumerate(self.stack):
                p.grad = self._grad(draws[j], p)
            return self.losses[t].clone()

        self.stacked.step(gradients(), active=active, second_pass=gradients)

    def assert_equal(self, t: int, rtol: float = 1e-6) -> None:
        for k in range(K):
            for j, p in enumerate(self.solo[k]):
                torch.testing.assert_close(self.stack[j].detach()[k], p.detach(), rtol=rtol, atol=1e-12,
                                           msg=lambda m, k=k, j=j: f"step {t}, member {k}, tensor {j}: {m}")
            member = self.stacked.member(k)
            assert member.lrs() == pytest.approx(self.steppers[k].lrs(), rel=1e-12, abs=0), (t, k)
            want = self.steppers[k].diagnostics()
            got = member.diagnostics()
            assert set(got) == set(want), (t, k)
            if "phase" in want:
                assert got["phase"] == want["phase"], (t, k)
                assert got["trust_ratio"] == pytest.approx(want["trust_ratio"], rel=1e-6), (t, k)


def test_the_papers_strategies_and_the_two_new_schedules_have_a_stacked_form():
    assert BUILT_IN == [s.name for s in list_strategies(selection="paper")] + ["adamw_wsd", "onecycle_sgd"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_stacked_update_equals_each_members_own_stepper(name):
    shapes = SHAPES + BIG if name.startswith("dals") else SHAPES
    pair = _Pair(name, shapes=shapes)
    phases = []
    for t in range(pair.steps):
        pair.step_solo(t)
        pair.step_stacked(t)
        pair.assert_equal(t)
        phases.append([pair.steppers[k].diagnostics().get("phase") for k in range(K)])
    if name.startswith("dals"):  # the losses moved every member through all three phases
        for k in range(K):
            assert {p[k] for p in phases} == {0.0, 1.0, 2.0}, (k, [p[k] for p in phases])


@pytest.mark.parametrize("name", BUILT_IN)
def test_stopped_members_keep_their_weights_state_and_lrs(name):
    """Members 1 and 3 stop after step 15 (a diverged member's run ends): the others go on as alone."""
    pair = _Pair(name, steps=24)
    for t in range(pair.steps):
        active = range(K) if t < 15 else [0, 2]
        pair.step_solo(t, members=active)
        pair.step_stacked(t, active=list(active))
        pair.assert_equal(t)
    assert [pair.stacked.member(k).step_count for k in range(K)] == [24, 15, 24, 15]


def _stacked_run(name: str, hparams, init, steps: int, total: int):
    strategy = get_strategy(name)
    stack = [t.clone().requires_grad_(True) for t in init]
    return stack, stacked_stepper(strategy, _grouped(stack, SHAPES), hparams, total, STEPS_PER_EPOCH)


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_restored_stacked_stepper_goes_on_as_one_never_interrupted(name):
    pair = _Pair(name, steps=30)  # for its hyperparameters, gradients and losses
    init = [p.detach().clone() for p in pair.stack]

    def run(stack, stepper, steps):
        for t in steps:
            calls = []

            def gradients(t=t, calls=calls):
                draws = pair.draws[t][len(calls)]
                calls.append(None)
                for j, p in enumerate(stack):
                    p.grad = _Pair._grad(draws[j], p)
                return pair.losses[t].clone()

            stepper.step(gradients(), second_pass=gradients)

    whole, whole_stepper = _stacked_run(name, pair.hparams, init, 30, 30)
    run(whole, whole_stepper, range(30))
    first, first_stepper = _stacked_run(name, pair.hparams, init, 30, 30)
    run(first, first_stepper, range(10))
    buffer = io.BytesIO()
    torch.save({"stepper": first_stepper.state_dict(), "params": [p.detach() for p in first]}, buffer)
    saved = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    resumed, resumed_stepper = _stacked_run(name, pair.hparams, saved["params"], 30, 30)
    resumed_stepper.load_state_dict(saved["stepper"])
    run(resumed, resumed_stepper, range(10, 30))
    for a, b in zip(resumed, whole, strict=True):
        assert torch.equal(a.detach(), b.detach())
    for k in range(K):
        assert resumed_stepper.member(k).lrs() == whole_stepper.member(k).lrs()
        assert resumed_stepper.member(k).diagnostics() == whole_stepper.member(k).diagnostics()
        assert resumed_stepper.member(k).step_count == 30


def test_a_members_state_dict_is_its_slice_and_loads_back():
    pair = _Pair("adam", steps=5)
    for t in range(5):
        pair.step_stacked(t)
    member = pair.stacked.member(2)
    sd = member.state_dict()
    assert sd["step_count"] == 5
    assert torch.equal(sd["state"]["exp_avg"][0], pair.stacked.state["exp_avg"][0][2])
    with torch.no_grad():
        pair.stacked.state["exp_avg"][0][2].zero_()
    member.load_state_dict(sd)
    assert torch.equal(pair.stacked.state["exp_avg"][0][2], sd["state"]["exp_avg"][0])


# ----- a real MLP -----------------------------------------------------------------------------------

WIDTHS = (8, 16, 16, 4)
MLP_STEPS, MLP_STEPS_PER_EPOCH, BATCH = 300, 10, 32


def _mlp_data():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(320, WIDTHS[0], generator=g)
    y = (x[:, :WIDTHS[-1]] + 0.3 * torch.randn(320, WIDTHS[-1], generator=g)).argmax(dim=1)
    return x, y


def _mlp_loss(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = x
    for i in range(0, len(params), 2):
        h = F.linear(h, params[i], params[i + 1])
        if i + 2 < len(params):
            h = torch.relu(h)
    return F.cross_entropy(h, y)


# The paper's 18: adamw_wsd and onecycle_sgd are the same AdamW and SGD forms, their schedules covered above.
@pytest.mark.parametrize("name", [s.name for s in list_strategies(selection="paper")])
def test_300_steps_on_a_real_mlp_agree(name):
    """Real losses and gradients of a 8-16-16-4 MLP; each member its own initial weights and batches.

    Tolerance 1e-5 (the per-step tests' 1e-6 would hold too on the CPU, where both ways agree to the
    last bit): a 300-step trajectory is a chaotic map that would grow any last-bit difference.
    """
    strategy = get_strategy(name)
    rng = random.Random(3)
    hparams = [_sample(strategy, rng, k) for k in range(K)]
    x, y = _mlp_data()
    init = []
    for k in range(K):
        torch.manual_seed(100 + k)
        layers = [torch.nn.Linear(a, b) for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=True)]
        init.append([t.detach().clone() for layer in layers for t in (layer.weight, layer.bias)])
    shapes = [[tuple(init[0][i].shape), tuple(init[0][i + 1].shape)] for i in range(0, len(init[0]), 2)]
    solo = [[torch.nn.Parameter(t.clone()) for t in member] for member in init]
    steppers = [strategy.build(_grouped(ps, shapes), hp, MLP_STEPS, MLP_STEPS_PER_EPOCH)
                for ps, hp in zip(solo, hparams, strict=True)]
    stack = [torch.stack([init[k][j] for k in range(K)]).requires_grad_(True) for j in range(len(init[0]))]
    stacked = stacked_stepper(strategy, _grouped(stack, shapes), hparams, MLP_STEPS, MLP_STEPS_PER_EPOCH)
    orders = [torch.Generator().manual_seed(k) for k in range(K)]
    for t in range(MLP_STEPS):
        rows = [torch.randint(0, len(x), (BATCH,), generator=orders[k]) for k in range(K)]
        solo_losses = []
        for k in range(K):
            def closure(k=k, rows=rows):
                for p in solo[k]:
                    p.grad = None
                loss = _mlp_loss(solo[k], x[rows[k]], y[rows[k]])
                loss.backward()
                return loss

            solo_losses.append(float(steppers[k].step(closure).detach()))

        def batched(rows=rows):
            for p in stack:
                p.grad = None
            members = [list(ts) for ts in zip(*(p.unbind(0) for p in stack), strict=True)]
            losses = torch.stack([_mlp_loss(members[k], x[rows[k]], y[rows[k]]) for k in range(K)])
            losses.sum().backward()
            return losses.detach()

        losses = stacked.step(batched(), second_pass=batched)
        assert losses.tolist() == pytest.approx(solo_losses, rel=1e-5, abs=1e-6), t
        for k in range(K):
            for j, p in enumerate(solo[k]):
                torch.testing.assert_close(stack[j].detach()[k], p.detach(), rtol=1e-5, atol=1e-7)
            assert stacked.member(k).diagnostics().get("phase") == steppers[k].diagnostics().get("phase")
    assert all(math.isfinite(v) for v in solo_losses)


# ----- what has no stacked form -------------------------------------------------------------------

def test_a_plugin_update_or_a_paper_code_optimizer_has_no_stacked_form():
    import dataclasses

    def own_update(groups, hp, run):
        return torch.optim.SGD(groups, lr=hp["lr"])

    plugin = dataclasses.replace(get_strategy("fixed_sgd"), name="plugin_sgd_test", make_update=own_update)
    stack = [torch.zeros(K, 3, requires_grad=True)]
    assert stacked_stepper(plugin, [stack], [{}] * K, 10, 2) is None
    assert stacked_stepper(get_strategy("lars@paper_code"), [stack], [{}] * K, 10, 2) is None
    assert stacked_stepper(get_strategy("grokfast@paper_code"), [stack], [{}] * K, 10, 2) is None
    assert not has_stacked_form(plugin)
    assert isinstance(strategies.get_strategy("fixed_sgd"), strategies.Strategy)


def test_a_paper_code_variant_that_changes_only_the_schedule_keeps_the_stacked_form():
    pair = _Pair("cosine_sgd@paper_code", steps=12)
    for t in range(pair.steps):
        pair.step_solo(t)
        pair.step_stacked(t)
        pair.assert_equal(t)


def test_the_fine_tune_warmup_is_each_members_schedule():
    pair = _Pair("adamw", steps=20, regime="finetune")
    for t in range(pair.steps):
        pair.step_solo(t)
        pair.step_stacked(t)
        pair.assert_equal(t)
    assert pair.stacked.member(0).lrs()[0] > 0


def test_a_stack_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="does not hold 4 members"):
        stacked_stepper(get_strategy("adam"), [[torch.zeros(3, 2, requires_grad=True)]], [{}] * K, 10, 2)
