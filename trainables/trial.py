"""One run's contract: its config (``TrialConfig``), its per-epoch metrics dict, and the pieces the
training loop (``trainables.population``, where every run is a member of a population, a trial of
one run a population of one) builds it from.

The loop is deliberately small (docs/STYLE.md 10): data on the device, batches cut from tensors, one
``stepper.step(closure)`` per batch whatever the strategy (SAM calls the closure twice, the others
once), one evaluation per epoch, one metrics dict per epoch. It never asks which strategy it runs.

Budget: ``steps_per_epoch = ceil(n_train / batch_size)`` (the last batch of an epoch may be short,
drop_last=False) and ``total_steps = epochs * steps_per_epoch``; schedules see both. With
``budget_unit: gradient_evaluations`` the run gets ``epochs * steps_per_epoch`` gradient evaluations
instead: ``total_steps`` is that divided by the strategy's ``passes_per_step`` (SAM trains half the
steps, its schedule sized to them), and its last epoch stops when they are spent.

Determinism: the trial seeds torch's global RNG just before building the model (initial weights,
dropout) and owns a CPU ``torch.Generator`` seeded with the same seed for shuffling and
augmentation. ``rng_order: "paper"`` replays the reference code's order instead: the workload's
``paper_rng_prelude`` draws, then the model, then shuffles continuing the global RNG's stream.
Both, the model, the stepper and the history go into the loop's ``snapshot()``, so a trial
resumed from a snapshot ends with the metrics of one never interrupted.

Divergence: a non-finite training loss (checked every ``CHECK_EVERY`` steps, so there is no
device sync per step) or a non-finite parameter (checked each epoch) ends the trial after that
epoch's dict, with ``status: "diverged"``; the reported loss is capped at ``LOSS_CAP`` and
accuracies are measured as usual, so every number stays finite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from trainables.workload import STAGES, Workload, WorkloadError
from vocab.contracts import BUDGET_UNITS, DIVERGED, EPOCHS, OK, TUNE

LOSS_CAP = 1e4
"""Reported training loss of an epoch whose loss was non-finite (or larger than this)."""

CHECK_EVERY = 32
"""Steps between divergence checks inside an epoch (each check is one device sync)."""

DEVICES = ("auto", "cpu", "cuda")
RNG_ORDERS = ("lrsweep", "paper")



@dataclass(frozen=True)
class TrialConfig:
    """A validated trial configuration (the keys of ``docs/CONTRACTS.md``)."""

    workload: str
    strategy: str
    workload_options: Mapping[str, Any] = field(default_factory=dict)
    hparams: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    epochs: int | None = None
    stage: str = TUNE
    data_dir: str | None = None
    device: str = "auto"
    cpus: int = 1
    checkpoint_every: int = 1
    checkpoint_final_state: bool = True
    rng_order: str = "lrsweep"
    budget_unit: str = EPOCHS
    study: int = 0  # the tuning study it belongs to: study j tunes against its own validation rows

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TrialConfig:
        """Check names, types and values; the message names the key and what it allows."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise ValueError(f"unknown trial config key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")
        for key in ("workload", "strategy"):
            if not isinstance(config.get(key), str):
                raise ValueError(f"trial config needs {key!r} (a name), got {config.get(key)!r}")
        cfg = cls(**{k: v for k, v in config.items() if v is not None})  # None: the default

        def positive(name: str, value: Any, minimum: int = 1) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"trial config {name!r} must be an int >= {minimum}, got {value!r}")

        for key in ("workload_options", "hparams"):
            if not isinstance(getattr(cfg, key), Mapping):
                raise ValueError(f"trial config {key!r} must be a dict, got {getattr(cfg, key)!r}")
        positive("seed", cfg.seed, 0)
        positive("study", cfg.study, 0)
        positive("cpus", cfg.cpus)
        positive("checkpoint_every", cfg.checkpoint_every, 0)
        if cfg.epochs is not None:
            positive("epochs", cfg.epochs)
        if cfg.stage not in STAGES:
            raise ValueError(f"trial config 'stage' must be one of {STAGES}, got {cfg.stage!r}")
        if cfg.rng_order not in RNG_ORDERS:
            raise ValueError(f"trial config 'rng_order' must be one of {RNG_ORDERS}, got {cfg.rng_order!r}")
        if cfg.budget_unit not in BUDGET_UNITS:
            raise ValueError(f"trial config 'budget_unit' must be one of {BUDGET_UNITS}, got {cfg.budget_unit!r}")
        if cfg.device not in DEVICES:
            raise ValueError(f"trial config 'device' must be one of {DEVICES}, got {cfg.device!r}")
        if not isinstance(cfg.checkpoint_final_state, bool):
            raise ValueError(f"trial config 'checkpoint_final_state' must be true or false, "
                             f"got {cfg.checkpoint_final_state!r}")
        if cfg.data_dir is not None and not isinstance(cfg.data_dir, str):
            raise ValueError(f"trial config 'data_dir' must be a path string, got {cfg.data_dir!r}")
        return cfg


@dataclass(frozen=True)
class Progress:
    """Handed to ``on_epoch`` with each metrics dict.

    ``snapshot()`` returns the trial's full state after this epoch (model, stepper, RNG states,
    epoch, history). Its tensors are the live ones: serialise or copy them before returning.
    """

    epoch: int
    epochs: int
    final: bool
    snapshot: Callable[[], dict]


def select_device(requested: str) -> torch.device:
    """"cpu", "cuda" (an error when there is none) or "auto" (CUDA when visible, else CPU)."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("trial config asks for device 'cuda' but torch sees no CUDA device")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def load_splits(workload: Workload, options: Mapping[str, Any], cfg: TrialConfig, device: torch.device):
    """The workload's data for ``cfg``'s stage: ``(data, train split, scored split, chance)`` with the
    splits on ``device``; chance is the majority-class rate of the scored split (a constant
    classifier's accuracy, the report's 0 when it normalises)."""
    # lrsweep, not the workload, carves the tune stage's validation rows (Workload.stage_data).
    stage = workload.stage_data(options, cfg.stage, cfg.data_dir, cfg.study)
    train, scored = stage.train.to(device), stage.eval.to(device)
    if len(train) == 0 or len(scored) == 0:
        raise WorkloadError(f"workload {workload.name!r}: empty training or scored split")
    return stage.data, train, scored, torch.bincount(scored.labels).max().item() / len(scored)


def global_rng_state(device: torch.device) -> dict:
    """Torch's global RNG states (CPU, and the device's on CUDA): part of a trial's snapshot."""
    cuda = device.type == "cuda"
    return {"torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state(device) if cuda else None}


def restore_global_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Put back the states ``global_rng_state`` saved in ``state``."""
    torch.set_rng_state(state["torch_rng"].cpu())
    if state["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)


def params_finite(params: list[torch.Tensor]) -> bool:
    """Whether every parameter is finite (one device sync for all of them)."""
    return bool(torch.stack([p.detach().sum() for p in params]).isfinite().all())


class Compute:
    """One epoch's compute: gradient evaluations, counted where the closure runs (SAM makes two per
    step), and the optimizer's own seconds, the time in ``stepper.step`` outside its closure calls.

    On CUDA the seconds are host time (kernels are asynchronous); gradient evaluations are exact anywhere.
    """

    def __init__(self) -> None:
        self.grad_evals = 0
        self.step_seconds = 0.0
        self.steps = 0

    def step(self, stepper: Any, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``stepper.step(closure)``, counted; returns its loss."""
        inside = 0.0

        def counted() -> torch.Tensor:
            nonlocal inside
            self.grad_evals += 1
            start = time.perf_counter()
            try:
                return closure()
            finally:
                inside += time.perf_counter() - start

        start = time.perf_counter()
        loss = stepper.step(counted)
        self.step_seconds += time.perf_counter() - start - inside
        self.steps += 1
        return loss

    def add(self, grad_evals: int, step_seconds: float) -> None:
        """Count one step taken elsewhere: a population's stacked update, shared among its running members."""
        self.grad_evals += grad_evals
        self.step_seconds += step_seconds
        self.steps += 1

    def metrics(self) -> dict:
        return {"grad_evals": self.grad_evals, "step_seconds": self.step_seconds, "steps": self.steps}


def epoch_metrics(epoch: int, train_loss: float, train_accuracy: float, score_key: str, score: float,
                  chance: float, stepper: Any, finite: bool, device: torch.device, hparams: Mapping) -> dict:
    """One epoch's metrics dict (docs/CONTRACTS.md), its clock and ``Compute`` keys left at 0 for the caller.

    A non-finite epoch is ``diverged`` and reports the loss as ``LOSS_CAP``, so every number stays finite.
    ``hparams`` are the resolved hyperparameters the trial trains with: the results store them as reported.
    """
    metrics = {
        "epoch": epoch,
        "train_loss": min(train_loss, LOSS_CAP) if finite else LOSS_CAP,
        "train_accuracy": train_accuracy,
        score_key: score,
        "chance_accuracy": chance,
        "lr": float(stepper.lrs()[-1]),
        "seconds": 0.0,
        "grad_evals": 0,
        "step_seconds": 0.0,
        "steps": 0,
        "status": OK if finite else DIVERGED,
        "device": str(device),
        "hparams": dict(hparams),
    }
    for key, value in stepper.diagnostics().items():
        value = float(value)
        metrics.setdefault(key, value if math.isfinite(value) else None)
    return metrics
