"""Workload descriptions and their registry.

A workload bundles what one training task needs behind a handful of members (docs/STYLE.md 6): how to
load its splits, how to build its model, how to cut that model into layer groups (bottom to top,
named explicitly, never inferred from ``model.children()``), its default epochs and batch size,
its regime, and its options. Differences between workloads live in these fields, never in
``if name == ...`` chains (docs/STYLE.md 1).

A new workload is one ``register_workload(Workload(...))`` call; see "Adding a workload" in README.md.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

# Torch is imported where data is cut or models are built, never at import: a workload's
# declaration (name, regime, options, overrides) is what a sweep spec is validated against.

from vocab.contracts import REGIMES, STAGES, TUNE

__all__ = [
    "Data",
    "Option",
    "Split",
    "StageData",
    "Workload",
    "WorkloadError",
    "gather_rows",
    "get_workload",
    "lazy",
    "list_workloads",
    "register_workload",
]


class WorkloadError(ValueError):
    """A workload name, option or data problem, with the allowed values in the message."""


@dataclass(frozen=True)
class Option:
    """One workload option: its type, default and allowed values.

    ``kind`` is the Python type the value must have (``float`` also accepts ints; ``bool`` is never
    accepted where ``int`` is asked). ``choices`` restricts the value to a set; ``check`` is a
    predicate for anything else (a range), described for the error message by ``allowed``.
    ``nullable`` lets ``None`` through (meaning "not set").
    """

    name: str
    default: Any
    kind: type | tuple[type, ...]
    help: str
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], bool] | None = None
    allowed: str = ""
    nullable: bool = False

    def describe(self) -> str:
        """The allowed values, in words, for error messages."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
            text = " or ".join(k.__name__ for k in kinds)
            if self.allowed:
                text += f" ({self.allowed})"
        return text + (" or None" if self.nullable else "")

    def validate(self, workload: str, value: Any) -> Any:
        """Return ``value`` (ints widened to float where a float is asked) or raise WorkloadError."""
        if value is None and self.nullable:
            return None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.check is not None:
            ok = bool(self.check(value))
        if not ok:
            raise WorkloadError(
                f"workload {workload!r}: option {self.name!r} = {value!r} is not allowed; "
                f"expected {self.describe()}"
            )
        return value


class Split:
    """One split of a workload's data, held as tensors (on the trial's device once moved).

    ``labels`` is an int64 tensor of length ``n``. Subclasses hold their inputs and turn a vector of
    row indices into a model input with ``batch``; ``train`` says whether to augment. Randomness
    comes only from ``generator`` (a CPU ``torch.Generator`` the trial owns and checkpoints).
    """

    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> Split:
        """This split with its tensors on ``device``."""
        raise NotImplementedError

    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator) -> Any:
        """The model input for rows ``index`` (a device tensor)."""
        raise NotImplementedError

    def subset(self, rows: torch.Tensor) -> Split:
        """The split of rows ``rows`` (an int64 CPU tensor of row indices), in that order."""
        raise NotImplementedError

    def batches(
        self, batch_size: int, *, shuffle: bool, generator: torch.Generator, train: bool = False
    ) -> Iterator[tuple[Any, torch.Tensor]]:
        """Yield ``(inputs, labels)`` over one pass; the last batch may be short (drop_last=False)."""
        import torch

        n = len(self)
        device = self.labels.device
        if shuffle:
            order = torch.randperm(n, generator=generator).to(device, non_blocking=True)
        else:
            order = torch.arange(n, device=device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield self.batch(index, train, generator), self.labels[index]

    def member_batches(
        self, batch_size: int, generators: Sequence[torch.Generator], *, train: bool = False
    ) -> Iterator[tuple[Any, torch.Tensor]]:
        """One shuffled pass for each of K members at once: ``(inputs, labels)`` stacked along a leading
        member dimension, member i's rows and augmentation exactly those of ``batches(generator=
        generators[i])`` (the population's batches: one gather per step instead of K)."""
        import torch

        n = len(self)
        orders = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(self.labels.device)
        for start in range(0, n, batch_size):
            index = orders[:, start : start + batch_size]
            yield self.member_batch(index, train, generators), gather_rows(self.labels, index)

    def member_batch(self, index: torch.Tensor, train: bool, generators: Sequence[torch.Generator]) -> Any:
        """The stacked model inputs of K members' rows ``index`` (K, B): each member's ``batch``; a split
        whose ``batch`` draws nothing overrides this with one gather."""
        import torch

        return torch.stack([self.batch(rows, train, g) for rows, g in zip(index, generators, strict=True)])

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)


@dataclass(frozen=True)
class Data:
    """What ``Workload.load_data`` returns: the training and test splits, the number of classes,
    and, only for a dataset that ships one, its own ``validation`` split.

    lrsweep makes the validation split, not the workload: in the tune stage it scores
    ``validation`` when given, else rows it holds out of ``train`` (``Workload.holdout``, a fixed
    permutation); ``test`` is scored in the seed stage only. So a workload cannot tune on test.
    """

    train: Split
    test: Split
    num_classes: int
    validation: Split | None = None


@dataclass(frozen=True)
class StageData:
    """The splits one stage trains on and scores (``Workload.stage_data``), and the loaded data."""

    train: Split
    eval: Split
    data: Data

    @property
    def num_classes(self) -> int:
        return self.data.num_classes


@dataclass(frozen=True)
class Workload:
    """A training task: data, model, explicit layer groups, defaults and options.

    Members:
      - ``load_data(options, data_dir) -> Data``: train and test (and a shipped validation split,
        if any) as tensors on the CPU; the trial moves them. Must not draw from torch's global RNG
        (the trial seeds it just before ``build_model``).
      - ``holdout``: validation rows carved out of train in the tune stage when ``load_data``
        gives no validation split: a fraction of the training rows, or the name of an option that
        holds a fraction (float) or a row count (int).
      - ``train_limit`` / ``eval_limit``: names of options (int or None) that keep only the first
        n rows of the split trained on / scored, after the validation rows are carved out.
      - ``build_model(options, data) -> nn.Module``: ``model(inputs) -> logits``.
      - ``layer_groups(model) -> list[list[nn.Parameter]]``: bottom (input) to top (output); every
        trainable parameter in exactly one group.
      - ``regime``: "scratch" or "finetune" (the strategies' canonical settings depend on it);
        ``regime_of(options)`` overrides it per options (text with ``pretrained: false``).
      - ``family_overrides``: hyperparameters replacing a strategy's canonical ones by strategy
        family, e.g. CIFAR-10's SGD-family weight decay of 5e-4.
      - ``mixed_precision``: bf16 autocast when the trial runs on CUDA.
      - ``paper_rng_prelude()``: the draws the paper's reference code makes from torch's global
        RNG between seeding it and building the model (synthetic: its data generation). Only
        trials with ``rng_order: "paper"`` call it (``lrsweep reproduce``).
      - ``population``: runs of a pair one trial trains together under ``resources.population: auto``
        (``trainables.population``); 1 where populations do not pay (measured in BENCHMARKS.md) or
        cannot train (models with buffers, text fine-tunes).
      - ``buffers``: its model keeps buffers (BatchNorm's running statistics, DistilBERT's position
        ids), so the members of a population cannot share passes (``alone_because``).
    """

    name: str
    description: str
    regime: str
    default_epochs: int
    batch_size: int
    load_data: Callable[[dict, str | None], Data]
    build_model: Callable[[dict, Data], nn.Module]
    layer_groups: Callable[[nn.Module], list[list[nn.Parameter]]]
    options: tuple[Option, ...] = ()
    eval_batch_size: int = 1024
    family_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    regime_of: Callable[[dict], str] | None = None
    mixed_precision: bool = False
    paper_rng_prelude: Callable[[], None] | None = None
    holdout: float | str = 0.1
    train_limit: str | None = None
    eval_limit: str | None = None
    population: int = 1
    buffers: bool = False

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise WorkloadError(f"workload {self.name!r}: regime {self.regime!r} is not one of {REGIMES}")
        for name in ("default_epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise WorkloadError(f"workload {self.name!r}: {name} must be a positive int, got {value!r}")
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise WorkloadError(f"workload {self.name!r}: duplicate option names in {names}")
        for field_name in ("holdout", "train_limit", "eval_limit"):
            value = getattr(self, field_name)
            if isinstance(value, str) and value not in names:
                raise WorkloadError(f"workload {self.name!r}: {field_name} names no option ({value!r}); "
                                    f"options: {', '.join(names) or 'none'}")
        if not isinstance(self.holdout, str) and not (isinstance(self.holdout, float) and 0 < self.holdout < 1):
            raise WorkloadError(f"workload {self.name!r}: holdout {self.holdout!r}; allowed: a fraction in (0, 1) "
                                "or the name of an option")

    def validate_options(self, options: Mapping[str, Any] | None) -> dict:
        """Every option with defaults filled in; unknown names and bad values raise WorkloadError."""
        options = dict(options or {})
        known = {o.name: o for o in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise WorkloadError(
                f"workload {self.name!r} has no option {unknown[0]!r}; allowed options: {allowed}"
            )
        return {name: opt.validate(self.name, options.get(name, opt.default)) for name, opt in known.items()}

    def validation_rows(self, options: Mapping[str, Any], n_train: int) -> int:
        """How many of ``n_train`` training rows the tune stage holds out for validation."""
        value = options[self.holdout] if isinstance(self.holdout, str) else self.holdout
        return value if isinstance(value, int) else round(n_train * value)

    def stage_data(self, options: Mapping[str, Any], stage: str, data_dir: str | None,
                   study: int = 0) -> StageData:
        """The split a stage trains on and the one it scores (``options`` validated).

        Tune: train minus the held-out validation rows, scored on those rows (or on the dataset's
        own validation split). Seed: all of train, scored on test. The row limits apply last.
        Tuning study ``study`` holds out its own rows (``holdout``'s seed + study); a dataset's own
        validation split is the same for every study.
        """
        if stage not in STAGES:
            raise WorkloadError(f"stage {stage!r}; allowed: {', '.join(STAGES)}")
        data = self.load_data(dict(options), data_dir)
        if not isinstance(data, Data):
            raise WorkloadError(f"workload {self.name!r}: load_data returned {type(data).__name__}, not a Data")
        train, scored = data.train, data.test
        if stage == TUNE:
            if data.validation is not None:
                scored = data.validation
            else:
                keep, val = holdout(len(train), self.validation_rows(options, len(train)), HOLDOUT_SEED + study)
                train, scored = train.subset(keep), train.subset(val)
        return StageData(_first(train, options, self.train_limit), _first(scored, options, self.eval_limit), data)

    def alone_because(self, k: int, mixed_precision: bool = False) -> str | None:
        """Why ``k`` members of this workload would run one after another instead of sharing each
        forward and backward pass, from what is known before a model is built (None: they share).
        ``trainables.forward.choose_path`` starts from this answer and the spec's ``population`` check
        asks it; a built model found to keep buffers runs alone too."""
        if k == 1:
            return "a single member"
        if self.buffers:
            return "its model keeps buffers, which are per module"
        if mixed_precision:
            return "bf16 mixed precision, which the stacked kernels do not take"
        return None

    def regime_for(self, options: Mapping[str, Any]) -> str:
        """The regime a trial with these (validated) options trains in."""
        regime = self.regime_of(dict(options)) if self.regime_of is not None else self.regime
        if regime not in REGIMES:
            raise WorkloadError(f"workload {self.name!r}: regime {regime!r} is not one of {REGIMES}")
        return regime


def _first(split: Split, options: Mapping[str, Any], limit: str | None) -> Split:
    """The first ``options[limit]`` rows of ``split`` (all of them when the option is None)."""
    n = options.get(limit) if limit is not None else None
    if n is None or n >= len(split):
        return split
    import torch

    return split.subset(torch.arange(n))


def check_layer_groups(workload: str, model: nn.Module, groups: Sequence[Sequence[nn.Parameter]]) -> None:
    """Raise WorkloadError unless every trainable parameter sits in exactly one non-empty group."""
    seen: set[int] = set()
    for i, group in enumerate(groups):
        if not group:
            raise WorkloadError(f"workload {workload!r}: layer group {i} is empty")
        for p in group:
            if id(p) in seen:
                raise WorkloadError(f"workload {workload!r}: a parameter appears in two layer groups")
            seen.add(id(p))
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise WorkloadError(f"workload {workload!r}: parameters in no layer group: {missing[:5]}")


def lazy(module: str, name: str) -> Callable:
    """``module.name`` as a function that imports ``module`` on its first call, so that a workload
    is declared (and a spec validated) without importing torch or the workload's libraries."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module
    return call


_REGISTRY: dict[str, Workload] = {}


def register_workload(workload: Workload, *, replace: bool = False) -> Workload:
    """Add ``workload`` to the registry (``replace=True`` to overwrite a name) and return it."""
    if not isinstance(workload, Workload):
        raise TypeError(f"register_workload expects a Workload, got {type(workload).__name__}")
    if workload.name in _REGISTRY and not replace:
        raise WorkloadError(f"workload {workload.name!r} is already registered (pass replace=True)")
    _REGISTRY[workload.name] = workload
    return workload


def get_workload(name: str | Workload) -> Workload:
    """The registered workload called ``name``; an unknown name raises WorkloadError listing them."""
    if isinstance(name, Workload):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise WorkloadError(
            f"unknown workload {name!r}; registered workloads: {', '.join(sorted(_REGISTRY))}"
        ) from None


def list_workloads() -> list[Workload]:
    """All registered workloads, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


HOLDOUT_SEED = 42
"""Seed of the permutation that carves validation rows out of a training split. Fixed, and
independent of the trial seed, so every trial of a sweep tunes against the same validation rows."""


def holdout(n: int, n_val: int, seed: int = HOLDOUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into (train rows, validation rows), ``n_val`` of them held out, both sorted;
    ``seed`` picks the permutation (a tuning study's own split)."""
    import torch

    if not 0 < n_val < n:
        raise WorkloadError(f"cannot hold out {n_val} validation rows from {n} training rows")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_val:].sort().values, order[:n_val].sort().values


def gather_rows(rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``rows[index]`` for an index of any shape: the same values, by one ``index_select`` of the
    flattened index (advanced indexing costs several times as much per step on the CPU)."""
    return rows.index_select(0, index.reshape(-1)).view(*index.shape, *rows.shape[1:])
