"""Each schedule against docs/STRATEGIES.md's formula written out by hand; torch's schedulers as a cross-check;
discriminative scales."""

import math
from functools import partial

import pytest
import torch

from strategies.param_groups import build_param_groups, depth_ratios, discriminative_scales
from strategies.schedules import (
    Scaled,
    constant,
    cosine,
    linear_warmup,
    restarts,
    sgdr,
    stlr,
    warmup_cosine,
    with_warmup,
)

T = 1000
LR = 0.05
ETA_MIN = 1e-5


def test_constant_is_the_peak():
    assert [constant(t, LR) for t in (0, 1, T)] == [LR, LR, LR]


def test_cosine_from_lr_to_eta_min():
    schedule = partial(cosine, T=T, eta_min=ETA_MIN)
    assert schedule(0, LR) == LR
    assert schedule(T // 2, LR) == pytest.approx((LR + ETA_MIN) / 2, rel=1e-12)
    assert schedule(T, LR) == pytest.approx(ETA_MIN, rel=1e-12)
    for t in range(0, T + 1, 7):
        assert schedule(t, LR) == pytest.approx(ETA_MIN + (LR - ETA_MIN) * (1 + math.cos(math.pi * t / T)) / 2,
                                                rel=1e-12)


def test_warmup_cosine_dals():
    W = math.floor(0.05 * T)  # 50
    factor = partial(warmup_cosine, T=T, warmup_frac=0.05)
    assert factor(0) == 0.0
    assert factor(W // 2) == pytest.approx(1 / 2)
    assert factor(W) == 1.0  # the cut: warmup ends at the peak
    assert factor(W + (T - W) // 2) == pytest.approx(1 / 2)
    assert factor(T // 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 450 / 950)))
    assert factor(T) == pytest.approx(0.0, abs=1e-15)
    assert warmup_cosine(0, T=T, warmup_frac=0.0) == 1.0  # no warmup
    for t in range(T + 1):  # docs/STRATEGIES.md DALS step 2, with lr0 = LR
        expected = LR * t / W if t < W else LR * 0.5 * (1 + math.cos(math.pi * min(1, (t - W) / (T - W))))
        assert Scaled(factor)(t, LR) == pytest.approx(expected, rel=1e-12, abs=1e-18)


def _restarts_by_counter(steps: int, T_0: int, T_mult: int) -> list[float]:
    """DALS-Acc's LR factor as docs/STRATEGIES.md states it: a cycle counter advanced before each step's LR."""
    c, k, T_i, factors = 0, 0, T_0, []
    for _ in range(steps):
        c += 1
        if c >= T_i:
            c, k = 0, k + 1
            T_i = T_0 * T_mult**k
        factors.append(0.5 * (1 + math.cos(math.pi * min(1, c / T_i))))
    return factors


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_restarts_dals_acc_equal_the_stated_counter(T_mult):
    expected = _restarts_by_counter(400, 7, T_mult)
    assert [restarts(t, T_0=7, T_mult=T_mult) for t in range(400)] == expected  # to the last bit


def test_restarts_dals_acc_first_restart_one_step_before_plain_sgdr():
    factors = [restarts(t, T_0=5, T_mult=2) for t in range(40)]
    assert [t for t, f in enumerate(factors) if f == 1.0] == [4, 14, 34]  # after T_0, 3 T_0, 7 T_0 steps
    assert factors[0] == pytest.approx(0.5 * (1 + math.cos(math.pi / 5)))  # no warmup
    sgdr_restarts = [t for t in range(40) if sgdr(t, 1.0, T_0=5, T_mult=2, eta_min=0.0) == 1.0]
    assert sgdr_restarts == [0, 5, 15, 35]


def test_stlr_exactly_as_stated():
    cut = math.floor(T * 0.1)  # 100
    schedule = partial(stlr, T=T, cut_frac=0.1, ratio=32.0)
    assert schedule(0, LR) == pytest.approx(LR / 32, rel=1e-12)
    assert schedule(cut // 2, LR) == pytest.approx(LR * (1 + 0.5 * 31) / 32, rel=1e-12)
    assert schedule(cut, LR) == pytest.approx(LR, rel=1e-12)
    p = 1 - (T / 2 - cut) / (cut * (1 / 0.1 - 1))
    assert schedule(T // 2, LR) == pytest.approx(LR * (1 + p * 31) / 32, rel=1e-12)
    assert schedule(T, LR) == pytest.approx(LR / 32, rel=1e-12)
    for t in range(T + 1):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / 0.1 - 1))
        assert schedule(t, LR) == pytest.approx(LR * (1 + p * (32 - 1)) / 32, rel=1e-12)


def test_sgdr_restarts_and_doubles():
    schedule = partial(sgdr, T_0=100, T_mult=2, eta_min=ETA_MIN)
    assert schedule(0, LR) == LR
    assert schedule(50, LR) == pytest.approx((LR + ETA_MIN) / 2, rel=1e-12)
    assert schedule(100, LR) == LR  # first restart
    assert schedule(200, LR) == pytest.approx((LR + ETA_MIN) / 2, rel=1e-12)  # mid second cycle (200 long)
    assert schedule(300, LR) == LR
    assert sgdr(250, LR, T_0=100, T_mult=1, eta_min=ETA_MIN) == pytest.approx((LR + ETA_MIN) / 2, rel=1e-12)


def test_linear_warmup():
    warm = partial(linear_warmup, T=T, frac=0.1)
    assert [warm(t, LR) for t in (0, 50, 100, T)] == [0.0, LR * 0.5, LR, LR]
    assert linear_warmup(0, LR, T=T, frac=0.0) == LR


def test_finetune_warmup_multiplies_each_schedule_in_its_own_order():
    cos = partial(cosine, T=T, eta_min=ETA_MIN)
    dals = Scaled(partial(warmup_cosine, T=T, warmup_frac=0.05))
    assert with_warmup(cos, T, 0.0) is cos  # scratch: nothing to multiply
    for t in range(0, 200, 3):
        w = t / 100 if t < 100 else 1.0
        assert with_warmup(cos, T, 0.1)(t, LR) == cos(t, LR) * w  # warmed after
        assert with_warmup(dals, T, 0.1)(t, LR) == LR * w * dals.factor(t)  # the warmed-up peak, scaled


def _torch_lrs(make_scheduler, steps: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_cosine_matches_torch_cosine_annealing():
    expected = _torch_lrs(lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=60, eta_min=1e-5), 61)
    assert [cosine(t, LR, T=60, eta_min=1e-5) for t in range(61)] == pytest.approx(expected, rel=1e-9)


def test_sgdr_matches_torch_warm_restarts_stepped_per_step():
    expected = _torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=7, T_mult=2, eta_min=1e-5), 80
    )
    assert [sgdr(t, LR, T_0=7, T_mult=2, eta_min=1e-5) for t in range(80)] == pytest.approx(expected, rel=1e-9)


def test_discriminative_scales_apply_once():
    assert discriminative_scales(4, 2.6) == pytest.approx([1 / 2.6**3, 1 / 2.6**2, 1 / 2.6, 1.0], rel=1e-15)
    assert discriminative_scales(1, 2.6) == [1.0]


def test_depth_ratios():
    assert depth_ratios(1) == [0.5]
    assert depth_ratios(4) == [0.0, 1 / 3, 2 / 3, 1.0]


def test_param_groups_carry_depth_and_scale():
    params = [[torch.zeros(2, requires_grad=True)] for _ in range(3)]
    groups = build_param_groups(params, decay_factor=2.6)
    assert [g["depth"] for g in groups] == [0.0, 0.5, 1.0]
    assert [g["lr_scale"] for g in groups] == pytest.approx([1 / 2.6**2, 1 / 2.6, 1.0])
    assert [g["lr_scale"] for g in build_param_groups(params)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="does not require grad"):
        build_param_groups([[torch.zeros(2)]])
    with pytest.raises(ValueError, match="layer_groups is empty"):
        build_param_groups([])
