"""The LR range test: its ramp, its divergence point on a problem whose answer is known, its rule, its CLI."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from strategies import get_strategy
from strategies.schedules import exponential_ramp
from sweeps.spec import parse_spec
from trainables import lr_range
from trainables.lr_range import Curve, ramp, run_range_test, suggest

ROOT = Path(__file__).resolve().parents[1]


def test_exponential_ramp_is_geometric_from_start_to_end():
    T = 101
    assert exponential_ramp(0, start=1e-4, end=1.0, T=T) == pytest.approx(1e-4)
    assert exponential_ramp(50, start=1e-4, end=1.0, T=T) == pytest.approx(1e-2)
    assert exponential_ramp(T - 1, start=1e-4, end=1.0, T=T) == pytest.approx(1.0)
    assert exponential_ramp(T + 5, start=1e-4, end=1.0, T=T) == pytest.approx(1.0), "held at the end"


def test_the_ramp_moves_every_layer_group_and_keeps_discriminative_ratios():
    layers = [nn.Linear(4, 4) for _ in range(4)]
    hparams = get_strategy("discriminative").canonical()
    steps = 11
    stepper = get_strategy("discriminative").build(
        [list(layer.parameters()) for layer in layers], hparams, total_steps=steps, steps_per_epoch=1,
        schedule=ramp(1e-3, 1e-1, steps, hparams["lr"]))
    x = torch.randn(8, 4)

    def closure():
        stepper.update.zero_grad()
        loss = nn.Sequential(*layers)(x).square().mean()
        loss.backward()
        return loss

    for t in range(steps):
        stepper.step(closure)
        lrs = stepper.lrs()
        assert lrs[-1] == pytest.approx(1e-3 * 100 ** (t / (steps - 1)))
        for lower, upper in zip(lrs, lrs[1:], strict=False):
            assert upper / lower == pytest.approx(2.6), "each group 2.6x below the one above, at every step"


def least_squares_range_test(seed: int) -> tuple[float, float]:
    """Plain SGD (no momentum, no decay) on least squares through the registry's fixed_sgd and the
    module's defaults; returns (detected divergence LR, 2 / L) with L the Hessian's top eigenvalue.

    Mini-batches of 64, as a range test trains: full-batch gradient descent shrinks the top
    eigen-direction to almost nothing while the LR passes 1/L, so its loss shows the divergence only
    about 1.8x past 2/L; mini-batch noise keeps that direction alive, as it does in real training.
    """
    g = torch.Generator().manual_seed(seed)
    n, d, batch = 4096, 10, 64
    X = torch.randn(n, d, generator=g) * torch.logspace(0, -1, d).sqrt() * 5  # curvatures 25 down to 2.5
    y = X @ torch.randn(d, generator=g) + 0.1 * torch.randn(n, generator=g)
    L = torch.linalg.eigvalsh(X.T @ X / n).max().item()  # Hessian of 0.5 * mean squared error
    model = nn.Linear(d, 1, bias=False)
    nn.init.zeros_(model.weight)
    hparams = {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0}
    stepper = get_strategy("fixed_sgd").build([[model.weight]], hparams, total_steps=lr_range.STEPS,
                                              steps_per_epoch=n // batch,
                                              schedule=ramp(lr_range.MIN_LR, lr_range.MAX_LR, lr_range.STEPS,
                                                            hparams["lr"]))

    def closure_at(t):
        rows = torch.randint(n, (batch,), generator=g)

        def closure():
            model.zero_grad()
            loss = 0.5 * (model(X[rows]).squeeze(1) - y[rows]).square().mean()
            loss.backward()
            return loss

        return closure

    curve = run_range_test(stepper, closure_at, lr_range.STEPS)
    assert curve.diverged
    return curve.divergence_lr, 2 / L


@pytest.mark.parametrize("seed", range(4))
def test_gradient_descent_on_a_quadratic_diverges_where_the_test_says(seed):
    """GD on a quadratic with top curvature L diverges above 2/L; the test finds it within 1.5x."""
    found, truth = least_squares_range_test(seed)
    assert truth / 1.5 <= found <= truth * 1.5, f"found {found:.4g}, 2/L = {truth:.4g} ({found / truth:.2f}x)"


def curve_of(smoothed: list[float], diverged: bool) -> Curve:
    lrs = tuple(10.0 ** (k - 4) for k in range(len(smoothed)))  # 1e-4, 1e-3, ...
    return Curve(lrs, tuple(smoothed), tuple(smoothed), diverged)


def test_the_rule_steepest_descent_to_the_smallest_loss_capped_by_the_divergence():
    # lrs 1e-4 .. 1e2: steepest fall at 1e-2, smallest loss at 1e0, divergence at 1e2.
    curve = curve_of([2.3, 2.25, 1.0, 0.7, 0.6, 1.5, 9.0], diverged=True)
    s = suggest(curve, canonical_lr=0.05)
    assert (s.steepest_lr, s.minimum_lr, s.divergence_lr) == pytest.approx((1e-2, 1.0, 100.0))
    assert (s.low, s.high, s.notes) == (pytest.approx(1e-2), pytest.approx(1.0), ())
    late = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 2.0)  # the smallest loss at 1, divergence at 2
    close = suggest(Curve(late, (2.3,) * 6, (2.3, 2.25, 1.0, 0.7, 0.6, 9.0), True), canonical_lr=0.05)
    assert close.high == pytest.approx(2.0 * lr_range.HIGH_FRACTION), "at most a third of the divergence lr"
    widened = suggest(curve, canonical_lr=5.0)
    assert (widened.low, widened.high) == (pytest.approx(1e-2), 5.0) and "canonical" in widened.notes[0]
    with pytest.raises(lr_range.RangeTestError, match="--min-lr"):
        suggest(curve_of([2.3, 2.2, 50.0], diverged=True), canonical_lr=0.05)


def lrsweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.commands.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_command_writes_a_plot_and_search_space_lines_a_spec_accepts(tmp_path):
    out = tmp_path / "plots" / "range.png"
    done = lrsweep("lr-range", "--workload", "synthetic", "--strategy", "fixed_sgd", "--steps", "80",
                   "--option", "n_train=1024", "--out", str(out), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pasted = done.stdout.split("paste into a sweep spec")[1].split("\n", 1)[1]
    spec = yaml.safe_load("name: t\nworkloads: [synthetic]\nstrategies: [fixed_sgd]\nbudget: {trials: 2, epochs: 1}\n"
                          + pasted)
    low, high = dict(dict(parse_spec(spec).search_space)["fixed_sgd"])["lr"]
    assert low <= 0.01 <= high, "the canonical lr, trial 0, lies inside"
    assert math.isclose(low, float(pasted.split("[")[1].split(",")[0]))


@pytest.mark.parametrize("args, named, allowed", [
    (["--workload", "mnist", "--strategy", "adam"], "--workload 'mnist'", "synthetic"),
    (["--strategy", "adagrad"], "--strategy 'adagrad'", "fixed_sgd"),
    (["--strategy", "adam", "--min-lr", "1", "--max-lr", "0.1"], "--max-lr 0.1", "> --min-lr"),
    (["--strategy", "adam", "--steps", "1"], "--steps 1", "an int >= 2"),
])
def test_bad_input_exits_2_naming_the_option_and_what_it_allows(args, named, allowed, tmp_path):
    done = lrsweep("lr-range", *args, "--out", str(tmp_path / "x.png"))
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "allowed" in done.stderr and allowed in done.stderr, done.stderr
    assert not (tmp_path / "x.png").exists()
