"""The six modern baselines (generation "modern"), registered the way a plugin registers its strategies.

Importing this module adds them to the registry with ``register_strategy`` (``strategies/__init__.py``
imports it after the paper's 18), so the registry knows nothing of them. WSD and one-cycle are
torch's AdamW and SGD under a new schedule; the other four are pytorch-optimizer classes as they are,
built here. Torch and pytorch-optimizer are imported inside the builders.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from strategies import schedules
from strategies.hparams import HParam, StrategyError
from strategies.registry import (
    ADAM_DEFAULTS,
    ADAM_HPARAMS,
    BETA1,
    BETA2,
    LR,
    MODERN,
    MOMENTUM,
    SGD_DEFAULTS,
    SGD_HPARAMS,
    WARMUP_FRAC,
    WEIGHT_DECAY,
    Run,
    adamw_update,
    register_strategy,
    sgd_update,
    strategy_entry,
)
from strategies.schedules import Schedule
from vocab.contracts import FINETUNE

if TYPE_CHECKING:
    import torch

    from strategies.stepper import Update

__all__ = ["STRATEGIES", "muon", "muon_split", "prodigy", "schedulefree_adamw", "soap"]

DECAY_FRAC = HParam("decay_frac", 0.0, 1.0)
ADAM_LR = HParam("adam_lr", 0.0, 10.0, low_inclusive=False)
PRECONDITION_FREQUENCY = HParam("precondition_frequency", 1, 1000, kind="int")


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


# ----- schedules of the modern baselines ----------------------------------------------------------

def _wsd(hp: dict[str, Any], run: Run) -> Schedule:
    """AdamW-WSD: warmup, stable, 1-sqrt cooldown; warmup and cooldown must fit in the run together."""
    if hp["warmup_frac"] + hp["decay_frac"] > 1.0:
        raise StrategyError(f"WSD schedule: hyperparameters 'warmup_frac' + 'decay_frac' = {hp['warmup_frac']} + "
                            f"{hp['decay_frac']} exceed the run; allowed: a sum <= 1")
    return schedules.Scaled(partial(schedules.wsd, T=run.total_steps, warmup_frac=hp["warmup_frac"],
                                    decay_frac=hp["decay_frac"]))


def _one_cycle(hp: dict[str, Any], run: Run) -> Schedule:
    """One-cycle with torch ``OneCycleLR``'s defaults: start at lr / 25, end at lr / 25e4."""
    return schedules.Scaled(partial(schedules.one_cycle, T=run.total_steps, warmup_frac=hp["warmup_frac"],
                                    div_factor=25.0, final_div_factor=1e4))


def _warmup(hp: dict[str, Any], run: Run) -> Schedule:
    """Schedule-Free: a linear warmup, then the peak (its averaging replaces the decay)."""
    return partial(schedules.linear_warmup, T=run.total_steps, frac=hp["warmup_frac"])


def _cosine_to_zero(hp: dict[str, Any], run: Run) -> Schedule:
    """Prodigy: cosine annealing of its LR multiplier to 0, as its authors recommend."""
    return partial(schedules.cosine, T=run.total_steps, eta_min=0.0)


# ----- the entries ----------------------------------------------------------------------------------

STRATEGIES = tuple(register_strategy(strategy) for strategy in (
    strategy_entry("adamw_wsd", MODERN, "adam",
                   "AdamW, warmup-stable-decay: 5% warmup, 1-sqrt cooldown over the last 20% (Hägele et al. 2024: "
                   "betas (0.9, 0.95), wd 0.1)", ADAM_HPARAMS + (WARMUP_FRAC, DECAY_FRAC),
                   {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "weight_decay": 0.1, "warmup_frac": 0.05,
                    "decay_frac": 0.2}, adamw_update, make_schedule=_wsd),
    strategy_entry("onecycle_sgd", MODERN, "sgd",
                   "SGD, one-cycle: cosine up from lr/25 over 30%, down to lr/25e4 (Smith and Topin 2019; torch "
                   "OneCycleLR defaults)", SGD_HPARAMS + (WARMUP_FRAC,),
                   {"lr": 0.1, "warmup_frac": 0.3, **SGD_DEFAULTS}, sgd_update, make_schedule=_one_cycle),
    strategy_entry("muon", MODERN, "adam",
                   "Muon on hidden matrices (lr 0.02, mu 0.95, Nesterov), AdamW lr 3e-4 betas (0.9, 0.95) on the rest, "
                   "wd 0.01 (Jordan et al. 2024, Muon README)", (LR, MOMENTUM, WEIGHT_DECAY, ADAM_LR, BETA1, BETA2),
                   {"lr": 0.02, "momentum": 0.95, "weight_decay": 0.01, "adam_lr": 3e-4, "beta1": 0.9, "beta2": 0.95},
                   muon, finetune=MappingProxyType({"adam_lr": 2e-5})),
    strategy_entry("soap", MODERN, "adam",
                   "SOAP: Adam in Shampoo's eigenbasis, lr 3e-3, betas (0.95, 0.95), wd 0.01, refreshed every 10 steps "
                   "(Vyas et al. 2024, SOAP README)", ADAM_HPARAMS + (PRECONDITION_FREQUENCY,),
                   {"lr": 3e-3, "beta1": 0.95, "beta2": 0.95, "weight_decay": 0.01, "precondition_frequency": 10},
                   soap),
    strategy_entry("schedulefree_adamw", MODERN, "adam",
                   "Schedule-Free AdamW scored at its average x, lr 2.5e-3, betas (0.9, 0.999), 5% warmup "
                   "(Defazio et al. 2024, schedulefree defaults)", ADAM_HPARAMS + (WARMUP_FRAC,),
                   {**ADAM_DEFAULTS, "lr": 2.5e-3, "warmup_frac": 0.05}, schedulefree_adamw, make_schedule=_warmup),
    strategy_entry("prodigy", MODERN, "adam",
                   "Prodigy: LR-free Adam (d estimated), lr 1.0 multiplier, cosine to 0 (Mishchenko and Defazio 2024, "
                   "prodigy README)", ADAM_HPARAMS, {**ADAM_DEFAULTS, "lr": 1.0}, prodigy,
                   make_schedule=_cosine_to_zero, finetune=MappingProxyType({"lr": 1.0})),
))
"""The six, in the order ``list_strategies`` gives them (after the paper's 18)."""
