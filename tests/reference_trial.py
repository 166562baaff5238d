"""The solo training loop as it was before runs became populations of one: the reference path.

``trainables.run_trial`` now trains a run as a population of one member (``trainables.population``).
This is the earlier, separate loop, kept verbatim for the tests only, so that new and old code run
side by side on the same machine and their histories are compared bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import torch
from torch.nn import functional as F

from trainables.trial import (
    CHECK_EVERY,
    Compute,
    Progress,
    TrialConfig,
    epoch_metrics,
    global_rng_state,
    load_splits,
    params_finite,
    restore_global_rng,
    select_device,
)
from trainables.workload import check_layer_groups, get_workload
from vocab.contracts import OK, STAGE_METRIC


def run_reference_trial(config: Mapping[str, Any], *, on_epoch: Callable[[dict, Progress], None] | None = None,
                        resume: Mapping[str, Any] | None = None) -> list[dict]:
    """``run_trial`` as it was: the solo loop below."""
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
