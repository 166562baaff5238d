"""The spec's dataclass tree, its constants and its hash: what a validated spec *is*.

The spec hash (16 hex of the sha256 of the normalised *protocol*: workloads with options and
epochs, expanded strategies, budget, evaluation, overrides) is equal for two specs exactly when
they ask for the same experiment; name, storage, resources, concurrency, checkpoint keeping and
tracking do not enter it.

The protocol hash (``Spec.protocol_hash``) names what makes two *pairs* comparable, whichever
sweep holds them: the budget, the evaluation, the seed rule and the pair's own workload (options,
epochs); not the strategy list, not the other workloads, and not the search-space overrides, which
belong to their strategy the way its own space does (the budget table records each pair's space).
So a sweep extended by strategies or workloads (``sweeps.commands.extend``) keeps one protocol.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sweeps.spec.tracking import tracking_to_dict
from vocab.contracts import EPOCHS, STAGE_METRIC, TUNE

__all__ = [
    "Budget",
    "AUTO_SEEDS",
    "EarlyStopping",
    "Evaluation",
    "Resources",
    "Spec",
    "SpecError",
    "StudySelection",
    "WorkloadSpec",
    "population_size",
]

SAMPLERS = ("tpe", "qmc", "random")
SELECTIONS = ("final", "best")
EARLY_STOPPING_RULES = ("asha", "median")
EARLY_STOPPING_METRICS = (STAGE_METRIC[TUNE],)  # validation only: the test split never chooses anything
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TEXT_TASK = "text"
"""A ``workloads`` entry ``{text: {name: ..., dataset: ..., text_column: ..., label_column: ...}}``
defines a text-classification task by name, with no plugin (``trainables.workloads.builtin.spec_task``)."""
TUNE_SEED_OFFSET = 1_000_000
"""Tune trials train with seed ``TUNE_SEED_OFFSET + budget.sampler_seed``; re-evaluation runs use
``0..evaluation.seeds-1``. The two never meet (``evaluation.seeds`` is at most MAX_EVAL_SEEDS), so
a selected configuration is never re-scored on the seed it was selected with."""
MAX_EVAL_SEEDS = 1000
AUTO_SEEDS = "auto"
"""``evaluation.seeds: auto``: the selection design (``Evaluation``)."""
MAX_POPULATION = 1024
SEED_RULE = f"tune: {TUNE_SEED_OFFSET} + sampler_seed; seed stage: 0..seeds-1"
"""The seed rule in words; part of the spec hash, so results made under another rule never mix."""
MAX_STUDIES = 100
"""The most tuning studies per pair (``budget.studies``): study j's seed runs take seeds
``STUDY_SEED_STRIDE * j + 0..seeds-1``, which stay below every tune seed."""
STUDY_SEED_STRIDE = MAX_EVAL_SEEDS
STUDIES_RULE = (f"study j: sampler_seed + j, tune seed {TUNE_SEED_OFFSET} + sampler_seed + j, validation split "
                f"seed HOLDOUT_SEED + j, seed stage {STUDY_SEED_STRIDE} j + 0..seeds-1")
"""How study j of a multi-study sweep differs from study 0 (in the hash of such a sweep only)."""


class SpecError(ValueError):
    """A spec that cannot run; ``problems`` lists every ``<field path>: <problem>`` found."""

    def __init__(self, problems: list[str], source: str = "spec") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class EarlyStopping:
    """One early-stopping rule applied to every pair alike, each pair's trials compared only with
    each other: ``asha`` (successive halving at epochs grace * rf^k) or ``median`` (stop a trial
    whose metric is below the median of its pair's trials at the same epoch, after ``grace_epochs``)."""

    rule: str = "asha"
    metric: str = STAGE_METRIC[TUNE]
    grace_epochs: int = 1
    reduction_factor: int = 3

    def to_dict(self) -> dict:
        return {"rule": self.rule, "metric": self.metric, "grace_epochs": self.grace_epochs,
                "reduction_factor": self.reduction_factor}


@dataclass(frozen=True)
class StudySelection:
    """``budget.studies: auto``: Kim & Nelson's KN with the whole tuning study as the replicate
    (docs/SELECTION.md, "The selection design over studies"). Every pair gets studies ``0..first_studies-1``;
    after each screening the strategies still in contention get ``batch`` more studies (each tuned with
    ``budget.trials`` trials, its best retrained with ``evaluation.seeds`` seeds), up to ``max_studies``.
    ``indifference`` in percentage points of expected final test accuracy over tuning and seeds."""

    indifference: float = 1.0
    confidence: float = 0.95
    first_studies: int = 5
    max_studies: int = 20
    batch: int = 1

    def settings(self):
        """``lrstats.selection.SelectionSettings`` in studies (``first_seeds`` = n0 studies, and so on)."""
        from lrstats.selection import SelectionSettings

        return SelectionSettings(self.indifference, self.confidence, self.first_studies, self.max_studies, self.batch)

    def describe(self) -> str:
        """The design in a few words (the driver's first lines, ``lrsweep plan``)."""
        return (f"selection of the best per workload over tuning studies (Kim & Nelson, {self.confidence:.0%} if the "
                f"best leads by >= {self.indifference:g} pp over tuning and seeds): studies "
                f"0..{self.first_studies - 1} of every pair, then {self.batch} at a time for those still in "
                f"contention, up to {self.max_studies} studies")

    def to_dict(self) -> dict:
        return {"indifference": self.indifference, "confidence": self.confidence,
                "first_studies": self.first_studies, "max_studies": self.max_studies, "batch": self.batch}


@dataclass(frozen=True)
class Budget:
    """The tuning budget of every pair: trials, epochs per trial (None: each workload's default),
    sampler and its seed, the optional early-stopping rule, and the unit epochs are counted in."""

    trials: int
    epochs: int | None = None
    sampler: str = "tpe"
    sampler_seed: int = 0
    early_stopping: EarlyStopping | None = None
    unit: str = EPOCHS
    """What ``epochs`` measures (``BUDGET_UNITS``): passes over the data, or the gradient evaluations
    of those passes at one per step, so every trial of every pair gets the same passes (SAM half the steps)."""
    studies: int = 1
    """Independent tuning studies per pair, each of ``trials`` trials (docs/PROTOCOL.md): study j has
    the same sampler seed and validation split for every strategy of a workload, and its own. With
    ``study_selection`` (``studies: auto``) the first stage's: every pair gets these, contenders more."""
    study_selection: StudySelection | None = None
    """``studies: auto``: the selection design over studies; None: a fixed number of studies."""

    @property
    def adaptive_studies(self) -> bool:
        """Whether the pairs' studies come from the selection design over studies (``studies: auto``)."""
        return self.study_selection is not None

    @property
    def most_studies(self) -> int:
        """The most studies a pair can get."""
        return self.study_selection.max_studies if self.study_selection else self.studies

    @property
    def tune_seed(self) -> int:
        """The training seed of every tune trial of every pair's study 0 (see ``TUNE_SEED_OFFSET``)."""
        return TUNE_SEED_OFFSET + self.sampler_seed

    def study_sampler_seed(self, study: int) -> int:
        """Study ``study``'s sampler seed, the same for every pair (common random numbers between studies)."""
        return self.sampler_seed + study

    @property
    def total_trials(self) -> int:
        """Tune trials per pair over all its studies: the equal budget."""
        return self.studies * self.trials

    def to_dict(self) -> dict:
        out = {"trials": self.trials, "epochs": self.epochs, "sampler": self.sampler,
               "sampler_seed": self.sampler_seed,
               "early_stopping": self.early_stopping.to_dict() if self.early_stopping else None}
        if self.unit != EPOCHS:  # the default leaves the hash of every spec written before it as it was
            out["unit"] = self.unit
        if self.study_selection is not None:
            out["studies"] = AUTO_SEEDS
            out["study_selection"] = self.study_selection.to_dict()
        elif self.studies != 1:  # likewise: a one-study spec keeps its hashes
            out["studies"] = self.studies
        return out


@dataclass(frozen=True)
class Evaluation:
    """Re-evaluation of each pair's best configuration (chosen by the ``final`` or ``best``
    validation accuracy of its tune trial) on the test split, with seeds that are the same for
    every pair and never a tune trial's seed. Two designs:

    - fixed (``seeds: N``): seeds 0..N-1 for every pair;
    - selection (``seeds: auto``): Kim & Nelson's fully sequential procedure per workload
      (``lrstats.selection``, docs/SELECTION.md): seeds 0..first_seeds-1 for every pair, then
      ``batch`` more at a time only for the pairs still in contention, until one is left, the
      procedure's boundary closes, or a pair reaches ``max_seeds`` (which voids the guarantee).
      ``indifference`` is the zone in percentage points of test accuracy, ``confidence`` 1 - alpha.
    """

    seeds: int | str = 5
    selection: str = "final"
    indifference: float = 0.5
    confidence: float = 0.95
    first_seeds: int = 10
    max_seeds: int | None = 60
    batch: int = 10

    @property
    def adaptive(self) -> bool:
        """Whether the seed stage is the selection design (``seeds: auto``)."""
        return self.seeds == AUTO_SEEDS

    @property
    def first_stage(self) -> int:
        """The seeds every pair gets: all of them (fixed) or the common first stage (selection)."""
        return self.first_seeds if self.adaptive else int(self.seeds)

    @property
    def most_seeds(self) -> int | None:
        """The most seeds a pair can get (None: the selection design without a cap)."""
        return self.max_seeds if self.adaptive else int(self.seeds)

    def settings(self):
        """The selection design's settings for ``lrstats.selection.decide``."""
        from lrstats.selection import SelectionSettings

        return SelectionSettings(self.indifference, self.confidence, self.first_seeds, self.max_seeds, self.batch)

    def describe(self) -> str:
        """The seed stage in a few words (the driver's first lines, ``lrsweep plan``)."""
        if not self.adaptive:
            return f"{self.seeds} seed runs of the best, seeds 0..{int(self.seeds) - 1}"
        return (f"selection of the best per workload (Kim & Nelson, {self.confidence:.0%} if the best leads by >= "
                f"{self.indifference:g} pp): seeds 0..{self.first_seeds - 1} of every pair's best, then "
                f"{self.batch} at a time for those still in contention, up to {self.max_seeds or 'no cap of'} seeds")

    def to_dict(self) -> dict:
        out = {"seeds": self.seeds, "selection": self.selection}
        if self.adaptive:  # a fixed design's dict (and so its spec hash) is what it was before selection existed
            out.update(indifference=self.indifference, confidence=self.confidence, first_seeds=self.first_seeds,
                       max_seeds=self.max_seeds, batch=self.batch)
        return out


@dataclass(frozen=True)
class Resources:
    """What one trial asks Ray for (CPUs and a fractional GPU), and how many runs of a pair it
    trains at once: ``population`` K, or ``"auto"`` (each workload's own choice, 1 for text)."""

    cpu: float = 1.0
    gpu: float = 0.0
    population: int | str = 1

    def to_dict(self) -> dict:
        return {"cpu": self.cpu, "gpu": self.gpu, "population": self.population}


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload of the sweep: its name, validated options (defaults filled) and epochs."""

    name: str
    options: tuple[tuple[str, Any], ...]
    epochs: int
    text: bool = False  # a text task the spec defines by name alone ({text: {name: ..., ...}})

    @property
    def options_dict(self) -> dict:
        return dict(self.options)

    def to_dict(self) -> dict:
        return {"name": self.name, "options": self.options_dict, "epochs": self.epochs,
                **({"text": True} if self.text else {})}

    def to_spec_item(self) -> dict:
        """This workload as a spec's ``workloads`` entry."""
        return {TEXT_TASK: {"name": self.name, **self.options_dict}} if self.text else {self.name: self.options_dict}


@dataclass(frozen=True)
class Spec:
    """A validated sweep spec (see the module docstring)."""

    name: str
    workloads: tuple[WorkloadSpec, ...]
    strategies: tuple[str, ...]
    budget: Budget
    evaluation: Evaluation = field(default_factory=Evaluation)
    resources: Resources = field(default_factory=Resources)
    storage: str = "./results"
    data_dir: str | None = None
    max_concurrent: int | None = None
    keep_checkpoints: bool = False
    search_space: tuple[tuple[str, tuple[tuple[str, tuple[float, float]], ...]], ...] = ()
    plugins: tuple = ()  # sweeps.spec.plugins.Plugin entries, imported before the rest was validated
    tracking: tuple = ()  # sweeps.spec.tracking.TrackerSpec entries: observers, not in the hash
    calibrate: Any = None  # sweeps.spec.calibration.Calibration, or None: in the hash only when set

    def overrides(self, strategy: str) -> dict[str, tuple[float, float]]:
        """The search-space overrides of one strategy, ``{hparam: (low, high)}``."""
        return dict(dict(self.search_space).get(strategy, ()))

    def pairs(self) -> list[tuple[WorkloadSpec, str]]:
        """Every (workload, strategy) pair, workload-major."""
        return [(w, s) for w in self.workloads for s in self.strategies]

    def protocol(self) -> dict:
        """The part of the spec that defines the experiment (what the hash covers)."""
        return {
            "workloads": [w.to_dict() for w in self.workloads],
            "strategies": list(self.strategies),
            "budget": self.budget.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "search_space": {s: {h: list(r) for h, r in o} for s, o in self.search_space},
            "seed_rule": self.seed_rule,
            **self._calibrate(),
        }

    def _calibrate(self) -> dict:
        """``{"calibrate": ...}`` when ranges are calibrated, else nothing: a spec without the
        section keeps the hashes it had before the section existed."""
        return {"calibrate": self.calibrate.to_dict()} if self.calibrate is not None else {}

    @property
    def seed_rule(self) -> str:
        """``SEED_RULE``, and for several tuning studies how each study's seeds differ."""
        return SEED_RULE if self.budget.studies == 1 else f"{SEED_RULE}; {STUDIES_RULE}"

    @property
    def hash(self) -> str:
        return _digest(self.protocol(), 16)

    def common_protocol(self) -> dict:
        """The part of the protocol every pair of the sweep shares: budget, evaluation, seed rule."""
        return {"budget": self.budget.to_dict(), "evaluation": self.evaluation.to_dict(), "seed_rule": self.seed_rule,
                **self._calibrate()}

    def protocol_hash(self, workload: WorkloadSpec) -> str:
        """16 hex: 8 of ``common_protocol`` then 8 of the workload (name, options, epochs). Pairs with
        equal hashes are one comparison; equal first halves, one comparison across workloads."""
        return _digest(self.common_protocol(), 8) + _digest(workload.to_dict(), 8)

    def to_dict(self) -> dict:
        """The normalised spec, parseable again by ``parse_spec`` to an equal ``Spec``."""
        return {
            "name": self.name,
            "workloads": [w.to_spec_item() for w in self.workloads],
            "strategies": list(self.strategies),
            "budget": self.budget.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "resources": self.resources.to_dict(),
            "storage": self.storage,
            "data_dir": self.data_dir,
            "max_concurrent": self.max_concurrent,
            "keep_checkpoints": self.keep_checkpoints,
            "search_space": {s: {h: list(r) for h, r in o} for s, o in self.search_space},
            # Module names: a sweep directory keeps the plugins' code under plugins/ (sweeps.spec.plugins).
            **({"plugins": [p.module for p in self.plugins]} if self.plugins else {}),
            **({"tracking": tracking_to_dict(self.tracking)} if self.tracking else {}),
            **self._calibrate(),
        }

    def to_yaml(self) -> str:
        return f"# normalised spec; spec hash {self.hash}\n" + yaml.safe_dump(self.to_dict(), sort_keys=False)


def _digest(value: Any, digits: int) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:digits]


def population_size(spec: Spec, workload: WorkloadSpec) -> int:
    """How many runs of each of ``workload``'s pairs one trial trains (``resources.population``)."""
    if spec.resources.population != "auto":
        return spec.resources.population
    from trainables import get_workload

    return get_workload(workload.name).population
