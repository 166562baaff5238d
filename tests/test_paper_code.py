"""The paper-code variants (``<strategy>@paper_code``): opt-in, and each pinned against a step or
schedule value computed by hand from the reference code's rule (README "Reproducing the paper")."""

import fnmatch
import math
from functools import partial

import pytest
import torch

from strategies import get_strategy, list_strategies, schedules
from strategies.paper_code import cosine_next, sgdr_step_counter, stlr_epochwise_double
from strategies.registry import _PAPER_CHANGES

torch.set_num_threads(1)


def _fixed_gradient_stepper(name, p, g, hparams, total_steps=100, steps_per_epoch=10):
    """A stepper over one tensor whose gradient is always ``g`` (loss = <p, g>)."""
    stepper = get_strategy(name).build([[p]], hparams, total_steps, steps_per_epoch)

    def closure():
        p.grad = None
        loss = (p * g).sum()
        loss.backward()
        return loss

    return stepper, closure


# --- opt-in -------------------------------------------------------------------------------------

def test_variants_are_opt_in_and_selected_only_by_an_at_pattern():
    assert len(list_strategies(selection="paper")) == 18
    assert not any("@" in s.name for s in list_strategies("*"))
    assert [s.name for s in list_strategies("stlr*")] == ["stlr_discriminative"]
    variants = list_strategies("*@paper_code")
    assert len(variants) == 18 and all(s.variant_of == s.name.split("@")[0] for s in variants)
    assert [s.name for s in list_strategies("stlr_discriminative@paper_code")] == ["stlr_discriminative@paper_code"]
    # Why not "stlr_discriminative[paper_code]": fnmatch reads [...] as a character class.
    assert not fnmatch.fnmatchcase("stlr_discriminative[paper_code]", "stlr_discriminative[paper_code]")


def test_a_sweep_spec_with_all_never_gets_a_variant():
    from sweeps.spec import parse_spec

    for word, count in (("all", 24), ("paper", 18)):
        spec = parse_spec({"name": "x", "workloads": ["synthetic"], "strategies": word, "budget": {"trials": 1}})
        assert len(spec.strategies) == count and not any("@" in s for s in spec.strategies)
    with pytest.raises(ValueError, match=r"strategies\[0\]: 'sgdr@paper_code' selects paper-code variants"):
        parse_spec({"name": "x", "workloads": ["synthetic"], "strategies": ["sgdr@paper_code"],
                    "budget": {"trials": 1}})


# --- schedules ----------------------------------------------------------------------------------

def test_cosine_paper_code_runs_one_position_ahead():
    # T = 4, lr 1, floor 0: update 0 already uses position 1 (cos(pi/4)); the last update is at the floor.
    assert cosine_next(0, 1.0, T=4, eta_min=0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)), abs=1e-12)
    assert cosine_next(3, 1.0, T=4, eta_min=0.0) == pytest.approx(0.0, abs=1e-12)
    assert schedules.cosine(0, 1.0, T=4, eta_min=0.0) == 1.0  # the corrected schedule starts at the peak
    stepper = get_strategy("cosine_sgd@paper_code").build([[torch.zeros(2, requires_grad=True)]], {}, 4, 2)
    assert stepper.lrs()[-1] == pytest.approx(1e-5 + (0.03 - 1e-5) * 0.5 * (1 + math.cos(math.pi / 4)), abs=1e-12)


def test_sgdr_paper_code_counts_T0_in_steps():
    # T_0 = 10 steps, T_mult 2, lr 1, floor 0: cycles cover updates 0-9, 10-29, 30-69.
    paper_sgdr = partial(sgdr_step_counter, T_0=10, T_mult=2, eta_min=0.0)
    assert paper_sgdr(0, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 10)))
    assert paper_sgdr(9, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert paper_sgdr(10, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 20)))
    assert paper_sgdr(29, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert paper_sgdr(30, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 40)))
    # Through the registry, T_0_epochs = 10 is read as 10 steps whatever steps_per_epoch is: the
    # paper-code LR restarts after update 9; the corrected one (1000 steps) is still near its peak.
    p = torch.zeros(2, requires_grad=True)
    paper = get_strategy("sgdr@paper_code").build([[p]], {}, 8000, 100)
    fixed = get_strategy("sgdr").build([[p]], {}, 8000, 100)
    for stepper in (paper, fixed):
        stepper.step_count = 10
        stepper._set_lrs()
    assert paper.lrs()[-1] == pytest.approx(1e-5 + (0.05 - 1e-5) * 0.5 * (1 + math.cos(math.pi / 20)))
    assert fixed.lrs()[-1] == pytest.approx(1e-5 + (0.05 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 10 / 1000)))


def test_stlr_paper_code_decays_twice_and_steps_per_epoch():
    # The synthetic run: T = 8000 steps, 100 per epoch, 4 groups, top LR 0.05, factor 2.6, cut 800.
    bottom = 0.05 / 2.6**3  # once-decayed peak of the input layer, 0.0028447883...
    f100 = (1 + (100 / 800) * 31) / 32  # STLR factor at scheduler count 100: 0.15234375
    paper_stlr = partial(stlr_epochwise_double, T=8000, steps_per_epoch=100, top_lr=0.05, cut_frac=0.1, ratio=32.0)
    assert paper_stlr(0, bottom) == bottom  # epoch 0: scheduler not run yet
    assert paper_stlr(99, bottom) == bottom
    value = paper_stlr(100, bottom)
    assert value == pytest.approx(bottom * bottom / 0.05 * f100, rel=1e-12)
    # ... which is the input layer's LR the reference code logged after epoch 1 (its committed
    # codes/results/comprehensive_results.json, Gen5_STLR history lr[0]).
    assert value == pytest.approx(2.465781320278055e-05, rel=1e-12)
    assert paper_stlr(150, bottom) == value  # constant within the epoch
    assert paper_stlr(800, bottom) == pytest.approx(0.00016185641486953387, rel=1e-12)
    assert paper_stlr(150, 0.05) == pytest.approx(0.05 * f100)  # top: decayed once
    # The corrected STLR: per step and once-decayed, bottom * f(t) at t = 100.
    assert schedules.stlr(100, bottom, T=8000, cut_frac=0.1, ratio=32.0) == pytest.approx(bottom * f100)
    groups = [[torch.zeros(2, requires_grad=True)] for _ in range(4)]
    paper = get_strategy("stlr_discriminative@paper_code").build(groups, {}, 8000, 100)
    paper.step_count = 100
    paper._set_lrs()
    assert paper.lrs()[0] == pytest.approx(2.465781320278055e-05, rel=1e-12)
    assert paper.lrs()[-1] == pytest.approx(0.05 * f100)


# --- updates ------------------------------------------------------------------------------------

def test_lars_paper_code_scales_the_momentum_buffer():
    # p = (3, 4), gradient always (0.6, 0.8), lr 0.1, mu 0.9, wd 0.1, c 0.02.
    hp = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1, "trust_coef": 0.02}
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.6, 0.8], dtype=torch.float64)
    stepper, closure = _fixed_gradient_stepper("lars@paper_code", p, g, hp)
    # step 1: g_hat = (0.9, 1.2), |g_hat| = 1.5, r = 0.02 * 5 / 1.5, m = g_hat; p -= 0.1 r m = (0.006, 0.008)
    stepper.step(closure)
    assert p.detach().tolist() == pytest.approx([2.994, 3.992], abs=1e-9)
    # step 2: g_hat = (0.8994, 1.1992), |g_hat| = 1.499, |p| = 4.99, m = 0.9 (0.9, 1.2) + g_hat
    stepper.step(closure)
    r2 = 0.02 * 4.99 / 1.499
    paper = [2.994 - 0.1 * r2 * 1.7094, 3.992 - 0.1 * r2 * 2.2792]
    assert p.detach().tolist() == pytest.approx(paper, abs=1e-9)
    # The corrected LARS scales each gradient before momentum: m = 0.9 r1 g_hat1 + r2 g_hat2.
    q = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    fixed, closure_q = _fixed_gradient_stepper("lars", q, g, hp)
    fixed.step(closure_q)
    fixed.step(closure_q)
    m2 = [0.9 * (0.1 / 1.5) * 0.9 + r2 * 0.8994, 0.9 * (0.1 / 1.5) * 1.2 + r2 * 1.1992]
    assert q.detach().tolist() == pytest.approx([2.994 - 0.1 * m2[0], 3.992 - 0.1 * m2[1]], abs=1e-9)
    assert abs(p[0].item() - q[0].item()) > 5e-6


def test_grokfast_paper_code_dampens_momentum_and_starts_its_filter_at_zero():
    # p = 1, gradient always 2, lr 0.1, mu 0.9, alpha 0.98, wd 0.01 (decoupled, after the update).
    hp = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "grok_alpha": 0.98}
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    stepper, closure = _fixed_gradient_stepper("grokfast@paper_code", p, torch.tensor([2.0], dtype=torch.float64), hp)
    stepper.step(closure)
    # f = 0.02 * 2 = 0.04; m = 0.1 * (2 + 0.04) = 0.204; p = (1 - 0.0204) * (1 - 0.001)
    assert p.item() == pytest.approx(0.9796 * 0.999, abs=1e-12)
    stepper.step(closure)
    # f = 0.98 * 0.04 + 0.04 = 0.0792; m = 0.9 * 0.204 + 0.1 * 2.0792 = 0.39152
    assert p.item() == pytest.approx((0.9796 * 0.999 - 0.039152) * 0.999, abs=1e-12)


@pytest.mark.parametrize("name", [s.variant_of for s in list_strategies("*@paper_code")
                                  if s.variant_of not in _PAPER_CHANGES])
def test_variants_without_a_divergence_take_the_base_strategys_steps(name):
    def run(strategy):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        x, y = torch.randn(8, 4), torch.tensor([0, 1] * 4)
        groups = [list(model[0].parameters()), list(model[2].parameters())]
        stepper = get_strategy(strategy).build(groups, {}, 6, 3)

        def closure():
            model.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        for _ in range(3):
            stepper.step(closure)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run(f"{name}@paper_code"), run(name))


# --- the paper's RNG order ----------------------------------------------------------------------

def test_paper_rng_order_replays_the_reference_codes_draws():
    from trainables.population import _Population
    from trainables.trial import TrialConfig
    from trainables.workloads.synthetic import MLP

    [trial] = _Population([TrialConfig.from_dict({"workload": "synthetic", "strategy": "fixed_sgd@paper_code",
                                                  "seed": 42, "epochs": 1, "stage": "seed",
                                                  "rng_order": "paper"})]).members
    # The reference: seed 42, X and the noise drawn from the global RNG, then the MLP, then one
    # randperm of the 6400 training rows per epoch from the same stream.
    torch.manual_seed(42)
    torch.randn(8000, 64)
    torch.randn(8000, 64)
    reference = MLP()
    for ours, theirs in zip(trial.model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    assert torch.equal(torch.randperm(6400, generator=trial.generator), torch.randperm(6400))
    [default] = _Population([TrialConfig.from_dict({"workload": "synthetic", "strategy": "fixed_sgd", "seed": 42,
                                                    "epochs": 1, "stage": "seed"})]).members
    assert not torch.equal(default.model[0].weight, reference[0].weight)
    with pytest.raises(ValueError, match="rng_order"):
        TrialConfig.from_dict({"workload": "synthetic", "strategy": "adam", "rng_order": "numpy"})
