"""Schedules at t = 0, cut, T/2 and T; torch's schedulers as a cross-check; discriminative scales."""

import math

import pytest
import torch

from strategies.param_groups import build_param_groups, depth_ratios, discriminative_scales
from strategies.schedules import cosine, linear_warmup, sgdr, stlr, warmup_cosine

T = 1000
LR = 0.05


def test_cosine_from_lr_to_eta_min():
    assert cosine(0, T, LR) == LR
    assert cosine(T // 2, T, LR) == pytest.approx((LR + 1e-5) / 2, rel=1e-12)
    assert cosine(T, T, LR) == pytest.approx(1e-5, rel=1e-12)


def test_warmup_cosine_dals():
    W = math.floor(0.05 * T)  # 50
    assert warmup_cosine(0, T, LR, 0.05) == 0.0
    assert warmup_cosine(W // 2, T, LR, 0.05) == pytest.approx(LR / 2)
    assert warmup_cosine(W, T, LR, 0.05) == LR  # the cut: warmup ends at the peak
    assert warmup_cosine(W + (T - W) // 2, T, LR, 0.05) == pytest.approx(LR / 2)
    assert warmup_cosine(T // 2, T, LR, 0.05) == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * 450 / 950)))
    assert warmup_cosine(T, T, LR, 0.05) == pytest.approx(0.0, abs=1e-15)
    assert warmup_cosine(0, T, LR, 0.0) == LR  # no warmup


def test_stlr_exactly_as_stated():
    cut = math.floor(T * 0.1)  # 100
    assert stlr(0, T, LR, 0.1, 32) == pytest.approx(LR / 32, rel=1e-12)
    assert stlr(cut // 2, T, LR, 0.1, 32) == pytest.approx(LR * (1 + 0.5 * 31) / 32, rel=1e-12)
    assert stlr(cut, T, LR, 0.1, 32) == pytest.approx(LR, rel=1e-12)
    p = 1 - (T / 2 - cut) / (cut * (1 / 0.1 - 1))
    assert stlr(T // 2, T, LR, 0.1, 32) == pytest.approx(LR * (1 + p * 31) / 32, rel=1e-12)
    assert stlr(T, T, LR, 0.1, 32) == pytest.approx(LR / 32, rel=1e-12)


def test_sgdr_restarts_and_doubles():
    T_0 = 100
    assert sgdr(0, LR, T_0) == LR
    assert sgdr(T_0 // 2, LR, T_0) == pytest.approx((LR + 1e-5) / 2, rel=1e-12)
    assert sgdr(T_0, LR, T_0) == LR  # first restart
    assert sgdr(T_0 + T_0, LR, T_0) == pytest.approx((LR + 1e-5) / 2, rel=1e-12)  # mid second cycle (200 long)
    assert sgdr(T_0 + 2 * T_0, LR, T_0) == LR
    assert sgdr(250, LR, 100, T_mult=1) == pytest.approx((LR + 1e-5) / 2, rel=1e-12)


def test_linear_warmup():
    assert linear_warmup(0, T, 0.1) == 0.0
    assert linear_warmup(50, T, 0.1) == 0.5
    assert linear_warmup(100, T, 0.1) == 1.0
    assert linear_warmup(T, T, 0.1) == 1.0
    assert linear_warmup(0, T, 0.0) == 1.0


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
    assert [cosine(t, 60, LR) for t in range(61)] == pytest.approx(expected, rel=1e-9)


def test_sgdr_matches_torch_warm_restarts_stepped_per_step():
    expected = _torch_lrs(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=7, T_mult=2, eta_min=1e-5), 80
    )
    assert [sgdr(t, LR, 7, 2) for t in range(80)] == pytest.approx(expected, rel=1e-9)


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
