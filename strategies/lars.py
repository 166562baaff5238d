"""LARS exactly as docs/STRATEGIES.md states it (own implementation, see the class docstring)."""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from strategies.checks import check_trust_group

__all__ = ["LARS"]


class LARS(Optimizer):
    r"""SGD with a per-tensor trust ratio (You et al. 2017), without clamp or dampening.

    .. math::
        \hat g = g + wd\,p, \quad
        r = c \lVert p \rVert / \lVert \hat g \rVert \ (1 \text{ if a norm is } 0), \quad
        m \leftarrow \mu m + r \hat g, \quad p \leftarrow p - lr\, m

    Why not pytorch-optimizer's ``LARS`` (4.1): it divides by :math:`\lVert g \rVert + wd \lVert p \rVert`
    instead of :math:`\lVert g + wd\,p \rVert`, and skips weight decay and the trust ratio for 1-d
    tensors (biases), so it does not compute the stated rule. The ratio scales the gradient before
    momentum, as in the LARS paper. One ``torch._foreach_*`` path; ratios stay on the device;
    :math:`r \hat g` is built in ``p.grad``'s storage, as the library does, to save an allocation.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 0.03,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        trust_coef: float = 0.02,
    ) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coef=trust_coef))

    def add_param_group(self, param_group: dict) -> None:
        """Add a group after torch fills its defaults, then validate its settings (as DALS does)."""
        super().add_param_group(param_group)
        check_trust_group(self.param_groups[-1])

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> Any:
        """One LARS update; returns ``closure()``'s loss when a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._group_ratios = []  # per group, on the device: read only when logged
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                self._group_ratios.append(None)
                continue
            ratios = []
            for p in params:
                if "momentum_buffer" not in self.state[p]:
                    self.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            grads = [p.grad for p in params]
            bufs = [self.state[p]["momentum_buffer"] for p in params]
            buckets = Optimizer._group_tensors_by_device_and_dtype([params, grads, bufs])
            for (ps, gs, ms), _ in buckets.values():
                torch._foreach_add_(gs, ps, alpha=group["weight_decay"])  # g_hat, in the grad's storage
                p_norm = torch.stack(torch._foreach_norm(ps))
                g_norm = torch.stack(torch._foreach_norm(gs))
                ratio = torch.where((p_norm > 0) & (g_norm > 0), group["trust_coef"] * p_norm / g_norm, 1.0)
                ratios.append(ratio)
                torch._foreach_mul_(gs, ratio.unbind())
                torch._foreach_mul_(ms, group["momentum"])
                torch._foreach_add_(ms, gs)
                torch._foreach_add_(ps, ms, alpha=-group["lr"])
            self._group_ratios.append(ratios)
        return loss

    def layer_diagnostics(self) -> dict[str, list[float]]:
        """Per param group, bottom to top: the mean trust ratio of the latest step (1 for a group without grads)."""
        groups = getattr(self, "_group_ratios", None)
        if not groups:
            return {}
        means = []
        for ratios in groups:
            values = [v for r in ratios for v in r.tolist()] if ratios is not None else []
            means.append(sum(values) / len(values) if values else 1.0)
        return {"trust_ratio": means}
