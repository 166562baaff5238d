"""The training loop: K runs of one (workload, strategy) pair trained together in one process.

Every run is a member of a population: ``run_trial(config)`` is ``run_population([config])[0]``.
How members run forward is decided once per trial (``trainables.forward.choose_path``): a single
member, a model with buffers (BatchNorm) or one trained in bf16 runs each member through its own
module, one after another, with its own Stepper, generator and stream of torch's global RNG (the
``solo`` path, exactly the run alone, paper RNG order included for one member). Otherwise:

A small model's training step is mostly per-call overhead, so K members share each step's forward
and backward pass: their parameters are stacked along a new leading dimension, one batched matmul
(``baddbmm``) or grouped convolution per layer computes all K outputs, and one backward fills all
K gradients (for a chain of Linear and ReLU layers with the stacked update, written out without
autograd's graph: ``Stacked.train_step``, the same operations). Each member is still a whole run of
its own:

- its own model, built after seeding torch with its own seed, so its initial weights are those of
  the same run trained alone; its parameters keep their identity but their storage becomes a slice
  of the stacked tensor, so every update written into them lands in the stack;
- its own update. When the strategy has a stacked form (``strategies.stacked``: every built-in one)
  one ``StackedStepper`` updates all members in one set of tensor ops over the member dimension,
  each with its own hyperparameters, schedule position and state (DALS's phase from its own losses),
  and SAM's second pass at every member's perturbed weights is one more batched forward and
  backward. Otherwise (a plugin's update, ``stacked=False``) each member's own ``Stepper`` runs,
  unchanged, on views of the stacks, and SAM's second pass is a forward and backward of that member
  alone;
- its own ``torch.Generator`` (data order and augmentation), history and divergence: a diverged
  member is recorded as such and frozen while the others go on.

Exactness: a member's history is bit-identical to ``run_trial`` of its config (tested for every
strategy on the synthetic MLP and a sample on the ConvNet, both update paths): batched matmuls with
the solo run's backward products (``_StackedLinear``) and one convolution per member round exactly
as alone, and on the CPU the stacked update rounds as each member's own Stepper. One grouped
convolution for all members (``grouped_conv``; on a GPU taken when a timed first batch says it
pays, ``trainables.forward.grouped_conv_pays``, so two runs may take different layouts) rounds
differently, about 1e-7 relative in float32; DALS's trust ratio, a ratio of norms, magnifies that
to about 1e-4 within two epochs, and long runs drift apart as any two runs on different kernels do.
Models are stacked layer by layer when they are ``nn.Sequential`` trees of ``Linear``, ``Conv2d``,
``ReLU``, ``MaxPool2d`` and ``Flatten``; anything else is run through ``torch.func.vmap`` (slower,
without per-member dropout streams, and not bit-identical: vmap's batched backward products may
take other BLAS kernels than a member's own, CPU by CPU; on one AMD EPYC a weight norm moved
about 1e-7 relative in two epochs). On shared passes the ``seconds`` of a member's epoch is its
share of the population's epoch time, and with the stacked update its ``step_seconds`` is its share
of the stacked steps' time (outside the batched passes); ``grad_evals`` counts each member's passes
as alone (SAM two per step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainables.forward import (
    SOLO,
    STACKED,
    Stacked,
    Vmapped,
    choose_path,
    grouped_conv_pays,
    has_conv,
    member_losses,
)
from trainables.layers import LayerProbe
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
from vocab import predictions
from vocab.contracts import EPOCHS, OK, SEED, STAGE_METRIC, TUNE

__all__ = ["PopulationError", "run_population", "run_trial"]

SHARED_KEYS = ("workload", "workload_options", "strategy", "epochs", "stage", "data_dir", "device", "cpus",
               "rng_order", "budget_unit")
"""Config keys every member of a population must agree on; members differ in hparams and seed, and tune
trials in their tuning ``study`` (each then trains on and is scored on its study's own split)."""


class PopulationError(ValueError):
    """Members that cannot train together, or a model that cannot be stacked."""


# ----- members ------------------------------------------------------------------------------------

@dataclass
class _Member:
    cfg: TrialConfig
    model: nn.Module
    stepper: Any
    generator: torch.Generator
    hparams: dict  # resolved, reported with each epoch
    groups: list[list[nn.Parameter]]  # layer groups, bottom to top
    rng: dict  # torch's global RNG states where this member left them (the solo path's dropout stream)
    split: tuple[Any, Any, float] | None = None  # (train, scored, chance) of its study: its own rows
    history: list[dict] = field(default_factory=list)
    relink: bool = True  # point the params' grads at the stacked gradients before the next step

    @property
    def params(self) -> list[nn.Parameter]:
        """Every parameter, the layer groups' in order."""
        return [p for group in self.groups for p in group]

    @property
    def frozen(self) -> bool:
        return bool(self.history) and self.history[-1]["status"] != OK


def _configs(configs: Sequence[Mapping[str, Any]]) -> list[TrialConfig]:
    if not configs:
        raise PopulationError("a population needs at least one member config")
    cfgs = [TrialConfig.from_dict(c) for c in configs]
    for key in SHARED_KEYS:
        values = {repr(getattr(c, key)) for c in cfgs}
        if len(values) > 1:
            raise PopulationError(f"population members must share {key!r}; got {sorted(values)} "
                                  f"(members may differ only in hparams and seed, and tune trials in study)")
    if len({c.study for c in cfgs}) > 1 and cfgs[0].stage != TUNE:
        raise PopulationError("population members of the seed stage must share 'study'; got "
                              f"{sorted({c.study for c in cfgs})} (a seed run's study is its meta's, not its config's)")
    if len(cfgs) > 1 and cfgs[0].rng_order != "lrsweep":
        # The paper's order draws every member's data order from one global stream: not separable.
        raise PopulationError(f"rng_order {cfgs[0].rng_order!r} cannot train as a population; allowed: 'lrsweep'")
    return cfgs


def run_trial(
    config: Mapping[str, Any],
    *,
    on_epoch: Callable[[dict, Progress], None] | None = None,
    resume: Mapping[str, Any] | None = None,
    layers: bool = True,
    predictions: bool = True,
) -> list[dict]:
    """Train one trial and return its per-epoch metrics dicts (no Ray needed): a population of one.

    ``on_epoch(metrics, progress)`` is called after each epoch (the Ray trainable reports from it).
    ``resume`` is a ``Progress.snapshot()`` of an earlier run of the same config (or a checkpoint of
    the separate solo loop lrsweep had before): training goes on from the epoch after it, and the
    returned list includes the earlier epochs. Uses ``config["cpus"]`` torch threads (restored afterwards).
    ``layers=False`` leaves the per-layer diagnostics out, ``predictions=False`` a seed run's test
    predictions (``benchmarks/trainable_overhead.py`` times both).
    """
    each = None if on_epoch is None else (lambda metrics, progress: on_epoch(metrics[0], progress))
    return run_population([config], on_epoch=each, resume=resume, layers=layers, predictions=predictions)[0]


def run_population(
    configs: Sequence[Mapping[str, Any]],
    *,
    on_epoch: Callable[[list[dict | None], Progress], None] | None = None,
    resume: Mapping[str, Any] | None = None,
    grouped_conv: bool | None = None,
    stacked: bool | None = None,
    layers: bool = True,
    predictions: bool = True,
) -> list[list[dict]]:
    """Train every config (one member each) together; return each member's per-epoch metrics dicts.

    The configs are ``run_trial`` configs that agree on ``SHARED_KEYS``. ``on_epoch(metrics, progress)``
    is called after each epoch with one metrics dict per member (None for a member frozen earlier);
    ``progress.snapshot()`` is the population's state, which ``resume`` continues exactly.
    Member i's history equals ``run_trial(configs[i])`` (see the module docstring for how exactly).
    ``grouped_conv``: one grouped convolution for all members (default: on CUDA where it times faster).
    ``stacked``: one stacked update for all members (default: whenever the strategy has one and the
    members share their passes; True raises ``PopulationError`` where there is none); False steps each
    member's own Stepper. A snapshot resumes on the update path it was taken on. ``layers`` and
    ``predictions``: as ``run_trial``'s.
    """
    cfgs = _configs(configs)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfgs[0].cpus)
    try:
        return _Population(cfgs, grouped_conv, stacked, layers, predictions).run(on_epoch, resume)
    finally:
        torch.set_num_threads(threads)


class _Population:
    """The built members and, where they share passes, their stacked parameters; ``run`` is the loop."""

    def __init__(self, cfgs: list[TrialConfig], grouped_conv: bool | None = None,
                 stacked: bool | None = None, layers: bool = True, predictions: bool = True) -> None:
        import strategies
        from strategies.stacked import stacked_stepper

        first = cfgs[0]
        self.grouped_conv = grouped_conv
        self.record_layers = layers
        self.workload = workload = get_workload(first.workload)
        options = workload.validate_options(first.workload_options)
        strategy = strategies.get_strategy(first.strategy)
        regime = workload.regime_for(options)
        self.device = select_device(first.device)
        epochs = first.epochs or workload.default_epochs
        data, self.train, self.scored, self.chance = load_splits(workload, options, first, self.device)
        # Tune trials of several studies: each member trains on and is scored on its study's own split, of the
        # same sizes (the same holdout fraction), so the members still step together.
        splits = {first.study: (self.train, self.scored, self.chance)}
        for cfg in cfgs:
            if cfg.study not in splits:
                splits[cfg.study] = load_splits(workload, options, cfg, self.device)[1:]
        sizes = {(len(train), len(scored)) for train, scored, _ in splits.values()}
        if len(sizes) > 1:
            raise PopulationError(f"tune trials of studies {sorted(splits)} hold out different numbers of rows "
                                  f"({sorted(sizes)}); members of one population must step together")
        self.mixed = len(splits) > 1
        self.steps_per_epoch = self.train.num_batches(workload.batch_size)
        self.score_key = STAGE_METRIC[first.stage]
        # A seed run's last epoch carries its test predictions (vocab.predictions); tune trials none.
        self.record_predictions = predictions and first.stage == SEED
        self.num_classes, self._labels = data.num_classes, None
        self.members: list[_Member] = []
        self.epochs_run = 0
        self.total_steps = total_steps = budget_steps(epochs * self.steps_per_epoch, first.budget_unit, strategy)
        self.epochs = -(-total_steps // self.steps_per_epoch)
        paper_order = first.rng_order == "paper"
        layer_groups: list[list[nn.Parameter]] = []
        for cfg in cfgs:
            torch.manual_seed(cfg.seed)  # initial weights and dropout; after data loading on purpose
            if paper_order and workload.paper_rng_prelude is not None:
                workload.paper_rng_prelude()
            model = workload.build_model(options, data).to(self.device)
            groups = workload.layer_groups(model)
            check_layer_groups(workload.name, model, groups)
            layer_groups = layer_groups or [list(group) for group in groups]  # the first member's
            hparams = strategies.resolve_hparams(strategy, regime, workload.family_overrides, cfg.hparams)
            stepper = strategy.build(groups, hparams, total_steps=total_steps,
                                     steps_per_epoch=self.steps_per_epoch, regime=regime)
            generator = torch.Generator().manual_seed(cfg.seed)  # shuffling and augmentation
            if paper_order:  # the reference shuffles with the global RNG, continuing after the model's init
                generator.set_state(torch.get_rng_state())
            self.members.append(_Member(cfg, model, stepper, generator, hparams, [list(group) for group in groups],
                                        global_rng_state(self.device), splits[cfg.study]))
        amp = workload.mixed_precision and self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        # bf16 needs no loss scaling, so the strategies' step(closure) stays as it is.
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
        self.path = choose_path(workload, self.members[0].model, len(cfgs), amp)
        self.engine = self._engine = None
        if self.path == SOLO:
            if stacked:
                raise PopulationError(f"a stacked update needs members that share their passes; this trial's "
                                      f"{len(cfgs)} member(s) run alone (trainables.forward.choose_path)")
            return
        self._stack()
        # The members' Steppers are built either way (they check each member's settings, and a
        # snapshot of the per-member path resumes on them); the stacked update takes over when it can.
        name_of = {id(p): name for name, p in self.members[0].model.named_parameters()}
        self.group_names = [[name_of[id(p)] for p in group] for group in layer_groups]
        stacks = [[self.stacked[name] for name in names] for names in self.group_names]

        def engine():
            return stacked_stepper(strategy, stacks, [m.hparams for m in self.members], total_steps,
                                   self.steps_per_epoch, regime)

        self._engine = engine
        self.engine = engine() if stacked is not False else None
        if stacked and self.engine is None:
            raise PopulationError(f"strategy {strategy.name!r} has no stacked update (strategies.stacked); "
                                  "use stacked=None or False")

    def _stack(self) -> None:
        """Move every member's parameters into slices of one stacked tensor per parameter name."""
        k = len(self.members)
        template = self.members[0].model
        self.names = [n for n, _ in template.named_parameters()]
        self.stacked: dict[str, torch.Tensor] = {}
        own = [dict(m.model.named_parameters()) for m in self.members]
        for name in self.names:
            stack = torch.stack([params[name].detach() for params in own]).requires_grad_(True)
            stack.grad = torch.zeros_like(stack)
            for i, params in enumerate(own):
                params[name].data = stack.detach()[i]  # same Parameter object, storage in the stack
            self.stacked[name] = stack
        self._own = own
        self.forward = Stacked(template, k, self._grouped(template)) if self.path == STACKED else Vmapped(template)

    def _grouped(self, template: nn.Module) -> bool:
        """One grouped convolution for all members, or one per member (``grouped_conv``; by default
        on a GPU whichever a forward and backward of this population's first batch runs faster). The
        CPU takes one per member untimed: there it costs less (BENCHMARKS.md) and rounds as alone."""
        if self.grouped_conv is not None:
            return self.grouped_conv
        if self.device.type != "cuda" or not has_conv(template):
            return False
        x = next(self.train.batches(self.workload.batch_size, shuffle=False, generator=torch.Generator()))[0]
        return grouped_conv_pays(template, self.stacked, x.expand(len(self.members), *x.shape))[0]

    def stepper(self, i: int) -> Any:
        """Member ``i``'s Stepper, or its view of the stacked one: ``lrs()`` and ``diagnostics()`` for its metrics."""
        return self.engine.member(i) if self.engine is not None else self.members[i].stepper

    def _link_grads(self, i: int) -> None:
        own = self._own[i]
        for name in self.names:
            own[name].grad = self.stacked[name].grad[i]
        self.members[i].relink = False

    # -- state -----------------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Everything the loop needs to go on after ``epoch``. Members that run alone keep their own
        model and RNG stream; shared passes keep every member's weights in the stacks, and the update's
        state is the stacked stepper's (``"engine"``) or each member's Stepper's."""
        engine, solo = self.engine, self.path == SOLO
        return {
            "epoch": self.epochs_run,
            "path": self.path,
            "stacked": None if solo else {name: stack.detach() for name, stack in self.stacked.items()},
            "engine": engine.state_dict() if engine is not None else None,
            "members": [{"model": m.model.state_dict() if solo else None,
                         "stepper": m.stepper.state_dict() if engine is None else None,
                         "generator": m.generator.get_state(), "rng": dict(m.rng),
                         "history": [dict(h) for h in m.history]}
                        for m in self.members],
            **global_rng_state(self.device),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        state = _current_format(state)
        if len(state["members"]) != len(self.members):
            raise PopulationError(f"resume state has {len(state['members'])} members, the population "
                                  f"{len(self.members)}")
        engine_state = state.get("engine")  # resume on the update path the snapshot was taken on
        if engine_state is not None and self.path == SOLO:
            raise PopulationError("the resume state holds a stacked update, but this trial's members run alone")
        if self.path != SOLO:
            if state["stacked"] is None:
                raise PopulationError("the resume state holds members that ran alone; this trial stacks them")
            with torch.no_grad():
                for name, stack in self.stacked.items():
                    stack.copy_(state["stacked"][name])  # in place: the members' parameters view these stacks
        if engine_state is None:
            self.engine = None
        else:
            self.engine = self.engine or self._engine()
            if self.engine is None:
                raise PopulationError(f"the resume state holds a stacked update that strategy "
                                      f"{self.members[0].cfg.strategy!r} no longer has")
            self.engine.load_state_dict(engine_state)
        for i, (m, saved) in enumerate(zip(self.members, state["members"], strict=True)):
            if saved["model"] is not None:
                m.model.load_state_dict(saved["model"])
            elif self.path == SOLO:  # taken on stacked passes: each member's slice of the stacks
                with torch.no_grad():
                    for name, p in m.model.named_parameters():
                        p.copy_(state["stacked"][name][i])
            if engine_state is None:
                m.stepper.load_state_dict(saved["stepper"])
            m.generator.set_state(saved["generator"].cpu())
            m.history = [dict(h) for h in saved["history"]]
            m.rng = dict(saved.get("rng") or global_rng_state(self.device))
            if len(m.history) > state["epoch"]:
                raise PopulationError("resume state is inconsistent: a member's history is longer than its epoch")
        restore_global_rng(state, self.device)
        self.epochs_run = state["epoch"]

    # -- loop ------------------------------------------------------------------------------------

    def _steps_in(self, epoch: int) -> int:
        """Optimizer steps in 1-based ``epoch``: a whole pass over the data, but the last epoch of a
        budget in gradient evaluations stops when its steps are spent."""
        return min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch)

    def run(self, on_epoch: Callable[[list[dict | None], Progress], None] | None,
            resume: Mapping[str, Any] | None) -> list[list[dict]]:
        if resume is not None:
            self.restore(resume)
        while self.epochs_run < self.epochs and not all(m.frozen for m in self.members):
            self.epochs_run += 1
            if self.path == SOLO:
                metrics = [None if m.frozen else self._solo_epoch(m, self.epochs_run) for m in self.members]
            else:
                metrics = self.epoch(self.epochs_run)
            if on_epoch is not None:
                final = self.epochs_run == self.epochs or all(m.frozen for m in self.members)
                on_epoch(metrics, Progress(self.epochs_run, self.epochs, final, self.snapshot))
        return [[dict(h) for h in m.history] for m in self.members]

    def _solo_epoch(self, m: _Member, epoch: int) -> dict:
        """Train one member alone for an epoch, score it, return (and record) its metrics dict.

        Its own module, Stepper and generator, and torch's global RNG where it left it: the run
        trained alone, whatever the other members did in between."""
        if len(self.members) > 1:
            restore_global_rng(m.rng, self.device)
        start = time.perf_counter()
        model, stepper, autocast = m.model, m.stepper, self.autocast
        model.train()
        # Per-step results stay on the device and are reduced once per epoch: one small op per
        # step (argmax) instead of running sums, and no sync except the periodic finiteness check.
        losses, predictions, targets = [], [], []
        finite = True
        train, _, chance = m.split
        batches = train.batches(self.workload.batch_size, shuffle=True, generator=m.generator, train=True)
        compute = Compute()
        steps = self._steps_in(epoch)
        probe = LayerProbe() if self.record_layers else None
        for step, (inputs, labels) in enumerate(batches, start=1):
            if step > steps:  # the budget's last steps are spent
                break
            first: list[tuple[torch.Tensor, torch.Tensor]] = []

            def closure(inputs=inputs, labels=labels, first=first, last=step == steps) -> torch.Tensor:
                model.zero_grad(set_to_none=True)
                with autocast():
                    logits = model(inputs)
                loss = F.cross_entropy(logits.float(), labels)
                loss.backward()
                if not first:  # SAM evaluates twice; the metrics use the first (unperturbed) pass
                    first.append((loss.detach(), logits.detach()))
                    if last and probe is not None:  # the epoch's per-layer view, from this step's own gradients
                        probe.before(m.groups, [[p.grad for p in group] for group in m.groups])
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
        finite = finite and math.isfinite(train_loss) and params_finite(m.params)
        layers = probe.after(m.groups, stepper.lrs(), stepper.layer_diagnostics()) if probe is not None else None
        with stepper.evaluating():
            score, predicted = self._solo_score(m)
        metrics = epoch_metrics(epoch, train_loss, correct.item() / seen, self.score_key, score,
                                chance, stepper, finite, self.device, m.hparams)
        metrics.update(compute.metrics(), seconds=time.perf_counter() - start)
        self._add_predictions(metrics, predicted)
        if layers is not None:
            metrics["layers"] = layers
        m.history.append(metrics)
        m.rng = global_rng_state(self.device)
        return dict(metrics)

    @torch.no_grad()
    def _solo_score(self, m: _Member) -> tuple[float, torch.Tensor | None]:
        """A member's accuracy on the scored split (validation in the tune stage, test in the seed stage)
        and, where predictions are recorded, its predicted class per row in the split's order."""
        m.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        predicted = []
        scored = m.split[1]
        for inputs, labels in scored.batches(self.workload.eval_batch_size, shuffle=False, generator=m.generator):
            with self.autocast():
                logits = m.model(inputs)
            predicted.append(logits.argmax(dim=1))
            correct += (predicted[-1] == labels).sum()
        return correct.item() / len(scored), torch.cat(predicted) if self.record_predictions else None

    def _add_predictions(self, metrics: dict, predicted: torch.Tensor | None) -> None:
        """A seed run's last epoch (the budget's last, or the one it diverged in) gets its packed test
        predictions (``vocab.predictions``): only there, so the per-epoch history stays small."""
        if not self.record_predictions or (metrics["epoch"] < self.epochs and metrics["status"] == OK):
            return
        if self._labels is None:
            self._labels = self.scored.labels.cpu().numpy()
        metrics[predictions.KEY] = predictions.pack(predicted.cpu().numpy(), self._labels, self.num_classes)

    def epoch(self, epoch: int) -> list[dict | None]:
        start = time.perf_counter()
        members = self.members
        active = [i for i, m in enumerate(members) if not m.frozen]
        for i in active:
            members[i].model.train()
        # A member frozen earlier keeps a slot in the stacks: it gets rows from a throwaway generator
        # (its own is never drawn from again), and its outputs are ignored.
        spare = torch.Generator().manual_seed(0)
        generators = [m.generator if i in active else spare for i, m in enumerate(members)]
        feed = self.train.member_batches(self.workload.batch_size, generators, train=True) if not self.mixed else \
            split_batches([m.split[0] for m in members], self.workload.batch_size, generators, train=True)
        step_losses: list[torch.Tensor] = []  # per step, (K,): one small op per step, not per member
        correct = torch.zeros(len(members), dtype=torch.int64, device=self.device)
        weights: list[int] = []
        steps_run = dict.fromkeys(active, 0)
        compute = {i: Compute() for i in active}
        probes = {i: LayerProbe() for i in active} if self.record_layers else {}
        running = list(active)
        steps = self._steps_in(epoch)
        for step in range(1, steps + 1):
            inputs, labels = next(feed)
            loss, logits = self._forward_backward(inputs, labels, running)
            if step == steps and probes:  # the epoch's per-layer view, from this step's own gradients
                for i in running:
                    probes[i].before(self._weights(i), [[self.stacked[n].grad[i] for n in names]
                                                        for names in self.group_names])
            step_losses.append(loss.detach())
            correct += (logits.argmax(dim=2) == labels).sum(dim=1)
            weights.append(labels.shape[1])
            if self.engine is not None:
                self._stacked_step(loss, inputs, labels, running, compute)
                for i in running:
                    steps_run[i] = step
            else:
                self._member_steps(loss, inputs, labels, running, compute)
                for i in running:
                    steps_run[i] = step
            if step % CHECK_EVERY == 0:
                # A member whose loss went non-finite stops here, as its solo run's loop breaks.
                ok = torch.stack(step_losses[-CHECK_EVERY:]).isfinite().all(dim=0).tolist()
                running = [i for i in running if ok[i]]
                if not running:
                    break
        losses = torch.stack(step_losses) if step_losses else torch.zeros(0, len(members))
        layers = {i: probe.after(self._weights(i), self.stepper(i).lrs(), self.stepper(i).layer_diagnostics())
                  for i, probe in probes.items()}
        return self._close_epoch(epoch, active, losses, correct, weights, steps_run, compute, start, layers)

    def _weights(self, i: int) -> list[list[torch.Tensor]]:
        """Member ``i``'s weights per layer group, bottom to top: its slices of the stacks."""
        return [[self.stacked[n].detach()[i] for n in names] for names in self.group_names]

    def _member_steps(self, loss: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, running: list[int],
                      compute: dict[int, Compute]) -> None:
        """Each running member's own Stepper on views of the stacks; the batched pass is its first evaluation."""
        for i in running:
            m = self.members[i]
            if m.relink:
                self._link_grads(i)
            first = [loss[i].detach()]

            def closure(m=m, batch=(inputs[i], labels[i]), first=first) -> torch.Tensor:
                if first:
                    return first.pop()
                m.relink = True  # a second pass (SAM) leaves the member's own grads behind
                return self._alone(m, batch)

            compute[i].step(m.stepper, closure)

    def _stacked_step(self, loss: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, running: list[int],
                      compute: dict[int, Compute]) -> None:
        """One stacked update of the running members; each is counted its passes and a share of the time."""
        engine = self.engine
        inside = 0.0

        def second_pass() -> torch.Tensor:  # SAM: the batched pass at every member's perturbed weights
            nonlocal inside
            start = time.perf_counter()
            try:
                return self._forward_backward(inputs, labels, running)[0]
            finally:
                inside += time.perf_counter() - start

        start = time.perf_counter()
        engine.step(loss.detach(), active=running, second_pass=second_pass if engine.needs_second_pass else None)
        share = (time.perf_counter() - start - inside) / len(running)
        evals = 2 if engine.needs_second_pass else 1
        for i in running:
            compute[i].add(evals, share)

    def _forward_backward(self, inputs: torch.Tensor, labels: torch.Tensor, running: list[int]):
        """One batched pass: per-member mean cross-entropy (K,) and logits (K, B, classes); grads into
        the stacks. The slots of members not running are computed and ignored."""
        # The stacked update reads the stacks' .grad only: backward may hand each one its own new
        # tensor, with no pass to zero it first and none to add into it. The members' own Steppers
        # hold views of the stacks' .grad, which must stay the same tensors.
        fresh = self.engine is not None
        if fresh and getattr(self.forward, "chain", False):
            loss, logits, grads = self.forward.train_step(self.stacked, inputs, labels, running)
            for name, grad in grads.items():
                self.stacked[name].grad = grad
            return loss, logits
        for stack in self.stacked.values():
            if fresh:
                stack.grad = None
            else:
                stack.grad.zero_()
        logits = self.forward(self.stacked, inputs)
        loss, objective = member_losses(logits, labels, running)
        objective.backward()
        return loss, logits.detach()

    def _alone(self, m: _Member, batch: tuple) -> torch.Tensor:
        """A forward and backward of one member at its current weights (SAM's perturbed pass)."""
        inputs, labels = batch
        m.model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m.model(inputs).float(), labels)
        loss.backward()
        return loss

    def _close_epoch(self, epoch, active, losses, correct, weights, steps_run, compute, start,
                     layers) -> list[dict | None]:
        with ExitStack() as scoring:  # each member's weights to score (Schedule-Free: its average)
            for i in active:
                scoring.enter_context(self.stepper(i).evaluating())
            scores, predicted = self.evaluate(active)
        seconds = (time.perf_counter() - start) / max(1, len(active))
        out: list[dict | None] = [None] * len(self.members)
        for i in active:
            m = self.members[i]
            n = steps_run[i]
            w = torch.tensor(weights[:n], dtype=torch.float32, device=self.device)
            seen = int(sum(weights[:n]))
            member_losses = losses[:n, i]
            train_loss = (member_losses * w).sum().item() / seen
            ok = bool(member_losses.isfinite().all()) and math.isfinite(train_loss) and params_finite(m.params)
            metrics = epoch_metrics(epoch, train_loss, correct[i].item() / seen, self.score_key, scores[i],
                                    m.split[2], self.stepper(i), ok, self.device, m.hparams)
            metrics.update(compute[i].metrics(), seconds=seconds)
            self._add_predictions(metrics, predicted[i] if predicted is not None else None)
            if i in layers:
                metrics["layers"] = layers[i]
            m.history.append(metrics)
            out[i] = dict(metrics)
            if not ok:  # frozen from now on; zeros keep NaNs out of the shared kernels
                with torch.no_grad():
                    for p in m.params:
                        p.zero_()
        return out

    @torch.no_grad()
    def evaluate(self, active: list[int]) -> tuple[dict[int, float], torch.Tensor | None]:
        """Accuracy of every active member on the scored split, one batched pass per eval batch, and
        where predictions are recorded every member's predicted class per row (K, rows)."""
        k = len(self.members)
        correct = torch.zeros(k, dtype=torch.int64, device=self.device)
        predicted = []
        generator = torch.Generator()  # unused: evaluation neither shuffles nor augments
        size = self.workload.eval_batch_size
        if self.mixed:  # each member on its own study's validation rows
            batches = zip(*(m.split[1].batches(size, shuffle=False, generator=generator) for m in self.members),
                          strict=True)
            feed = ((torch.stack([x for x, _ in b]), torch.stack([y for _, y in b])) for b in batches)
        else:
            feed = ((x.unsqueeze(0).expand(k, *x.shape), y) for x, y in
                    self.scored.batches(size, shuffle=False, generator=generator))
        for inputs, labels in feed:
            logits = self.forward(self.stacked, inputs)
            predicted.append(logits.argmax(dim=2))
            correct += (predicted[-1] == labels).sum(dim=-1)
        scores = {i: correct[i].item() / len(self.scored) for i in active}
        return scores, torch.cat(predicted, dim=1) if self.record_predictions else None


def split_batches(splits: Sequence[Any], batch_size: int, generators: Sequence[torch.Generator], *,
                  train: bool = False):
    """``Split.member_batches`` over one split per member (tune trials of several studies): member i's
    rows and augmentation exactly those of ``splits[i].batches(generator=generators[i])``."""
    passes = [split.batches(batch_size, shuffle=True, generator=g, train=train)
              for split, g in zip(splits, generators, strict=True)]
    for batch in zip(*passes, strict=True):
        yield torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])


def budget_steps(grad_evals: int, unit: str, strategy: Any) -> int:
    """A run's optimizer steps: one per epoch batch (``epochs``), or its gradient evaluations shared
    out ``strategy.passes_per_step`` per step (``gradient_evaluations``; at least one step)."""
    return grad_evals if unit == EPOCHS else max(1, grad_evals // strategy.passes_per_step)


def _current_format(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """A snapshot in the population format: a checkpoint of the earlier separate solo loop (model,
    stepper, generator and history at the top) becomes a population of one that ran alone."""
    if "members" in state:
        return state
    rng = {"torch_rng": state["torch_rng"], "cuda_rng": state["cuda_rng"]}
    if len(state["history"]) != state["epoch"]:
        raise PopulationError("resume state is inconsistent: its history does not match its epoch")
    return {"epoch": state["epoch"], "path": SOLO, "stacked": None, "engine": None, **rng,
            "members": [{"model": state["model"], "stepper": state["stepper"], "generator": state["generator"],
                         "rng": rng, "history": state["history"]}]}
