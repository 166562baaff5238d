"""DALS, DALS-Fast, DALS-Acc against an independent float64 transcription of docs/STRATEGIES.md."""

import math
from functools import partial

import pytest
import torch

from strategies import DALS, Stepper, get_strategy
from strategies.schedules import Scaled, restarts, warmup_cosine

SHAPES = [[(4, 3), (4,)], [(5, 4)], [(2, 5), (2,)]]  # three layer groups, bottom to top
VARIANTS = {  # (DALS keyword settings, LR schedule settings) of each variant, as the registry builds them
    "dals": (dict(lr=0.03, momentum=0.9, weight_decay=1e-4, filter_alpha=0.6, th2=0.002), dict(warmup_frac=0.05)),
    "dals_fast": (dict(lr=0.05, momentum=0.85, weight_decay=1e-4, filter_alpha=0.6, th2=0.002, phase0_bypass=True),
                  dict(warmup_frac=0.02)),
    "dals_acc": (dict(lr=0.03, momentum=0.9, weight_decay=5e-4, filter_alpha=0.7, th2=0.001, phase0_floor=0.4,
                      phase0_drop=0.15), dict(restart_steps=5, restart_mult=2)),
    # a strong filter: phase 2 hits the 0.9 cap, phase 0 stays above the floor
    "dals_strong_filter": (dict(lr=0.03, momentum=0.9, weight_decay=1e-4, filter_alpha=0.85, th2=0.002),
                           dict(warmup_frac=0.05)),
}
STEPS = 90



class ReferenceDALS:
    """docs/STRATEGIES.md's DALS written out literally, per tensor, in float64 Python and torch."""

    def __init__(self, params, depths, lr, momentum, weight_decay, filter_alpha, th2, warmup_frac=0.05,
                 restart_steps=None, restart_mult=2, phase0_floor=0.3, phase0_drop=0.3, phase0_bypass=False,
                 total_steps=STEPS, trust_coef=0.02, th1=0.01):
        self.params = [[p.detach().double().clone() for p in group] for group in params]
        self.m = [[torch.zeros_like(p) for p in group] for group in self.params]
        self.f = [[torch.zeros_like(p) for p in group] for group in self.params]
        self.depths = depths
        self.settings = dict(lr=lr, mu=momentum, wd=weight_decay, a0=filter_alpha, th1=th1, th2=th2,
                             c=trust_coef, warmup_frac=warmup_frac, T_0=restart_steps, T_mult=restart_mult,
                             floor=phase0_floor, drop=phase0_drop, bypass=phase0_bypass, T=total_steps)
        self.E, self.phase, self.t, self.lr_t = None, 0, 0, None
        self.cycle, self.restarts, self.T_i = 0, 0, restart_steps

    def lr(self) -> float:
        s, t = self.settings, self.t
        if s["T_0"] is not None:
            self.cycle += 1
            if self.cycle >= self.T_i:
                self.cycle, self.restarts = 0, self.restarts + 1
                self.T_i = s["T_0"] * s["T_mult"] ** self.restarts
            return s["lr"] * 0.5 * (1 + math.cos(math.pi * min(1, self.cycle / self.T_i)))
        W = math.floor(s["warmup_frac"] * s["T"])
        if t < W:
            return s["lr"] * t / max(1, W)
        return s["lr"] * 0.5 * (1 + math.cos(math.pi * min(1, (t - W) / max(1, s["T"] - W))))

    def step(self, loss: float, grads) -> None:
        s = self.settings
        if self.E is None:
            self.E = loss
        else:
            old = self.E
            self.E = 0.95 * self.E + 0.05 * loss
            delta = (old - self.E) / max(abs(old), 1e-8)
            self.phase = 0 if delta > s["th1"] else (1 if delta > s["th2"] else 2)
        self.lr_t = lr_t = self.lr()
        a = {0: max(s["floor"], s["a0"] - s["drop"]), 1: s["a0"], 2: min(0.9, s["a0"] + 0.1)}[self.phase]
        for layer, d in enumerate(self.depths):
            b = 0.3 + 0.4 * d
            for i, p in enumerate(self.params[layer]):
                g = grads[layer][i].double()
                if s["bypass"] and self.phase == 0:
                    g_hat = g.clone()
                else:
                    self.f[layer][i] = a * self.f[layer][i] + (1 - a) * g
                    g_hat = b * g + (1 - b) * self.f[layer][i]
                g_hat = g_hat + s["wd"] * p
                p_norm, g_norm = p.norm().item(), g_hat.norm().item()
                r = min(5.0, max(0.2, s["c"] * p_norm / g_norm)) if p_norm > 0 and g_norm > 0 else 1.0
                self.m[layer][i] = s["mu"] * self.m[layer][i] + g_hat
                self.params[layer][i] = p - lr_t * r * self.m[layer][i]
        self.t += 1


def scripted_loss(E: float | None, step: int) -> float:
    """Losses that drive the phase through 0 (fast drop), 1 (slow drop) and 2 (flat), twice."""
    if E is None:
        return 5.0
    return E * [0.5, 0.9, 1.02][(step // 15) % 3]


def make_params(dtype: torch.dtype, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    groups = [[torch.randn(shape, generator=generator, dtype=dtype).requires_grad_() for shape in group]
              for group in SHAPES]
    groups[0][1].data.zero_()  # a zero bias: ||p|| = 0 takes the r = 1 branch on the first step
    return groups


def grads_for(step: int, dtype: torch.dtype):
    generator = torch.Generator().manual_seed(1000 + step)
    scale = 10.0 ** ((step % 7) - 3)  # gradient norms from 1e-3 to 1e3 exercise both clamp ends
    return [[scale * torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype) for shape in group]
            for group in SHAPES]


def reference_for(groups, variant: str) -> ReferenceDALS:
    settings, schedule = VARIANTS[variant]
    return ReferenceDALS(groups, [0.0, 0.5, 1.0], **settings, **schedule)


def dals_for(groups, variant: str, foreach: bool = True) -> Stepper:
    """The variant's DALS driven by its pure schedule, as the registry builds it."""
    depths = [0.0, 0.5, 1.0]
    settings, schedule = VARIANTS[variant]
    optimizer = DALS([{"params": g, "depth": d} for g, d in zip(groups, depths, strict=True)], foreach=foreach,
                     **settings)
    if "restart_steps" in schedule:
        factor = partial(restarts, T_0=schedule["restart_steps"], T_mult=schedule["restart_mult"])
    else:
        factor = partial(warmup_cosine, T=STEPS, warmup_frac=schedule["warmup_frac"])
    return Stepper(optimizer, Scaled(factor))


def run_optimizer(stepper: Stepper, groups, dtype, losses):
    """Step with scripted gradients and losses; the phase and the LRs of each step."""
    phases, lrs = [], []
    for step, loss in enumerate(losses):
        def closure(step=step, loss=loss):
            for group, grads in zip(groups, grads_for(step, dtype), strict=True):
                for p, g in zip(group, grads, strict=True):
                    p.grad = g.clone()
            return torch.tensor(loss)

        stepper.step(closure)
        phases.append(int(stepper.diagnostics()["phase"]))
        lrs.append(stepper.lrs())
    return phases, lrs


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_many_steps_match_float64_reference_across_all_phases(variant, foreach):
    groups = make_params(torch.float64)
    reference = reference_for(groups, variant)
    losses, expected_phases, expected_lrs = [], [], []
    for step in range(STEPS):
        loss = scripted_loss(reference.E, step)
        reference.step(loss, grads_for(step, torch.float64))
        losses.append(loss)
        expected_phases.append(reference.phase)
        expected_lrs.append([reference.lr_t] * 3)
    assert set(expected_phases) == {0, 1, 2}

    phases, lrs = run_optimizer(dals_for(groups, variant, foreach), groups, torch.float64, losses)

    assert phases == expected_phases
    assert lrs == [pytest.approx(expected, rel=1e-12, abs=1e-18) for expected in expected_lrs]
    for group, ref_group in zip(groups, reference.params, strict=True):
        for p, ref in zip(group, ref_group, strict=True):
            torch.testing.assert_close(p.detach(), ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_foreach_path_equals_per_tensor_path_in_float32(variant):
    losses = [5.0 * 0.97**k for k in range(40)]
    results = []
    for foreach in (True, False):
        groups = make_params(torch.float32)
        stepper = dals_for(groups, variant, foreach)
        stepper.update.param_groups[1]["weight_decay"] = 3e-3  # per-group settings take the scalar-list path
        stepper.update.param_groups[2]["filter_alpha"] = 0.5
        run_optimizer(stepper, groups, torch.float32, losses)
        results.append((groups, stepper.diagnostics(), stepper.lrs()))
    (fast, fast_diag, fast_lrs), (slow, slow_diag, slow_lrs) = results
    assert fast_lrs == slow_lrs
    assert fast_diag == pytest.approx(slow_diag, rel=1e-6)
    for a_group, b_group in zip(fast, slow, strict=True):
        for a, b in zip(a_group, b_group, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_float32_stays_close_to_float64_reference():
    groups = make_params(torch.float32)
    reference = reference_for(groups, "dals")
    losses = [5.0 * 0.97**k for k in range(40)]
    for step, loss in enumerate(losses):
        reference.step(loss, grads_for(step, torch.float32))
    run_optimizer(dals_for(groups, "dals"), groups, torch.float32, losses)
    for group, ref_group in zip(groups, reference.params, strict=True):
        for p, ref in zip(group, ref_group, strict=True):
            torch.testing.assert_close(p.detach().double(), ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("variant", "filter_moves"), [("dals_fast", False), ("dals", True)])
def test_dals_fast_bypasses_the_filter_in_phase_0(variant, filter_moves):
    groups = make_params(torch.float64)
    stepper = dals_for(groups, variant)
    run_optimizer(stepper, groups, torch.float64, [5.0, 2.0, 1.0])  # phase 0 throughout
    assert stepper.diagnostics()["phase"] == 0.0
    filters = [stepper.update.state[p]["filter"] for group in groups for p in group]
    assert any(f.abs().sum() > 0 for f in filters) == filter_moves


def test_dals_fast_first_step_is_plain_trust_scaled_momentum():
    groups = make_params(torch.float64)
    optimizer = DALS([{"params": groups[2], "depth": 1.0}], lr=0.05, momentum=0.85, phase0_bypass=True)
    p0 = [p.detach().clone() for p in groups[2]]
    grads = grads_for(0, torch.float64)[2]
    for p, g in zip(groups[2], grads, strict=True):
        p.grad = g.clone()
    optimizer.step(loss=1.0)
    for p, start, g in zip(groups[2], p0, grads, strict=True):
        g_hat = g + 1e-4 * start  # no filter, no blend
        r = min(5.0, max(0.2, 0.02 * start.norm().item() / g_hat.norm().item()))
        torch.testing.assert_close(p.detach(), start - 0.05 * r * g_hat, rtol=1e-12, atol=1e-14)


def test_dals_acc_restarts_at_T0_then_every_doubled_cycle():
    groups = make_params(torch.float64)
    stepper = dals_for(groups, "dals_acc")  # T_0 = 5 steps, T_mult = 2
    _, lrs = run_optimizer(stepper, groups, torch.float64, [1.0] * 40)
    factors = [step_lrs[0] / 0.03 for step_lrs in lrs]
    restarts = [count for count, factor in enumerate(factors, start=1) if factor == 1.0]
    assert restarts == [5, 5 + 10, 5 + 10 + 20]  # after T_0, T_0 + 2 T_0, T_0 + 2 T_0 + 4 T_0 steps
    assert factors[0] == pytest.approx(0.5 * (1 + math.cos(math.pi / 5)))  # no warmup


def test_registry_dals_acc_counts_T0_in_epochs():
    layers = [torch.nn.Linear(2, 2)]
    stepper = get_strategy("dals_acc").build([list(layers[0].parameters())], {"T_0_epochs": 2}, 100, 3)
    x = torch.ones(1, 2)

    def closure():
        layers[0].zero_grad()
        loss = layers[0](x).pow(2).sum()
        loss.backward()
        return loss

    lrs = []
    for _ in range(8):
        stepper.step(closure)
        lrs.append(stepper.lrs()[0])
    assert lrs[5] == pytest.approx(0.03) and all(lr < 0.03 for lr in lrs[:5])


@pytest.mark.parametrize("regime", ["scratch", "finetune"])
@pytest.mark.parametrize("name", ["dals", "dals_fast", "dals_acc"])
def test_registry_dals_lr_of_each_step_is_the_stated_schedule(name, regime):
    # 60 steps of 2 per epoch: DALS-Acc's T_0 of 10 epochs restarts twice; fine-tuning warms up over 6 steps.
    total, per_epoch = 60, 2
    layers = [torch.nn.Linear(2, 2) for _ in range(3)]
    strategy = get_strategy(name)
    stepper = strategy.build([list(layer.parameters()) for layer in layers], None, total, per_epoch, regime=regime)
    hp = strategy.canonical(regime)
    restart = hp["T_0_epochs"] * per_epoch if name == "dals_acc" else None
    stated = ReferenceDALS([], [], lr=hp["lr"], momentum=0.0, weight_decay=0.0, filter_alpha=0.0, th2=0.0,
                           warmup_frac=hp.get("warmup_frac", 0.0), restart_steps=restart,
                           restart_mult=hp.get("T_mult", 2), total_steps=total)
    x = torch.ones(1, 2)

    def closure():
        for layer in layers:
            layer.zero_grad()
        loss = sum(layer(x).pow(2).sum() for layer in layers)
        loss.backward()
        return loss

    for t in range(total):
        stepper.step(closure)
        warmup = t / 6 if regime == "finetune" and t < 6 else 1.0
        expected = stated.lr() * warmup
        stated.t += 1
        assert stepper.lrs() == pytest.approx([expected] * 3, rel=1e-12, abs=1e-18), t


def test_warmup_cosine_lr_and_diagnostics():
    groups = make_params(torch.float64)
    stepper = dals_for(groups, "dals")  # W = floor(0.05 * 90) = 4
    assert stepper.lrs() == [0.0, 0.0, 0.0]
    assert stepper.diagnostics() == {"phase": 0.0, "trust_ratio": 1.0}
    run_optimizer(stepper, groups, torch.float64, [3.0, 2.0, 1.0])
    assert stepper.lrs()[0] == pytest.approx(0.03 * 2 / 4)
    assert 0.2 <= stepper.diagnostics()["trust_ratio"] <= 5.0


def test_step_needs_a_loss_and_accepts_a_closure():
    p = torch.ones(3, requires_grad=True)
    optimizer = DALS([p])
    with pytest.raises(ValueError, match="Invalid loss: None"):
        optimizer.step()

    def closure():
        p.grad = None
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lr=-0.1), "Invalid lr: -0.1"),
        (dict(momentum=1.0), "Invalid momentum: 1.0"),
        (dict(weight_decay=-1e-4), "Invalid weight_decay: -0.0001"),
        (dict(trust_coef=0.0), "Invalid trust_coef: 0.0"),
        (dict(filter_alpha=1.5), "Invalid filter_alpha: 1.5"),
        (dict(th1=float("nan")), "Invalid th1: nan"),
        (dict(phase0_floor=-0.1), "Invalid phase0_floor: -0.1"),
        (dict(foreach="yes"), "Invalid foreach: 'yes'"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DALS([torch.zeros(2, requires_grad=True)], **kwargs)


def test_several_groups_need_depth():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="depth"):
        DALS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="Invalid depth: 2"):
        DALS([{"params": [a], "depth": 2}])
    assert DALS([a]).param_groups[0]["depth"] == 0.5
