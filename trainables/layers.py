"""Per-layer diagnostics: each layer group's LR, gradient norm, weight norm, update-to-weight ratio
and trust ratio, measured on an epoch's last step from what that step already computes.

The probe is armed for one step per epoch: after that step's first backward it takes each group's
gradient norm (the raw gradient, before any strategy rewrites it in place) and a copy of the
weights; after the update it takes the weight norms and the update's norm. No extra forward or
backward pass, and one copy of the weights per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

__all__ = ["LayerProbe"]


def _group_norm(tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """sqrt of the sum of squared entries over a group's tensors (missing gradients count as zero)."""
    present = [t for t in tensors if t is not None]
    if not present:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.detach()) for t in present]))


class LayerProbe:
    """One member's per-layer measurement of one step: ``before`` after its first backward, ``after``
    after its update."""

    def __init__(self) -> None:
        self._grads: list[torch.Tensor] | None = None
        self._weights: list[list[torch.Tensor]] | None = None

    def before(self, weights: Sequence[Sequence[torch.Tensor]], grads: Sequence[Sequence[torch.Tensor | None]]) -> None:
        """Gradient norms and a copy of the weights, per group, bottom to top."""
        self._grads = [_group_norm(g) for g in grads]
        self._weights = [[w.detach().clone() for w in group] for group in weights]

    def after(self, weights: Sequence[Sequence[torch.Tensor]], lrs: Sequence[float],
              extra: Mapping[str, Sequence[float]]) -> dict[str, list[float | None]]:
        """The epoch's ``layers`` dict: one list per key, one entry per group (None where not finite,
        or where the step was not measured because the epoch ended early, diverged)."""
        n = len(weights)
        # A strategy whose param groups do not follow the layer groups (Muon splits a group between
        # two optimizers) has no one LR per layer group: null, rather than a misaligned list.
        out: dict[str, list[float | None]] = {"lr": [float(lr) for lr in lrs] if len(lrs) == n else [None] * n}
        if self._weights is None:
            out.update(grad_norm=[None] * n, weight_norm=[_finite(_group_norm(g)) for g in weights],
                       update_ratio=[None] * n)
        else:
            norms = [_group_norm(g) for g in weights]
            updates = [_group_norm([w.detach() - b for w, b in zip(group, saved, strict=True)])
                       for group, saved in zip(weights, self._weights, strict=True)]
            out["grad_norm"] = [_finite(g) for g in self._grads]
            out["weight_norm"] = [_finite(w) for w in norms]
            out["update_ratio"] = [_finite(u / w) if float(w) > 0 else None
                                   for u, w in zip(updates, norms, strict=True)]
        for key, values in extra.items():
            if len(values) == n:
                out[key] = [_finite(v) for v in values]
        self._grads = self._weights = None
        return out


def _finite(value: torch.Tensor | float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
