"""One parser per section of a sweep spec, each reporting its problems into a shared ``Problems``.

Parsers that need a registry (workloads, strategies, search spaces) import it inside the function:
validation must not import torch or Ray (``tests/test_spec_without_torch.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweeps.spec.checks import Problems, is_int, is_number, read_choice, read_fields, read_int
from sweeps.spec.model import (
    AUTO_SEEDS,
    EARLY_STOPPING_METRICS,
    EARLY_STOPPING_RULES,
    MAX_EVAL_SEEDS,
    MAX_POPULATION,
    MAX_STUDIES,
    NAME_PATTERN,
    SAMPLERS,
    SELECTIONS,
    TEXT_TASK,
    TUNE_SEED_OFFSET,
    Budget,
    EarlyStopping,
    Evaluation,
    Resources,
    StudySelection,
    WorkloadSpec,
)
from vocab.contracts import BUDGET_UNITS, EPOCHS, STAGE_METRIC, TUNE

__all__ = ["check_population", "parse_budget", "parse_early_stopping", "parse_evaluation", "parse_location",
           "parse_name", "parse_resources", "parse_search_space", "parse_strategies", "parse_text_task",
           "parse_workloads"]


def parse_workloads(raw: Any, epochs: int | None, p: Problems) -> tuple[WorkloadSpec, ...]:
    """The ``workloads`` list: registered names or ``{name: options}``, options validated by the
    workload, each run for ``epochs`` (None: the workload's default)."""
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
            name, options = parse_text_task(item[TEXT_TASK], f"{path}.{TEXT_TASK}", p)
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


def parse_text_task(raw: Any, path: str, p: Problems) -> tuple[str | None, dict]:
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


def parse_strategies(raw: Any, p: Problems) -> tuple[str, ...]:
    """The ``strategies`` field: a selection word ('paper', 'modern', 'all'), a glob or a list of either,
    expanded in registry order."""
    from strategies import list_strategies
    from strategies.registry import SELECTIONS

    known = [s.name for s in list_strategies()]
    words = ", ".join(f"'{word}' ({what})" for word, what in SELECTIONS.items())
    patterns = [raw] if isinstance(raw, str) else raw
    if not isinstance(patterns, list) or not patterns or not all(isinstance(x, str) for x in patterns):
        p.add("strategies", f"must be {words}, a glob pattern or a non-empty list of these and names; "
                            f"allowed names: {', '.join(known)}")
        return ()
    chosen: set[str] = set()
    for i, pattern in enumerate(patterns):
        if pattern in SELECTIONS:
            chosen.update(s.name for s in list_strategies(selection=pattern))
            continue
        matched = [s.name for s in list_strategies(pattern)]
        variants = [m for m in matched if m not in known]
        if variants:  # <name>@paper_code: opt-in for `lrsweep reproduce`, never tuned by a sweep
            p.add(f"strategies[{i}]", f"{pattern!r} selects paper-code variants ({', '.join(variants)}), which "
                                      f"only `lrsweep reproduce` runs; allowed: {', '.join(known)}")
        elif not matched:
            p.add(f"strategies[{i}]", f"{pattern!r} matches no strategy; allowed: {words}, or names and globs "
                                      f"of {', '.join(known)}")
        chosen.update(matched)
    return tuple(s for s in known if s in chosen)  # registry order, each once


def parse_early_stopping(raw: Any, epochs: int | None, p: Problems) -> EarlyStopping | None:
    """``budget.early_stopping``; None when absent."""
    path = "budget.early_stopping"
    if raw is None:
        return None
    raw = read_fields(raw, path, ("rule", "metric", "grace_epochs", "reduction_factor"), p)
    rule = read_choice(raw, "rule", path, p, EARLY_STOPPING_RULES, "asha")
    metric = read_choice(raw, "metric", path, p, EARLY_STOPPING_METRICS, STAGE_METRIC[TUNE])
    grace = read_int(raw, "grace_epochs", path, p, default=1)
    rf = read_int(raw, "reduction_factor", path, p, default=3, minimum=2)
    if grace is not None and epochs is not None and grace >= epochs:
        p.add(f"{path}.grace_epochs", f"got {grace}; allowed: an integer from 1 to budget.epochs - 1 ({epochs - 1})")
    if "reduction_factor" in raw and rule == "median":
        p.add(f"{path}.reduction_factor", "applies to rule asha only; remove it for rule median")
    if None in (rule, metric, grace, rf):
        return None
    return EarlyStopping(rule, metric, grace, rf)


def parse_budget(raw: Any, p: Problems) -> Budget | None:
    """The ``budget`` section (required)."""
    if raw is None:
        p.add("budget", "is required; fields: trials (required), epochs, sampler, sampler_seed, early_stopping, unit, "
              "studies, study_selection")
        return None
    raw = read_fields(raw, "budget", ("trials", "epochs", "sampler", "sampler_seed", "early_stopping", "unit",
                                      "studies", "study_selection"), p)
    trials = read_int(raw, "trials", "budget", p)
    epochs = read_int(raw, "epochs", "budget", p, default=None, nullable=True)
    sampler = read_choice(raw, "sampler", "budget", p, SAMPLERS, "tpe")
    seed = read_int(raw, "sampler_seed", "budget", p, default=0, minimum=0)
    if seed is not None and seed >= TUNE_SEED_OFFSET:
        p.add("budget.sampler_seed", f"got {seed}; allowed: an integer from 0 to {TUNE_SEED_OFFSET - 1}")
        seed = None
    early = parse_early_stopping(raw.get("early_stopping"), epochs, p)
    unit = read_choice(raw, "unit", "budget", p, BUDGET_UNITS, EPOCHS)
    chosen = None
    if raw.get("studies") == AUTO_SEEDS:
        chosen = parse_study_selection(raw.get("study_selection"), p)
        studies = chosen.first_studies if chosen else None
    else:
        studies = raw.get("studies", 1)
        if not is_int(studies) or not 1 <= studies <= MAX_STUDIES:
            allowed = f"from 1 to {MAX_STUDIES}" if is_int(studies) and studies > MAX_STUDIES else \
                f">= 1 (at most {MAX_STUDIES})"
            p.add("budget.studies", f"got {studies!r}; allowed: an integer {allowed}, or '{AUTO_SEEDS}' (the "
                  "selection design over studies)")
            studies = None
        if "study_selection" in raw:
            p.add("budget.study_selection", f"belongs to budget.studies: {AUTO_SEEDS} only; set it or remove this")
    most = chosen.max_studies if chosen else studies
    if seed is not None and most is not None and seed + most > TUNE_SEED_OFFSET:
        p.add("budget.sampler_seed", f"got {seed} with {most} studies (study j takes sampler_seed + j); allowed: "
              f"sampler_seed + studies - 1 at most {TUNE_SEED_OFFSET - 1}")
        seed = None
    if None in (trials, sampler, seed, unit, studies):
        return None
    return Budget(trials, epochs, sampler, seed, early, unit, studies, chosen)


STUDY_SELECTION_FIELDS = ("indifference", "confidence", "first_studies", "max_studies", "batch")


def parse_study_selection(raw: Any, p: Problems) -> StudySelection | None:
    """``budget.study_selection`` (with ``studies: auto``): KN's settings, in studies, checked by the rule's
    own validator (as the seed design's are) with the spec's policy: n0 >= 3 studies, a cap of MAX_STUDIES."""
    from lrstats.selection import settings_problems

    path, default = "budget.study_selection", StudySelection()
    raw = read_fields(raw, path, STUDY_SELECTION_FIELDS, p)
    values = {key: raw.get(key, getattr(default, key)) for key in STUDY_SELECTION_FIELDS}
    problems = settings_problems(values["indifference"], values["confidence"], values["first_studies"],
                                 values["max_studies"], values["batch"], least_first=3, most_seeds=MAX_STUDIES,
                                 unit="studies", capped=True)
    for field, message in problems:
        p.add(f"{path}.{field}", message)
    if problems:
        return None
    return StudySelection(float(values["indifference"]), float(values["confidence"]), values["first_studies"],
                          values["max_studies"], values["batch"])


SELECTION_FIELDS = ("indifference", "confidence", "first_seeds", "max_seeds", "batch")
MIN_FIRST_SEEDS = 3
"""A spec's least n0: KN runs from 2, but with one degree of freedom its boundary is far too wide
(docs/SELECTION.md)."""


def parse_evaluation(raw: Any, p: Problems) -> Evaluation | None:
    """The ``evaluation`` section: a fixed design (``seeds: N``) or the selection design
    (``seeds: auto`` with ``indifference``, ``confidence``, ``first_seeds``, ``max_seeds``, ``batch``)."""
    raw = read_fields(raw, "evaluation", ("seeds", "selection", *SELECTION_FIELDS), p)
    selection = read_choice(raw, "selection", "evaluation", p, SELECTIONS, "final")
    if raw.get("seeds") == AUTO_SEEDS:
        return _parse_selection_design(raw, selection, p)
    if not isinstance(raw.get("seeds", 5), int):
        p.add("evaluation.seeds", f"got {raw['seeds']!r}; allowed: an integer from 1 to {MAX_EVAL_SEEDS}, or "
              f"'{AUTO_SEEDS}' (the selection design)")
        return None
    seeds = read_int(raw, "seeds", "evaluation", p, default=5)
    if seeds is not None and seeds > MAX_EVAL_SEEDS:
        p.add("evaluation.seeds", f"got {seeds}; allowed: an integer from 1 to {MAX_EVAL_SEEDS}")
        seeds = None
    for key in SELECTION_FIELDS:
        if key in raw:
            p.add(f"evaluation.{key}", f"belongs to the selection design only; set seeds: {AUTO_SEEDS} or remove it")
    return None if None in (seeds, selection) else Evaluation(seeds, selection)


def _parse_selection_design(raw: dict, selection: str | None, p: Problems) -> Evaluation | None:
    # The selection rule's own validator checks every setting (one message per setting, wherever it is
    # asked); the spec adds its policy: n0 >= 3 seeds (docs/SELECTION.md) and MAX_EVAL_SEEDS.
    from lrstats.selection import settings_problems

    default = Evaluation(seeds=AUTO_SEEDS)
    values = {key: raw.get(key, getattr(default, key)) for key in SELECTION_FIELDS}
    problems = settings_problems(**values, least_first=MIN_FIRST_SEEDS, most_seeds=MAX_EVAL_SEEDS)
    for field, message in problems:
        p.add(f"evaluation.{field}", message)
    if problems or selection is None:
        return None
    return Evaluation(AUTO_SEEDS, selection, float(values["indifference"]), float(values["confidence"]),
                      values["first_seeds"], values["max_seeds"], values["batch"])


def parse_resources(raw: Any, p: Problems) -> Resources | None:
    """The ``resources`` section (cpu, gpu, population)."""
    raw = read_fields(raw, "resources", ("cpu", "gpu", "population"), p)
    cpu, gpu, population = raw.get("cpu", 1), raw.get("gpu", 0), raw.get("population", 1)
    ok = True
    if population != "auto" and not (is_int(population) and 1 <= population <= MAX_POPULATION):
        p.add("resources.population", f"got {population!r}; allowed: an integer from 1 to {MAX_POPULATION}, or 'auto'")
        ok = False
    if not is_number(cpu) or cpu <= 0:
        p.add("resources.cpu", f"got {cpu!r}; allowed: a number > 0")
        ok = False
    if not is_number(gpu) or gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        p.add("resources.gpu", f"got {gpu!r}; allowed: 0, a fraction in (0, 1], or a whole number of GPUs")
        ok = False
    return Resources(float(cpu), float(gpu), population) if ok else None


def check_population(population: int, workloads: tuple[WorkloadSpec, ...], p: Problems) -> None:
    """Refuse a population for a workload whose members would run one after another: it shares no
    pass, only holds K models at once. The reason is the one the trial's forward path is chosen by
    (``Workload.alone_because``; bf16 applies on CUDA only, so it is not asked here)."""
    from trainables import get_workload

    alone = {w.name: why for w in workloads if (why := get_workload(w.name).alone_because(population))}
    if alone:
        reasons = "; ".join(f"{name}: {why}" for name, why in alone.items())
        p.add("resources.population", f"got {population}, but the members of {', '.join(alone)} would run one "
              f"after another, sharing no pass ({reasons}); allowed: 1, or 'auto' (each workload its own "
              "size, 1 where members run alone)")


def parse_search_space(raw: Any, spec_strategies: tuple[str, ...], workloads: tuple[WorkloadSpec, ...],
                        p: Problems) -> tuple:
    """Overrides ``{strategy: {hparam: [low, high]}}``: only searched hparams, containing the canonical
    value, both bounds accepted by the strategy's own ``HParam`` (the one check ``Strategy.config`` makes)."""
    from strategies import get_strategy
    from sweeps.spec.catalog import default_space, resolved_canonical

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
                    or not all(is_number(b) for b in bounds) or not bounds[0] < bounds[1]):
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


def parse_name(raw: dict, p: Problems) -> Any:
    """The ``name`` field: it names the results directory."""
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        p.add("name", f"got {name!r}; allowed: a non-empty name of letters, digits, '_', '.', '-' "
                      "(it names the results directory)")
    return name


def parse_location(raw: dict, p: Problems) -> tuple[Any, Any]:
    """The ``storage`` and ``data_dir`` fields."""
    storage = raw.get("storage", "./results")
    if not isinstance(storage, str) or not storage:
        p.add("storage", f"got {storage!r}; allowed: a local path or a URI (s3://, gs://, file://)")
    data_dir = raw.get("data_dir")
    if data_dir is not None and (not isinstance(data_dir, str) or not data_dir):
        p.add("data_dir", f"got {data_dir!r}; allowed: a directory path or null")
    return storage, data_dir
