"""DALS (Discriminative Adaptive Layer Scaling) and its Fast and Acc variants as one torch optimizer."""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from strategies.checks import check, check_trust_group, is_real

__all__ = ["DALS"]

EMA_DECAY = 0.95
MAX_STRENGTH = 0.9  # phase 2 filter strength cap
RATIO_MIN, RATIO_MAX = 0.2, 5.0
_CPU_LARGE = 1 << 16  # elements: from here on a CPU tensor takes the per-tensor path under foreach
_SCALARS = ("keep", "blend", "wd", "c", "mu", "lr")  # per-tensor settings, expanded from the groups


class DALS(Optimizer):
    r"""DALS as written in docs/STRATEGIES.md; DALS-Fast and DALS-Acc are settings of the same class.

    One step, given the step's mini-batch loss :math:`\ell` (from ``closure()`` or ``loss=``):

    .. math::
        E &\leftarrow 0.95\,E + 0.05\,\ell, \quad
            \delta = \frac{E_{old} - E}{\max(|E_{old}|, 10^{-8})}, \quad
            \varphi = \begin{cases} 0 & \delta > th_1 \\ 1 & \delta > th_2 \\ 2 & \text{else}\end{cases}
            \quad (\text{first step: } E = \ell,\ \varphi = 0) \\
        a &= \max(a_{floor}, a_0 - a_{drop}),\ a_0,\ \min(0.9, a_0 + 0.1)
            \quad \text{for } \varphi = 0, 1, 2 \\
        f &\leftarrow a f + (1 - a) g, \quad
            \hat g = b_l g + (1 - b_l) f, \quad b_l = 0.3 + 0.4\, d_l \\
        \hat g &\leftarrow \hat g + wd\, p \\
        r &= \mathrm{clamp}(c \lVert p \rVert / \lVert \hat g \rVert, 0.2, 5) \quad (1 \text{ if a norm is } 0) \\
        m &\leftarrow \mu m + \hat g, \quad p \leftarrow p - lr\, r\, m

    ``phase0_bypass`` (DALS-Fast): in phase 0, :math:`\hat g = g` and :math:`f` is not updated.
    The LR of a step is the group's ``lr``: DALS keeps no clock. Its schedules (warmup then cosine;
    SGDR for DALS-Acc) are pure functions of the step in ``strategies.schedules``, and the Stepper
    writes each step's LR into the groups before the step, as for every other strategy.

    Param groups are the layer groups bottom to top, each with its ``depth`` ratio
    :math:`d_l = l / (L - 1)` (a lone group without one gets 0.5). ``lr``, ``momentum``,
    ``weight_decay``, ``trust_coef`` and ``filter_alpha`` may differ per group; the phase and the
    schedule are global. ``foreach=True`` (the default) batches tensors with ``torch._foreach_*``
    (except CPU tensors of 2**16 elements or more, faster one at a time); ``False`` runs the same
    math one tensor at a time. :math:`\hat g` is built in ``p.grad``'s
    storage (as pytorch-optimizer's LARS does): no allocation per step, and the closure of the
    next step recomputes the gradient anyway.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 0.03,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        trust_coef: float = 0.02,
        filter_alpha: float = 0.6,
        *,
        th1: float = 0.01,
        th2: float = 0.002,
        phase0_floor: float = 0.3,
        phase0_drop: float = 0.3,
        phase0_bypass: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check(is_real(th1), "th1", th1, "a finite number")
        check(is_real(th2), "th2", th2, "a finite number")
        check(is_real(phase0_floor) and 0.0 <= phase0_floor <= 1.0, "phase0_floor", phase0_floor, "[0, 1]")
        check(is_real(phase0_drop) and 0.0 <= phase0_drop <= 1.0, "phase0_drop", phase0_drop, "[0, 1]")
        check(isinstance(phase0_bypass, bool), "phase0_bypass", phase0_bypass, "True or False")
        check(foreach is None or isinstance(foreach, bool), "foreach", foreach, "None, True or False")

        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        if len(groups) > 1 and any("depth" not in group for group in groups):
            raise ValueError("Invalid depth: several param groups need each a 'depth' ratio l / (L - 1)")

        self.th1, self.th2 = th1, th2
        self.phase0_floor, self.phase0_drop, self.phase0_bypass = phase0_floor, phase0_drop, phase0_bypass
        self.foreach = True if foreach is None else foreach
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coef=trust_coef,
                        filter_alpha=filter_alpha, depth=0.5)
        super().__init__(groups, defaults)
        # Global state, saved by state_dict() under "dals": the loss EMA, the phase and, for the
        # logs, the mean trust ratio of the latest step.
        self.dals_state: dict[str, Any] = {"loss_ema": None, "phase": 0, "trust_ratio": 1.0}

    def add_param_group(self, param_group: dict) -> None:
        """Add a group after torch fills its defaults, then validate its hyperparameters."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        check_trust_group(group)
        check(is_real(group["filter_alpha"]) and 0.0 <= group["filter_alpha"] <= 1.0, "filter_alpha",
               group["filter_alpha"], "[0, 1]")
        check(is_real(group["depth"]) and 0.0 <= group["depth"] <= 1.0, "depth", group["depth"], "[0, 1]")

    # ----- global state: the phase ----------------------------------------------------------------

    def _update_phase(self, loss: float) -> None:
        """Step 1: loss EMA and phase. A NaN loss makes delta NaN, hence phase 2; nothing raises."""
        state = self.dals_state
        old = state["loss_ema"]
        if old is None:
            state["loss_ema"] = loss
            return
        new = EMA_DECAY * old + (1.0 - EMA_DECAY) * loss
        state["loss_ema"] = new
        delta = (old - new) / max(abs(old), 1e-8)
        state["phase"] = 0 if delta > self.th1 else 1 if delta > self.th2 else 2

    def _strength(self, filter_alpha: float) -> float:
        """Step 3: the filter strength ``a`` for the current phase."""
        phase = self.dals_state["phase"]
        if phase == 0:
            return max(self.phase0_floor, filter_alpha - self.phase0_drop)
        if phase == 1:
            return filter_alpha
        return min(MAX_STRENGTH, filter_alpha + 0.1)

    def diagnostics(self) -> dict[str, float]:
        """The current phase and the mean trust ratio of the latest step."""
        return {"phase": float(self.dals_state["phase"]), "trust_ratio": float(self.dals_state["trust_ratio"])}

    # ----- the update -----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None, loss: Any = None) -> Any:
        """One DALS update. The phase needs the loss: from ``closure()`` if given, else ``loss``."""
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if loss is None:
            raise ValueError("Invalid loss: None (DALS.step needs the step's loss: pass closure= or loss=)")
        self._update_phase(float(loss))
        state = self.dals_state
        bypass = self.phase0_bypass and state["phase"] == 0

        # One pass over the params, per-group settings expanded by list repetition: building a dict
        # of ten lists element by element cost about a tenth of a small model's step.
        ps, gs, fs, ms, scalars = [], [], [], [], {key: [] for key in _SCALARS}
        bounds = []  # each group's slice of ps
        for group in self.param_groups:
            start = len(ps)
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise RuntimeError("DALS does not support sparse gradients")
                param_state = self.state[p]
                if not param_state:
                    param_state["filter"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    param_state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                ps.append(p)
                gs.append(grad)
                fs.append(param_state["filter"])
                ms.append(param_state["momentum_buffer"])
            count = len(ps) - start
            bounds.append((start, len(ps)))
            if count:
                for key, value in (
                    ("keep", 1.0 - self._strength(group["filter_alpha"])), ("blend", 0.3 + 0.4 * group["depth"]),
                    ("wd", group["weight_decay"]), ("c", group["trust_coef"]), ("mu", group["momentum"]),
                    ("lr", group["lr"]),
                ):
                    scalars[key] += [value] * count

        update = self._update_foreach if self.foreach else self._update_per_tensor
        ratios = update(ps, gs, fs, ms, scalars, bypass) if ps else []
        state["trust_ratio"] = sum(ratios) / len(ratios) if ratios else 1.0
        self._group_ratios = [sum(ratios[a:b]) / (b - a) if b > a else 1.0 for a, b in bounds]
        return loss

    def layer_diagnostics(self) -> dict[str, list[float]]:
        """Per param group (the layer groups, bottom to top): the mean trust ratio of the latest step."""
        ratios = getattr(self, "_group_ratios", None)
        return {"trust_ratio": list(ratios)} if ratios is not None else {}

    @staticmethod
    def _trust_ratio(c: float, p_norm: float, g_norm: float) -> float:
        """Step 5; NaN norms fail the ``> 0`` test and give 1, so a diverged step does not raise."""
        if p_norm > 0.0 and g_norm > 0.0:
            return min(RATIO_MAX, max(RATIO_MIN, c * p_norm / g_norm))
        return 1.0

    def _update_per_tensor(self, ps: list, gs: list, fs: list, ms: list, t: dict[str, list],
                           bypass: bool) -> list[float]:
        """Steps 3-6 one tensor at a time: the readable reference for the foreach path."""
        ratios = []
        for i, (p, g, f, m) in enumerate(zip(ps, gs, fs, ms, strict=True)):
            if not bypass:
                f.lerp_(g, t["keep"][i])  # f = a f + (1 - a) g
                g.lerp_(f, 1.0 - t["blend"][i])  # g_hat = b g + (1 - b) f, in the grad's storage
            g.add_(p, alpha=t["wd"][i])
            r = self._trust_ratio(t["c"][i], torch.linalg.vector_norm(p).item(), torch.linalg.vector_norm(g).item())
            torch.add(g, m, alpha=t["mu"][i], out=m)  # m = mu m + g_hat, in one pass
            p.add_(m, alpha=-t["lr"][i] * r)
            ratios.append(r)
        return ratios

    def _update_foreach(self, ps: list, gs: list, fs: list, ms: list, t: dict[str, list],
                        bypass: bool) -> list[float]:
        """Steps 3-6 with ``torch._foreach_*`` over all groups at once, per (device, dtype) bucket.

        Per-group settings become per-tensor scalar lists (a single scalar where all groups
        agree), so the whole model costs a handful of multi-tensor kernels per step instead of a
        handful per tensor. Step 6 loops in Python: see the comment there.
        """
        buckets = Optimizer._group_tensors_by_device_and_dtype([ps, gs, fs, ms], with_indices=True)
        ratios = [1.0] * len(ps)
        for (device, _), ((bps, bgs, bfs, bms), indices) in buckets.items():
            # On CPU a foreach op is a C++ loop of the same per-tensor kernels: it saves call
            # overhead, which only small tensors notice. A large tensor runs all its passes back
            # to back instead, while its param, grad and buffers are still in cache (convnet: -0.1x SGD).
            large = [k for k, p in enumerate(bps) if p.numel() >= _CPU_LARGE] if device.type == "cpu" else []
            small = sorted(set(range(len(bps))).difference(large)) if large else range(len(bps))
            for subset, update in ((small, self._update_bucket), (large, self._update_per_tensor)):
                if not subset:
                    continue
                picked = [[values[k] for k in subset] for values in (bps, bgs, bfs, bms)]
                where = [indices[k] for k in subset]
                scalars = {key: [values[i] for i in where] for key, values in t.items()}
                for i, r in zip(where, update(*picked, scalars, bypass), strict=True):
                    ratios[i] = r
        return ratios

    @staticmethod
    def _update_bucket(ps: list, gs: list, fs: list, ms: list, t: dict[str, list], bypass: bool) -> list[float]:
        """Steps 3-6 on tensors of one device and dtype."""
        if not bypass:
            torch._foreach_lerp_(fs, gs, _uniform(t["keep"]))
            torch._foreach_lerp_(gs, fs, _uniform([1.0 - b for b in t["blend"]]))
        wd = _uniform(t["wd"])
        if isinstance(wd, list):
            torch._foreach_add_(gs, torch._foreach_mul(ps, wd))
        else:
            torch._foreach_add_(gs, ps, alpha=wd)
        # One norm call over params and grads: one kernel launch and one device sync fewer.
        norms = torch.stack(torch._foreach_norm(ps + gs)).tolist()
        count = len(ps)
        trust_ratio = DALS._trust_ratio
        ratios = [trust_ratio(c, norms[k], norms[count + k]) for k, c in enumerate(t["c"])]
        # Per tensor, as foreach has no form of it: torch.add(out=m) fuses m = mu m + g_hat into one
        # pass (foreach mul_ then add_ was two), and p's update follows while m is still in cache.
        for p, g, m, mu, lr, r in zip(ps, gs, ms, t["mu"], t["lr"], ratios, strict=True):
            torch.add(g, m, alpha=mu, out=m)
            p.add_(m, alpha=-lr * r)
        return ratios

    # ----- checkpointing --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state (momentum and filter buffers) plus the global ``dals`` state."""
        state = super().state_dict()
        state["dals"] = dict(self.dals_state)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore buffers, phase and loss EMA."""
        state_dict = dict(state_dict)
        dals_state = state_dict.pop("dals")
        super().load_state_dict(state_dict)
        self.dals_state = dict(dals_state)


def _uniform(values: list[float]) -> float | list[float]:
    """The one value when all agree (the usual case: a plain-scalar foreach kernel), else the list."""
    first = values[0]
    return first if all(v == first for v in values) else values

