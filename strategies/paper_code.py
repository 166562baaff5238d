"""The update rules and schedules of the paper's reference code, where they differ from docs/STRATEGIES.md.

Opt-in only: the registry exposes them as ``<strategy>@paper_code`` variants (never the default,
never in ``strategies: all``) so that ``lrsweep reproduce`` can run the benchmark as the
reference code (CodeOfMe/LearningRate, ``codes/optimizers.py`` at commit 73253ab) ran it and
the report can name each gap's cause. Each rule is written from the math the reference code
computes; README "Reproducing the paper" lists the file and line of every divergence.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from strategies.checks import check, check_trust_group, is_real
from strategies.lars import LARS

__all__ = ["PaperGrokfast", "PaperLARS", "cosine_next", "sgdr_step_counter", "stlr_epochwise_double"]

LARS_EPS = 1e-8  # added to ||g_hat|| in the reference's LARS trust ratio


def cosine_next(t: int, peak: float, *, T: int, eta_min: float) -> float:
    """The reference's per-step cosine: its counter is incremented before the LR is computed, so
    update ``t`` (0-based) already uses position ``t + 1``: ``eta_min + (peak - eta_min) * 0.5 *
    (1 + cos(pi * min(1, (t + 1) / T)))``; the last update of the run is at ``eta_min``."""
    return eta_min + (peak - eta_min) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (t + 1) / max(1, T))))


def sgdr_step_counter(t: int, peak: float, *, T_0: int, T_mult: int, eta_min: float) -> float:
    """The reference's SGDR: ``T_0`` counted in optimizer steps (not epochs) and a 1-based position.

    Update ``t`` (0-based) is position ``c = t + 1`` of the run; each cycle covers positions
    ``1..T_i`` and the next starts when ``c`` passes ``T_i`` (``T_i *= T_mult``). The LR is
    ``eta_min + (peak - eta_min) * 0.5 * (1 + cos(pi * c / T_i))``: a cycle ends exactly at eta_min.
    """
    c, T_i = t + 1, T_0
    while c > T_i:
        c -= T_i
        T_i = int(T_i * T_mult)
    return eta_min + (peak - eta_min) * 0.5 * (1.0 + math.cos(math.pi * c / T_i))


def stlr_epochwise_double(t: int, peak: float, *, T: int, steps_per_epoch: int, top_lr: float,
                          cut_frac: float, ratio: float) -> float:
    """STLR as the reference's synthetic/CIFAR/text loops drive ``STLRScheduler(decay_factor=2.6)``.

    Two defects at once. (1) The scheduler divides each group's already-decayed LR by the decay
    factor again: group ``l``'s ceiling is ``peak_l * peak_l / top_lr`` (``peak_l = top_lr /
    f**(L-1-l)``), the top group alone keeps ``top_lr``. (2) It is stepped ``steps_per_epoch``
    times at the end of each epoch instead of once per step, so the LR is constant within an
    epoch: epoch 0 runs at the groups' once-decayed ``peak_l`` (the scheduler has not run yet), and
    epoch ``e >= 1`` at ``ceiling_l * (1 + p * (ratio - 1)) / ratio`` with the scheduler's counter
    ``s = e * steps_per_epoch``, ``cut = max(1, int(T * cut_frac))``, ``p = s / cut`` before the
    cut and ``1 - (s - cut) / (cut * (1 / cut_frac - 1))`` after, clamped to [0, 1].
    """
    epoch = t // steps_per_epoch
    if epoch == 0:
        return peak
    s = epoch * steps_per_epoch
    cut = max(1, int(T * cut_frac))
    p = s / cut if s < cut else 1.0 - (s - cut) / (cut * (1.0 / cut_frac - 1.0))
    p = min(1.0, max(0.0, p))
    return peak * (peak / top_lr) * (1.0 + p * (ratio - 1.0)) / ratio


def _closure_loss(closure: Callable[[], torch.Tensor] | None) -> Any:
    """The loss of ``closure`` run with gradients on (None without a closure), as torch's step does."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class PaperLARS(LARS):
    r"""LARS as the reference code computes it: the trust ratio scales the momentum buffer.

    .. math::
        \hat g = g + wd\,p, \quad r = c \lVert p \rVert / (\lVert \hat g \rVert + 10^{-8})
        \ (c \text{ if a norm is } 0), \quad m \leftarrow \mu m + \hat g \ (m_1 = \hat g), \quad
        p \leftarrow p - lr\, r\, m

    docs/STRATEGIES.md's LARS (``strategies.LARS``) scales the gradient before momentum,
    :math:`m \leftarrow \mu m + r \hat g`; here today's ratio multiplies the whole buffer, past
    gradients included, and a zero norm gives ``c`` instead of 1.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> Any:
        loss = _closure_loss(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g_hat = p.grad.add(p, alpha=group["weight_decay"])
                p_norm, g_norm = p.norm(), g_hat.norm()
                ratio = group["trust_coef"]
                if p_norm > 0 and g_norm > 0:
                    ratio = group["trust_coef"] * p_norm / (g_norm + LARS_EPS)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g_hat.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g_hat)
                p.sub_(state["momentum_buffer"] * (group["lr"] * ratio))
        return loss


class PaperGrokfast(Optimizer):
    r"""Grokfast as the reference code computes it (an optimizer, not a gradient filter).

    .. math::
        f \leftarrow \alpha f + (1 - \alpha) g \ (f_0 = 0), \quad
        m \leftarrow \mu m + (1 - \mu)(g + f) \ (m_0 = 0), \quad
        p \leftarrow p - lr\, m, \quad p \leftarrow p - lr\, wd\, p

    Three departures from docs/STRATEGIES.md's Grokfast (SGD on ``g + lam * EMA(g)`` through
    pytorch-optimizer's ``gradfilter_ema``): the filter starts at zero rather than at the first
    gradient, the momentum is dampened by ``1 - mu`` (a step ten times smaller at mu 0.9), and the
    weight decay is decoupled and applied after the update. ``lam`` is 1.
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict], lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 1e-4, alpha: float = 0.98) -> None:
        check_trust_group(dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coef=1.0))
        check(is_real(alpha) and 0.0 <= alpha < 1.0, "alpha", alpha, "[0, 1)")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, alpha=alpha))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> Any:
        loss = _closure_loss(closure)
        for group in self.param_groups:
            lr, mu, alpha = group["lr"], group["momentum"], group["alpha"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["filtered"] = torch.zeros_like(p)
                    state["momentum_buffer"] = torch.zeros_like(p)
                f, m = state["filtered"], state["momentum_buffer"]
                f.mul_(alpha).add_(p.grad, alpha=1 - alpha)
                m.mul_(mu).add_(p.grad + f, alpha=1 - mu)
                p.sub_(m, alpha=lr)
                if group["weight_decay"] != 0:
                    p.sub_(p, alpha=lr * group["weight_decay"])
        return loss
