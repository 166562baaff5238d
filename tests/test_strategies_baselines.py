"""Library baselines checked against their formulas, hand-computed for a couple of steps.

Each test drives a registry Stepper (so the configuration the sweep uses is what is checked)
on one float64 tensor with known gradients.
"""

import math

import pytest
import torch

from strategies import get_strategy

P0 = torch.tensor([0.5, -1.5, 2.0, 0.0], dtype=torch.float64)
GRADS = [torch.tensor([0.3, -0.2, 1.0, 0.5], dtype=torch.float64),
         torch.tensor([-0.4, 0.1, 0.7, -0.2], dtype=torch.float64),
         torch.tensor([0.2, 0.2, -0.3, 0.1], dtype=torch.float64)]


def run(name: str, hparams: dict, steps: int, start: torch.Tensor = P0, grads=GRADS):
    """Parameters after each of ``steps`` steps of a linear loss whose gradient at step t is grads[t]."""
    p = torch.nn.Parameter(start.clone())
    stepper = get_strategy(name).build([[p]], hparams, 100, 10)
    trajectory = []
    for t in range(steps):
        def closure(g=grads[t]) -> torch.Tensor:
            p.grad = None
            loss = (p * g).sum()
            loss.backward()
            return loss

        stepper.step(closure)
        trajectory.append(p.detach().clone())
    return trajectory, stepper


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-15)


def test_fixed_sgd_is_heavy_ball_without_dampening_with_coupled_decay():
    (p1, p2), _ = run("fixed_sgd", {}, 2)
    lr, mu, wd = 0.01, 0.9, 1e-4
    m1 = GRADS[0] + wd * P0
    assert_close(p1, P0 - lr * m1)
    m2 = mu * m1 + GRADS[1] + wd * p1
    assert_close(p2, p1 - lr * m2)


def test_lars_trust_ratio_without_clamp():
    trajectory, _ = run("lars", {"trust_coef": 5.0}, 3)
    lr, mu, wd, c = 0.03, 0.9, 1e-4, 5.0
    p, m, ratios = P0.clone(), torch.zeros(4, dtype=torch.float64), []
    for t, actual in enumerate(trajectory):
        g_hat = GRADS[t] + wd * p
        r = c * p.norm() / g_hat.norm()
        m = mu * m + r * g_hat
        p = p - lr * m
        ratios.append(r.item())
        assert_close(actual, p)
    assert max(ratios) > 5.0  # DALS would clamp this ratio to 5; LARS must not
    _, stepper = run("lars", {}, 1, start=torch.zeros(4, dtype=torch.float64))
    # ||p|| = 0: r = 1, so the step is plain SGD on g (+ 0 decay)
    assert_close(stepper.update.param_groups[0]["params"][0].detach(), -0.03 * GRADS[0])


@pytest.mark.parametrize(("group", "message"), [
    ({"lr": -1}, "Invalid lr: -1"), ({"momentum": 1.0}, "Invalid momentum: 1.0"),
    ({"weight_decay": float("nan")}, "Invalid weight_decay: nan"), ({"trust_coef": 0}, "Invalid trust_coef: 0"),
])
def test_lars_validates_every_param_group_not_only_its_defaults(group, message):
    from strategies.lars import LARS

    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        LARS([{"params": [p], **group}])
    with pytest.raises(ValueError, match=message):
        LARS([p], **group)


def test_lion_sign_update_with_decoupled_decay():
    trajectory, _ = run("lion", {}, 3)
    lr, (b1, b2), wd = 1e-4, (0.9, 0.99), 0.01
    p, m = P0.clone(), torch.zeros(4, dtype=torch.float64)
    for t, actual in enumerate(trajectory):
        g = GRADS[t]
        p = p * (1 - lr * wd)
        update = torch.sign(b1 * m + (1 - b1) * g)
        m = b2 * m + (1 - b2) * g
        p = p - lr * update
        assert_close(actual, p)


def test_adabound_clamps_the_step_between_its_bounds():
    grads = [torch.tensor([1000.0, 1e-5, 1.0, -3.0], dtype=torch.float64)] * 2  # lower, upper, inside, inside
    trajectory, _ = run("adabound", {}, 2, grads=grads)
    lr, final_lr, (b1, b2), gamma, eps = 3e-4, 0.01, (0.9, 0.999), 1e-3, 1e-8
    p, m, v = P0.clone(), torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    clamped = []
    for t, actual in enumerate(trajectory, start=1):
        g = grads[t - 1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        lower = final_lr * (1 - 1 / (gamma * t + 1))
        upper = final_lr * (1 + 1 / (gamma * t))
        raw = step_size / ((v + 1e-15).sqrt() + eps)  # pytorch-optimizer adds 1e-15 under the root
        bounded = raw.clamp(lower, upper)
        clamped.append((raw < lower, raw > upper))
        p = p - bounded * m
        assert_close(actual, p)
    assert clamped[0][0][0] and clamped[0][1][1]  # both bounds were active on step 1


def test_asam_perturbs_by_rho_p2_g_over_norm_and_returns_first_loss():
    a = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    start = torch.tensor([0.5, -1.5, 2.0, 0.3], dtype=torch.float64)
    p = torch.nn.Parameter(start.clone())
    stepper = get_strategy("sam").build([[p]], {"rho": 0.05}, 100, 10)
    seen = []

    def closure() -> torch.Tensor:
        p.grad = None
        seen.append(p.detach().clone())
        loss = 0.5 * (a * p * p).sum()
        loss.backward()
        return loss

    loss = stepper.step(closure)
    lr, wd, rho = 0.03, 1e-4, 0.05
    g1 = a * start
    e = rho * start**2 * g1 / ((start.abs() * g1).norm() + 1e-12)
    assert loss.item() == pytest.approx(0.5 * (a * start * start).sum().item())
    assert_close(seen[0], start)
    # pytorch-optimizer computes the global norm in float32, hence 1e-7 rather than 1e-12
    torch.testing.assert_close(seen[1], start + e, rtol=1e-7, atol=1e-9)  # 2nd pass at perturbed weights
    g2 = a * seen[1]
    assert_close(p.detach(), start - lr * (g2 + wd * start))  # SGD step from the original weights


def test_grokfast_adds_lambda_times_gradient_ema_before_sgd():
    trajectory, stepper = run("grokfast", {"grok_alpha": 0.9, "grok_lambda": 2.0}, 3)
    lr, mu, wd, alpha, lam = 0.03, 0.9, 1e-4, 0.9, 2.0
    p, m, ema = P0.clone(), torch.zeros(4, dtype=torch.float64), None
    for t, actual in enumerate(trajectory):
        g = GRADS[t]
        ema = g.clone() if ema is None else alpha * ema + (1 - alpha) * g  # the library starts the EMA at g
        m = mu * m + (g + lam * ema) + wd * p
        p = p - lr * m
        assert_close(actual, p)
    (saved,) = stepper.state_dict()["update"]["ema"].values()
    assert_close(saved, ema)


def test_lookahead_syncs_slow_weights_every_k_steps():
    k, alpha = 3, 0.5
    trajectory, stepper = run("lookahead_adamw", {"lookahead_k": k, "lookahead_alpha": alpha}, 7,
                              grads=[GRADS[t % 3] * (t + 1) for t in range(7)])
    shadow = torch.nn.Parameter(P0.clone())
    adamw = torch.optim.AdamW([shadow], lr=3e-4, weight_decay=0.01)
    slow = P0.clone()
    for t, actual in enumerate(trajectory):
        shadow.grad = GRADS[t % 3] * (t + 1)
        adamw.step()
        if (t + 1) % k == 0:
            with torch.no_grad():
                shadow.copy_(slow + alpha * (shadow - slow))
            slow = shadow.detach().clone()
        torch.testing.assert_close(actual, shadow.detach(), rtol=1e-12, atol=1e-15)
    assert_close(stepper.state_dict()["update"]["lookahead_state"][(0, 0)]["slow_params"], slow)
