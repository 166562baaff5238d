"""One trial: (workload, strategy, hyperparameters, seed) trained for some epochs, one dict per epoch.

The loop is deliberately small (docs/STYLE.md 10): data on the device, batches cut from tensors, one
``stepper.step(closure)`` per batch whatever the strategy (SAM calls the closure twice, the others
once), one evaluation per epoch, one metrics dict per epoch. It never asks which strategy it runs.

Budget: ``steps_per_epoch = ceil(n_train / batch_size)`` (the last batch of an epoch may be short,
drop_last=False) and ``total_steps = epochs * steps_per_epoch``; schedules see both.

Determinism: the trial seeds torch's global RNG just before building the model (initial weights,
dropout) and owns a CPU ``torch.Generator`` seeded with the same seed for shuffling and
augmentation. ``rng_order: "paper"`` replays the reference code's order instead: the workload's
``paper_rng_prelude`` draws, then the model, then shuffles continuing the global RNG's stream.
Both, the model, the stepper and the history go into ``snapshot()``, so a trial
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
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from trainables.workload import STAGES, Workload, WorkloadError, check_layer_groups, get_workload
from vocab.contracts import DIVERGED, OK, STAGE_METRIC, TUNE

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
        positive("cpus", cfg.cpus)
        positive("checkpoint_every", cfg.checkpoint_every, 0)
        if cfg.epochs is not None:
            positive("epochs", cfg.epochs)
        if cfg.stage not in STAGES:
            raise ValueError(f"trial config 'stage' must be one of {STAGES}, got {cfg.stage!r}")
        if cfg.rng_order not in RNG_ORDERS:
            raise ValueError(f"trial config 'rng_order' must be one of {RNG_ORDERS}, got {cfg.rng_order!r}")
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
    stage = workload.stage_data(options, cfg.stage, cfg.data_dir)
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
        return loss

    def add(self, grad_evals: int, step_seconds: float) -> None:
        """Count a step taken elsewhere: a population's stacked update, shared among its running members."""
        self.grad_evals += grad_evals
        self.step_seconds += step_seconds

    def metrics(self) -> dict:
        return {"grad_evals": self.grad_evals, "step_seconds": self.step_seconds}


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
        "status": OK if finite else DIVERGED,
        "device": str(device),
        "hparams": dict(hparams),
    }
    for key, value in stepper.diagnostics().items():
        value = float(value)
        metrics.setdefault(key, value if math.isfinite(value) else None)
    return metrics


def run_trial(
    config: Mapping[str, Any],
    *,
    on_epoch: Callable[[dict, Progress], None] | None = None,
    resume: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Train one trial and return its per-epoch metrics dicts (no Ray needed).

    ``on_epoch(metrics, progress)`` is called after each epoch (the Ray trainable reports from it).
    ``resume`` is a ``Progress.snapshot()`` of an earlier run of the same config: training goes on
    from the epoch after it, and the returned list includes the earlier epochs.
    Uses ``config["cpus"]`` torch threads (restored afterwards).
    """
    cfg = TrialConfig.from_dict(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.cpus)
    try:
        return _Trial(cfg).run(on_epoch, resume)
    finally:
        torch.set_num_threads(threads)


class _Trial:
    """The built pieces of one trial; ``run`` is the loop."""

    def __init__(self, cfg: TrialConfig) -> None:
        import strategies

        self.cfg = cfg
        self.workload = workload = get_workload(cfg.workload)
        options = workload.validate_options(cfg.workload_options)
        strategy = strategies.get_strategy(cfg.strategy)
        regime = workload.regime_for(options)
        # The one resolution: canonical for the regime, the workload's overrides, the sampled values.
        self.hparams = strategies.resolve_hparams(strategy, regime, workload.family_overrides, cfg.hparams)
        self.device = select_device(cfg.device)
        self.epochs = cfg.epochs or workload.default_epochs

        data, self.train, self.scored, self.chance = load_splits(workload, options, cfg, self.device)
        torch.manual_seed(cfg.seed)  # initial weights and dropout; after data loading on purpose
        paper_order = cfg.rng_order == "paper"
        if paper_order and workload.paper_rng_prelude is not None:
            workload.paper_rng_prelude()
        self.model = workload.build_model(options, data).to(self.device)
        groups = workload.layer_groups(self.model)
        check_layer_groups(workload.name, self.model, groups)
        self.params = [p for group in groups for p in group]
        self.steps_per_epoch = self.train.num_batches(workload.batch_size)
        self.stepper = strategy.build(
            groups, self.hparams, total_steps=self.epochs * self.steps_per_epoch,
            steps_per_epoch=self.steps_per_epoch, regime=regime,
        )
        self.generator = torch.Generator().manual_seed(cfg.seed)  # shuffling and augmentation
        if paper_order:  # the reference shuffles with the global RNG, continuing after the model's init
            self.generator.set_state(torch.get_rng_state())
        amp = workload.mixed_precision and self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        # bf16 needs no loss scaling, so the strategies' step(closure) stays as it is.
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
        self.score_key = STAGE_METRIC[cfg.stage]
        self.history: list[dict] = []

    # -- state -----------------------------------------------------------------------------------

    def snapshot(self) -> dict:
        return {
            "epoch": len(self.history),
            "model": self.model.state_dict(),
            "stepper": self.stepper.state_dict(),
            "generator": self.generator.get_state(),
            **global_rng_state(self.device),
            "history": [dict(h) for h in self.history],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.stepper.load_state_dict(state["stepper"])
        self.generator.set_state(state["generator"].cpu())
        restore_global_rng(state, self.device)
        self.history = [dict(h) for h in state["history"]]
        if len(self.history) != state["epoch"]:
            raise ValueError("resume state is inconsistent: its history does not match its epoch")

    # -- loop ------------------------------------------------------------------------------------

    def run(self, on_epoch: Callable[[dict, Progress], None] | None, resume: Mapping | None) -> list[dict]:
        if resume is not None:
            self.restore(resume)
        while len(self.history) < self.epochs and not self._stopped():
            metrics = self.epoch(len(self.history) + 1)
            self.history.append(metrics)
            if on_epoch is not None:
                final = len(self.history) == self.epochs or self._stopped()
                on_epoch(dict(metrics), Progress(metrics["epoch"], self.epochs, final, self.snapshot))
        return [dict(h) for h in self.history]

    def _stopped(self) -> bool:
        return bool(self.history) and self.history[-1]["status"] != OK

    def epoch(self, epoch: int) -> dict:
        """Train one epoch, score the scored split, return the epoch's metrics dict."""
        start = time.perf_counter()
        model, stepper, autocast = self.model, self.stepper, self.autocast
        model.train()
        # Per-step results stay on the device and are reduced once per epoch: one small op per
        # step (argmax) instead of running sums, and no sync except the periodic finiteness check.
        losses, predictions, targets = [], [], []
        finite = True
        batches = self.train.batches(
            self.workload.batch_size, shuffle=True, generator=self.generator, train=True
        )
        compute = Compute()
        for step, (inputs, labels) in enumerate(batches, start=1):
            first: list[tuple[torch.Tensor, torch.Tensor]] = []

            def closure(inputs=inputs, labels=labels, first=first) -> torch.Tensor:
                model.zero_grad(set_to_none=True)
                with autocast():
                    logits = model(inputs)
                loss = F.cross_entropy(logits.float(), labels)
                loss.backward()
                if not first:  # SAM evaluates twice; the metrics use the first (unperturbed) pass
                    first.append((loss.detach(), logits.detach()))
                return loss

            compute.step(stepper, closure)
            loss, logits = first[0]
            losses.append(loss)
            predictions.append(logits.argmax(dim=1))
            targets.append(labels)
            if step % CHECK_EVERY == 0 and not torch.stack(losses[-CHECK_EVERY:]).isfinite().all():
                finite = False
                break
        sizes = [t.shape[0] for t in targets]
        seen = sum(sizes)
        weights = torch.tensor(sizes, dtype=torch.float32, device=self.device)
        train_loss = (torch.stack(losses) * weights).sum().item() / seen
        correct = (torch.cat(predictions) == torch.cat(targets)).sum()
        finite = finite and math.isfinite(train_loss) and params_finite(self.params)
        with stepper.evaluating():
            score = self.evaluate()
        metrics = epoch_metrics(epoch, train_loss, correct.item() / seen, self.score_key, score,
                                self.chance, stepper, finite, self.device, self.hparams)
        metrics.update(compute.metrics(), seconds=time.perf_counter() - start)
        return metrics

    @torch.no_grad()
    def evaluate(self) -> float:
        """Accuracy on the scored split (validation in the tune stage, test in the seed stage)."""
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for inputs, labels in self.scored.batches(
            self.workload.eval_batch_size, shuffle=False, generator=self.generator
        ):
            with self.autocast():
                logits = self.model(inputs)
            correct += (logits.argmax(dim=1) == labels).sum()
        return correct.item() / len(self.scored)
