"""Turn a workload's layer groups into optimizer param groups carrying ``depth`` and ``lr_scale``.

Discriminative decay (ULMFiT) is a property of the groups, not of an optimizer: group ``l`` of
``L`` gets ``lr_scale = 1 / factor ** (L - 1 - l)``, applied exactly once (the paper's reference
code divides twice; docs/STRATEGIES.md).
"""

from collections.abc import Sequence

import torch

__all__ = ["build_param_groups", "depth_ratios", "discriminative_scales"]


def depth_ratios(num_groups: int) -> list[float]:
    """``d_l = l / (L - 1)`` bottom to top; 0.5 for a single group."""
    if num_groups == 1:
        return [0.5]
    return [layer / (num_groups - 1) for layer in range(num_groups)]


def discriminative_scales(num_groups: int, factor: float) -> list[float]:
    """LR multiplier per group: the top group 1, each group below it ``factor`` times smaller."""
    return [1.0 / factor ** (num_groups - 1 - layer) for layer in range(num_groups)]


def build_param_groups(
    layer_groups: Sequence[Sequence[torch.Tensor]], decay_factor: float | None = None
) -> list[dict]:
    """Param groups ``{"params", "depth", "lr_scale"}``, bottom to top; ``lr_scale`` is 1 without decay.

    Raises ``ValueError`` on an empty group list, an empty group, a tensor that does not require
    grad, or a tensor listed twice: each would silently train the wrong set of weights.
    """
    groups = [list(group) for group in layer_groups]
    if not groups:
        raise ValueError("layer_groups is empty; expected a bottom-to-top list of parameter lists")
    seen: set[int] = set()
    for index, group in enumerate(groups):
        if not group:
            raise ValueError(f"layer group {index} is empty")
        for p in group:
            if not isinstance(p, torch.Tensor) or not p.requires_grad:
                raise ValueError(f"layer group {index} holds {type(p).__name__} that does not require grad")
            if id(p) in seen:
                raise ValueError(f"a parameter of shape {tuple(p.shape)} appears twice (group {index})")
            seen.add(id(p))
    num = len(groups)
    scales = discriminative_scales(num, decay_factor) if decay_factor is not None else [1.0] * num
    return [
        {"params": group, "depth": depth, "lr_scale": scale}
        for group, depth, scale in zip(groups, depth_ratios(num), scales, strict=True)
    ]
