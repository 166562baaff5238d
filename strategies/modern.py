"""Update builders of the modern baselines (generation "modern"), each a pytorch-optimizer class as it is.

WSD and one-cycle need no builder of their own (torch's AdamW and SGD under a new schedule); the
rest are here so that registry.py stays a table. Torch and pytorch-optimizer are imported inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vocab.contracts import FINETUNE

if TYPE_CHECKING:
    import torch

    from strategies.registry import Run
    from strategies.stepper import Update

__all__ = ["muon", "muon_split", "prodigy", "schedulefree_adamw", "soap"]


def _betas(hp: dict[str, Any]) -> tuple[float, float]:
    return (hp["beta1"], hp["beta2"])


def muon_split(groups: Sequence[dict]) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Per layer group, bottom to top: ``(orthogonalised, AdamW)`` parameters.

    Muon takes the hidden weight matrices only: the tensors of two or more dimensions (conv filters
    as flattened matrices) of every group but the bottom (input) and the top (head) one; biases,
    norms and embeddings-as-input stay on AdamW (Jordan et al. 2024).
    """
    last = len(groups) - 1
    split = []
    for depth, group in enumerate(groups):
        hidden = 0 < depth < last
        split.append(([p for p in group["params"] if hidden and p.ndim >= 2],
                      [p for p in group["params"] if not (hidden and p.ndim >= 2)]))
    return split


def muon(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's Muon (Nesterov momentum, 5 Newton-Schulz steps) on ``muon_split``'s matrices at
    ``lr``, its built-in AdamW on the rest at ``adam_lr``; one param group per part, bottom to top.

    Fine-tuning scales each matrix's step by Moonlight's ``0.2 * sqrt(max(rows, cols))`` (Liu et al. 2025),
    which matches AdamW's update size, so the fine-tune LR of AdamW applies; from scratch, Keller
    Jordan's ``sqrt(max(1, rows / cols))``.
    """
    from pytorch_optimizer import Muon

    adjusted = run.regime == FINETUNE
    param_groups = []
    for matrices, rest in muon_split(groups):
        if matrices:
            param_groups.append({"params": matrices, "use_muon": True, "lr": hp["lr"], "momentum": hp["momentum"],
                                 "weight_decay": hp["weight_decay"], "use_adjusted_lr": adjusted})
        if rest:
            param_groups.append({"params": rest, "use_muon": False, "lr": hp["adam_lr"], "betas": _betas(hp),
                                 "weight_decay": hp["weight_decay"]})
    return Muon(param_groups, nesterov=True, ns_steps=5)


def soap(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's SOAP: Adam in the eigenbasis of Shampoo's preconditioner, refreshed every
    ``precondition_frequency`` steps; a diverged run's failing eigendecomposition does not raise."""
    from pytorch_optimizer import SOAP

    from strategies.wrappers import NonFiniteTolerant

    return NonFiniteTolerant(SOAP(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"],
                                  precondition_frequency=hp["precondition_frequency"]))


def schedulefree_adamw(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's ScheduleFreeAdamW; its warmup is the Stepper's schedule (``warmup_steps=0``).

    Its ``eval()`` / ``train()`` move the model's weights between the gradient point ``y`` (training)
    and the average ``x`` (scored), which ``Stepper.evaluating`` calls around every evaluation. The
    weights a snapshot saves are ``y`` (it is taken in train mode); ``x`` follows from ``y`` and the
    state's ``z``, so a restored run continues exactly.
    """
    from pytorch_optimizer import ScheduleFreeAdamW

    return ScheduleFreeAdamW(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"],
                             warmup_steps=0, r=0.0, weight_lr_power=2.0)


def prodigy(groups: list[dict], hp: dict[str, Any], run: Run) -> Update:
    """pytorch-optimizer's Prodigy: Adam whose step is ``d * lr``, ``d`` its running estimate of the
    distance to the solution; ``lr`` is a multiplier (1.0 canonical).

    The fine-tune regime's warmup takes ``safeguard_warmup``, as the authors advise with a warmup.
    Prodigy reads the first param group's LR for all of them; every group has the same here.
    """
    from pytorch_optimizer import Prodigy

    return Prodigy(groups, lr=hp["lr"], betas=_betas(hp), weight_decay=hp["weight_decay"],
                   safeguard_warmup=run.regime == FINETUNE)
