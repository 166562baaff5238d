"""Sweep specs: a frozen dataclass tree parsed from YAML, validated all at once.

A spec names the workloads, the strategies and ONE budget that every (workload, strategy) pair
gets alike. There is deliberately no per-pair budget field: unequal budgets cannot be written
down. Per-strategy search-space overrides may only narrow or move the range of a hyperparameter
the strategy already searches; they change nothing else.

``load_spec(path)`` / ``parse_spec(mapping)`` return a ``Spec`` or raise ``SpecError`` carrying
every problem found, each as ``<field path>: <what is wrong>; allowed: <values>``. Nothing is
written while parsing: the CLI validates before it creates any directory.

The spec hash (16 hex of the sha256 of the normalised *protocol*: workloads with options and
epochs, expanded strategies, budget, evaluation, overrides) is equal for two specs exactly when
they ask for the same experiment; name, storage, resources, concurrency and checkpoint keeping do
not enter it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vocab.contracts import FINETUNE, STAGE_METRIC, TUNE

__all__ = [
    "Budget",
    "EarlyStopping",
    "Evaluation",
    "Resources",
    "Spec",
    "SpecError",
    "WorkloadSpec",
    "load_spec",
    "population_size",
    "parse_spec",
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
SEED_RULE = f"tune: {TUNE_SEED_OFFSET} + sampler_seed; seed stage: 0..seeds-1"
"""The seed rule in words; part of the spec hash, so results made under another rule never mix."""


class SpecError(ValueError):
    """A spec that cannot run; ``problems`` lists every ``<field path>: <problem>`` found."""

    def __init__(self, problems: list[str], source: str = "spec") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


# --- the dataclass tree ------------------------------------------------------------------------


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
class Budget:
    """The tuning budget of every pair: trials, epochs per trial (None: each workload's default),
    sampler and its seed, and the optional early-stopping rule."""

    trials: int
    epochs: int | None = None
    sampler: str = "tpe"
    sampler_seed: int = 0
    early_stopping: EarlyStopping | None = None

    @property
    def tune_seed(self) -> int:
        """The training seed of every tune trial of every pair (see ``TUNE_SEED_OFFSET``)."""
        return TUNE_SEED_OFFSET + self.sampler_seed

    def to_dict(self) -> dict:
        return {"trials": self.trials, "epochs": self.epochs, "sampler": self.sampler,
                "sampler_seed": self.sampler_seed,
                "early_stopping": self.early_stopping.to_dict() if self.early_stopping else None}


@dataclass(frozen=True)
class Evaluation:
    """Re-evaluation: ``seeds`` runs (seeds 0..seeds-1, the same for every pair and never a tune
    trial's seed) of each pair's best configuration, chosen by the ``final`` or ``best`` validation
    accuracy of its tune trial."""

    seeds: int = 5
    selection: str = "final"

    def to_dict(self) -> dict:
        return {"seeds": self.seeds, "selection": self.selection}


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
    plugins: tuple = ()  # sweeps.plugins.Plugin entries, imported before the rest was validated

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
            "seed_rule": SEED_RULE,
        }

    @property
    def hash(self) -> str:
        blob = json.dumps(self.protocol(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

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
            # Module names: a sweep directory keeps the plugins' code under plugins/ (sweeps.plugins).
            **({"plugins": [p.module for p in self.plugins]} if self.plugins else {}),
        }

    def to_yaml(self) -> str:
        return f"# normalised spec; spec hash {self.hash}\n" + yaml.safe_dump(self.to_dict(), sort_keys=False)


# --- validation --------------------------------------------------------------------------------


class _Problems:
    """Collects ``path: message`` problems so that all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


_MISSING = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fields(raw: Any, path: str, allowed: tuple[str, ...], p: _Problems) -> dict:
    """``raw`` as a dict, reporting a non-mapping and every unknown key."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        p.add(path, f"must be a mapping with fields {', '.join(allowed)}; got {type(raw).__name__}")
        return {}
    for key in raw:
        if key not in allowed:
            p.add(f"{path}.{key}" if path else str(key), f"unknown field; allowed fields: {', '.join(allowed)}")
    return dict(raw)


def _int(raw: dict, key: str, path: str, p: _Problems, *, default: Any = _MISSING, minimum: int = 1,
         nullable: bool = False) -> Any:
    value = raw.get(key, default)
    where = f"{path}.{key}" if path else key
    if value is _MISSING:
        p.add(where, f"is required; allowed: an integer >= {minimum}")
        return None
    if value is None and nullable:
        return None
    if not _is_int(value) or value < minimum:
        p.add(where, f"got {value!r}; allowed: an integer >= {minimum}" + (" or null" if nullable else ""))
        return None
    return value


def _choice(raw: dict, key: str, path: str, p: _Problems, choices: tuple[str, ...], default: str) -> Any:
    value = raw.get(key, default)
    if value not in choices:
        p.add(f"{path}.{key}", f"got {value!r}; allowed: {', '.join(choices)}")
        return None
    return value


def _parse_workloads(raw: Any, epochs: int | None, p: _Problems) -> tuple[WorkloadSpec, ...]:
    from trainables import get_workload, list_workloads

    known = [w.name for w in list_workloads()]
    if not isinstance(raw, list) or not raw:
        p.add("workloads", f"must be a non-empty list of names or {{name: options}}; allowed names: {', '.join(known)}")
        return ()
    out, seen = [], set()
    for i, item in enumerate(raw):
        path = f"workloads[{i}]"
        text = False
        if isinstance(item, str):
            name, options = item, {}
        elif isinstance(item, Mapping) and len(item) == 1 and TEXT_TASK in item:
            name, options = _text_task(item[TEXT_TASK], f"{path}.{TEXT_TASK}", p)
            if name is None:
                continue
            text, known = True, [*known, name]
        elif isinstance(item, Mapping) and len(item) == 1:
            name, options = next(iter(item.items()))
            options = {} if options is None else options
        else:
            p.add(path, f"must be a workload name or a one-key mapping {{name: options}}; allowed names: "
                        f"{', '.join(known)}")
            continue
        if name not in known:
            p.add(path, f"unknown workload {name!r}; allowed: {', '.join(known)}")
            continue
        if name in seen:
            p.add(path, f"workload {name!r} is listed twice; list each workload once")
            continue
        seen.add(name)
        if not isinstance(options, Mapping):
            p.add(f"{path}.{name}", f"options must be a mapping; got {type(options).__name__}")
            continue
        workload = get_workload(name)
        where = f"{path}.{TEXT_TASK}" if text else f"{path}.{name}"
        try:
            resolved = workload.validate_options(options)
        except ValueError as err:
            p.add(where, str(err))
            continue
        if text and not resolved["dataset"] and resolved["data_files"] is None:
            p.add(where, "needs its data; allowed: dataset (a hub name or local folder) or data_files "
                         "({split: path})")
            continue
        out.append(WorkloadSpec(name, tuple(sorted(resolved.items())), epochs or workload.default_epochs, text))
    return tuple(out)


def _text_task(raw: Any, path: str, p: _Problems) -> tuple[str | None, dict]:
    """``(name, options)`` of a text task a spec defines by name, its workload registered; (None, {})
    after reporting a problem."""
    from trainables import WorkloadError
    from trainables.workloads.builtin import spec_task

    if not isinstance(raw, Mapping):
        p.add(path, f"must be a mapping with name, dataset or data_files, text_column, label_column and other text "
                    f"options; got {type(raw).__name__}")
        return None, {}
    options = dict(raw)
    name = options.pop("name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        p.add(f"{path}.name", f"got {name!r}; allowed: a name of letters, digits, '_', '.', '-' (results carry it)")
        return None, {}
    try:
        spec_task(name)
    except WorkloadError as err:
        p.add(f"{path}.name", str(err))
        return None, {}
    return name, options


def _parse_strategies(raw: Any, p: _Problems) -> tuple[str, ...]:
    from strategies import list_strategies

    known = [s.name for s in list_strategies()]
    if raw == "all":
        return tuple(known)
    patterns = [raw] if isinstance(raw, str) else raw
    if not isinstance(patterns, list) or not patterns or not all(isinstance(x, str) for x in patterns):
        p.add("strategies", f"must be 'all', a glob pattern or a non-empty list of names/patterns; "
                            f"allowed names: {', '.join(known)}")
        return ()
    chosen: set[str] = set()
    for i, pattern in enumerate(patterns):
        matched = [s.name for s in list_strategies(pattern)]
        variants = [m for m in matched if m not in known]
        if variants:  # <name>@paper_code: opt-in for `lrsweep reproduce`, never tuned by a sweep
            p.add(f"strategies[{i}]", f"{pattern!r} selects paper-code variants ({', '.join(variants)}), which "
                                      f"only `lrsweep reproduce` runs; allowed: {', '.join(known)}")
        elif not matched:
            p.add(f"strategies[{i}]", f"{pattern!r} matches no strategy; allowed: {', '.join(known)}")
        chosen.update(matched)
    return tuple(s for s in known if s in chosen)  # registry order, each once


def _parse_early_stopping(raw: Any, epochs: int | None, p: _Problems) -> EarlyStopping | None:
    path = "budget.early_stopping"
    if raw is None:
        return None
    raw = _fields(raw, path, ("rule", "metric", "grace_epochs", "reduction_factor"), p)
    rule = _choice(raw, "rule", path, p, EARLY_STOPPING_RULES, "asha")
    metric = _choice(raw, "metric", path, p, EARLY_STOPPING_METRICS, STAGE_METRIC[TUNE])
    grace = _int(raw, "grace_epochs", path, p, default=1)
    rf = _int(raw, "reduction_factor", path, p, default=3, minimum=2)
    if grace is not None and epochs is not None and grace >= epochs:
        p.add(f"{path}.grace_epochs", f"got {grace}; allowed: an integer from 1 to budget.epochs - 1 ({epochs - 1})")
    if "reduction_factor" in raw and rule == "median":
        p.add(f"{path}.reduction_factor", "applies to rule asha only; remove it for rule median")
    if None in (rule, metric, grace, rf):
        return None
    return EarlyStopping(rule, metric, grace, rf)


def _parse_budget(raw: Any, p: _Problems) -> Budget | None:
    if raw is None:
        p.add("budget", "is required; fields: trials (required), epochs, sampler, sampler_seed, early_stopping")
        return None
    raw = _fields(raw, "budget", ("trials", "epochs", "sampler", "sampler_seed", "early_stopping"), p)
    trials = _int(raw, "trials", "budget", p)
    epochs = _int(raw, "epochs", "budget", p, default=None, nullable=True)
    sampler = _choice(raw, "sampler", "budget", p, SAMPLERS, "tpe")
    seed = _int(raw, "sampler_seed", "budget", p, default=0, minimum=0)
    if seed is not None and seed >= TUNE_SEED_OFFSET:
        p.add("budget.sampler_seed", f"got {seed}; allowed: an integer from 0 to {TUNE_SEED_OFFSET - 1}")
        seed = None
    early = _parse_early_stopping(raw.get("early_stopping"), epochs, p)
    if None in (trials, sampler, seed):
        return None
    return Budget(trials, epochs, sampler, seed, early)


def _parse_evaluation(raw: Any, p: _Problems) -> Evaluation | None:
    raw = _fields(raw, "evaluation", ("seeds", "selection"), p)
    seeds = _int(raw, "seeds", "evaluation", p, default=5)
    if seeds is not None and seeds > MAX_EVAL_SEEDS:
        p.add("evaluation.seeds", f"got {seeds}; allowed: an integer from 1 to {MAX_EVAL_SEEDS}")
        seeds = None
    selection = _choice(raw, "selection", "evaluation", p, SELECTIONS, "final")
    return None if None in (seeds, selection) else Evaluation(seeds, selection)


MAX_POPULATION = 1024


def _parse_resources(raw: Any, p: _Problems) -> Resources | None:
    raw = _fields(raw, "resources", ("cpu", "gpu", "population"), p)
    cpu, gpu, population = raw.get("cpu", 1), raw.get("gpu", 0), raw.get("population", 1)
    ok = True
    if population != "auto" and not (_is_int(population) and 1 <= population <= MAX_POPULATION):
        p.add("resources.population", f"got {population!r}; allowed: an integer from 1 to {MAX_POPULATION}, or 'auto'")
        ok = False
    if not _is_number(cpu) or cpu <= 0:
        p.add("resources.cpu", f"got {cpu!r}; allowed: a number > 0")
        ok = False
    if not _is_number(gpu) or gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        p.add("resources.gpu", f"got {gpu!r}; allowed: 0, a fraction in (0, 1], or a whole number of GPUs")
        ok = False
    return Resources(float(cpu), float(gpu), population) if ok else None


def _check_population(population: int, workloads: tuple[WorkloadSpec, ...], p: _Problems) -> None:
    """A fine-tuned pretrained model (text) trains one run per trial: refuse a population for it."""
    from trainables import get_workload

    tuned = [w.name for w in workloads if get_workload(w.name).regime == FINETUNE]
    if tuned:
        p.add("resources.population", f"got {population}, but fine-tune workloads ({', '.join(tuned)}) train one "
              "run per trial; allowed: 1, or 'auto' (each workload its own size, 1 for fine-tunes)")


def population_size(spec: Spec, workload: WorkloadSpec) -> int:
    """How many runs of each of ``workload``'s pairs one trial trains (``resources.population``)."""
    if spec.resources.population != "auto":
        return spec.resources.population
    from trainables import get_workload

    return get_workload(workload.name).population


def _parse_search_space(raw: Any, spec_strategies: tuple[str, ...], workloads: tuple[WorkloadSpec, ...],
                        p: _Problems) -> tuple:
    """Overrides ``{strategy: {hparam: [low, high]}}``: only searched hparams, containing the canonical
    value, both bounds accepted by the strategy's own ``HParam`` (the one check ``Strategy.config`` makes)."""
    from strategies import get_strategy
    from sweeps.catalog import default_space, resolved_canonical

    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        p.add("search_space", "must be a mapping {strategy: {hparam: [low, high]}}")
        return ()
    out = []
    for strategy, ranges in raw.items():
        path = f"search_space.{strategy}"
        if strategy not in spec_strategies:
            p.add(path, f"strategy is not in this sweep; allowed: {', '.join(spec_strategies)}")
            continue
        if not isinstance(ranges, Mapping) or not ranges:
            p.add(path, "must be a non-empty mapping {hparam: [low, high]}")
            continue
        spaces = [(w, default_space(w.name, w.options_dict, strategy)) for w in workloads]
        hparams = {h.name: h for h in get_strategy(strategy).hparams}
        searched = list(spaces[0][1]) if spaces else []
        parsed = []
        for hparam, bounds in ranges.items():
            where = f"{path}.{hparam}"
            if hparam not in searched:
                p.add(where, f"not a searched hyperparameter of {strategy}; allowed: {', '.join(searched)}")
                continue
            if (not isinstance(bounds, list | tuple) or len(bounds) != 2
                    or not all(_is_number(b) for b in bounds) or not bounds[0] < bounds[1]):
                p.add(where, f"got {bounds!r}; allowed: [low, high] with low < high")
                continue
            low, high = float(bounds[0]), float(bounds[1])
            bad = False
            for w, space in spaces:
                r = space[hparam]
                canonical = resolved_canonical(w.name, w.options_dict, strategy)[hparam]
                if r.scale == "log" and low <= 0:
                    p.add(where, f"got {bounds!r}; allowed: a log-scale range with low > 0")
                    bad = True
                    break
                if not low <= canonical <= high:
                    p.add(where, f"got {bounds!r}; the range must contain the canonical value {canonical:g} "
                                 f"(workload {w.name}), which is trial 0 of every study")
                    bad = True
                    break
                allowed = hparams[hparam]
                if not (allowed.contains(bounds[0]) and allowed.contains(bounds[1])):
                    p.add(where, f"got {bounds!r}; allowed values of {hparam}: {allowed.describe()} "
                                 f"(both bounds are values a trial may train with)")
                    bad = True
                    break
            if not bad:
                parsed.append((hparam, (low, high)))
        if parsed:
            out.append((strategy, tuple(parsed)))
    return tuple(out)


TOP_FIELDS = ("name", "workloads", "strategies", "budget", "evaluation", "resources", "storage",
              "data_dir", "max_concurrent", "keep_checkpoints", "search_space", "plugins")


def parse_name(raw: dict, p: _Problems) -> Any:
    """The ``name`` field: it names the results directory."""
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        p.add("name", f"got {name!r}; allowed: a non-empty name of letters, digits, '_', '.', '-' "
                      "(it names the results directory)")
    return name


def parse_location(raw: dict, p: _Problems) -> tuple[Any, Any]:
    """The ``storage`` and ``data_dir`` fields."""
    storage = raw.get("storage", "./results")
    if not isinstance(storage, str) or not storage:
        p.add("storage", f"got {storage!r}; allowed: a local path or a URI (s3://, gs://, file://)")
    data_dir = raw.get("data_dir")
    if data_dir is not None and (not isinstance(data_dir, str) or not data_dir):
        p.add("data_dir", f"got {data_dir!r}; allowed: a directory path or null")
    return storage, data_dir


def _import_plugins(raw: Any, base: str | Path | None, extra: tuple[str, ...], p: _Problems) -> tuple:
    """Resolve and import the spec's ``plugins`` (relative to ``base``) and the ``--plugin`` ones,
    before anything that may name what they register is validated."""
    from sweeps.plugins import PluginError, import_plugins, load_entry_points, resolve

    allowed = "a list of module names, .py files or package directories (relative to the spec file)"
    entries = [] if raw is None else raw
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        p.add("plugins", f"got {raw!r}; allowed: {allowed}")
        entries = []
    found = []
    named = [(f"plugins[{i}]", e, base) for i, e in enumerate(entries)] + [("--plugin", e, None) for e in extra]
    for where, entry, entry_base in named:
        try:
            plugin = resolve(entry, entry_base)
            import_plugins([plugin])
        except PluginError as err:
            p.add(where, str(err))
            continue
        if plugin not in found:
            found.append(plugin)
    try:
        load_entry_points()
    except PluginError as err:
        p.add("(entry points)", str(err))
    return tuple(found)


def parse_spec(raw: Any, source: str = "spec", *, base: str | Path | None = None,
               plugins: tuple[str, ...] = ()) -> Spec:
    """Validate a spec mapping; raise SpecError listing every problem (field path + allowed values).

    Plugins (the spec's ``plugins`` with paths relative to ``base``, then ``plugins``, the command
    line's) are imported first, so their workloads and strategies validate like built-in ones.
    """
    p = _Problems()
    if not isinstance(raw, Mapping):
        raise SpecError([f"(top): must be a mapping with fields {', '.join(TOP_FIELDS)}"], source)
    raw = _fields(raw, "", TOP_FIELDS, p)
    imported = _import_plugins(raw.get("plugins"), base, tuple(plugins), p)
    name = parse_name(raw, p)
    budget = _parse_budget(raw.get("budget"), p)
    workloads = _parse_workloads(raw.get("workloads"), budget.epochs if budget else None, p)
    if "strategies" in raw:
        strategies = _parse_strategies(raw["strategies"], p)
    else:
        strategies = ()
        p.add("strategies", "is required; allowed: 'all', a glob pattern, or a list of names/patterns")
    evaluation = _parse_evaluation(raw.get("evaluation"), p)
    resources = _parse_resources(raw.get("resources"), p)
    storage, data_dir = parse_location(raw, p)
    max_concurrent = _int(raw, "max_concurrent", "", p, default=None, nullable=True)
    keep_checkpoints = raw.get("keep_checkpoints", False)
    if not isinstance(keep_checkpoints, bool):
        p.add("keep_checkpoints", f"got {keep_checkpoints!r}; allowed: true, false")
    if resources and _is_int(resources.population) and resources.population > 1:
        _check_population(resources.population, workloads, p)
    if resources and resources.population != 1 and budget and budget.early_stopping:
        # Members of a population train in lockstep to the last epoch; stopping some would need masks.
        p.add("budget.early_stopping", "cannot be combined with resources.population "
              f"{resources.population!r}; allowed: remove early_stopping, or set resources.population: 1")
    search_space = ()
    if strategies and workloads:
        search_space = _parse_search_space(raw.get("search_space"), strategies, workloads, p)
    if p.items:
        raise SpecError(p.items, source)
    return Spec(name, workloads, strategies, budget, evaluation, resources, storage, data_dir,
                max_concurrent, keep_checkpoints, search_space, imported)


def load_spec(path: str | Path, plugins: tuple[str, ...] = ()) -> Spec:
    """Read and validate a YAML spec file; unreadable or malformed YAML is a SpecError too."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError([f"(file): cannot read {path}: {err.strerror}"], str(path)) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError([f"(yaml): not valid YAML: {err}"], str(path)) from None
    return parse_spec(raw, str(path), base=path.parent, plugins=tuple(plugins))
