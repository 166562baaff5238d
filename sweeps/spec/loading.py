"""``parse_spec`` (a mapping) and ``load_spec`` (a YAML file): every section validated, all problems at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sweeps.spec.calibration import parse_calibration
from sweeps.spec.checks import Problems, is_int, read_fields, read_int
from sweeps.spec.model import Spec, SpecError
from sweeps.spec.plugin_import import import_spec_plugins
from sweeps.spec.sections import (
    check_population,
    parse_budget,
    parse_evaluation,
    parse_location,
    parse_name,
    parse_resources,
    parse_search_space,
    parse_strategies,
    parse_workloads,
)
from sweeps.spec.tracking import parse_tracking

__all__ = ["TOP_FIELDS", "load_spec", "parse_spec"]

TOP_FIELDS = ("name", "workloads", "strategies", "budget", "evaluation", "resources", "storage",
              "data_dir", "max_concurrent", "keep_checkpoints", "search_space", "plugins", "tracking", "calibrate")


def parse_spec(raw: Any, source: str = "spec", *, base: str | Path | None = None,
               plugins: tuple[str, ...] = ()) -> Spec:
    """Validate a spec mapping; raise SpecError listing every problem (field path + allowed values).

    Plugins (the spec's ``plugins`` with paths relative to ``base``, then ``plugins``, the command
    line's) are imported first, so their workloads and strategies validate like built-in ones.
    """
    p = Problems()
    if not isinstance(raw, Mapping):
        raise SpecError([f"(top): must be a mapping with fields {', '.join(TOP_FIELDS)}"], source)
    raw = read_fields(raw, "", TOP_FIELDS, p)
    imported = import_spec_plugins(raw.get("plugins"), base, tuple(plugins), p)
    name = parse_name(raw, p)
    budget = parse_budget(raw.get("budget"), p)
    workloads = parse_workloads(raw.get("workloads"), budget.epochs if budget else None, p)
    if "strategies" in raw:
        strategies = parse_strategies(raw["strategies"], p)
    else:
        strategies = ()
        p.add("strategies", "is required; allowed: 'paper', 'modern', 'all', a glob pattern, "
                            "or a list of these and names")
    evaluation = parse_evaluation(raw.get("evaluation"), p)
    resources = parse_resources(raw.get("resources"), p)
    storage, data_dir = parse_location(raw, p)
    max_concurrent = read_int(raw, "max_concurrent", "", p, default=None, nullable=True)
    keep_checkpoints = raw.get("keep_checkpoints", False)
    if not isinstance(keep_checkpoints, bool):
        p.add("keep_checkpoints", f"got {keep_checkpoints!r}; allowed: true, false")
    if resources and is_int(resources.population) and resources.population > 1:
        check_population(resources.population, workloads, p)
    if resources and resources.population != 1 and budget and budget.early_stopping:
        # Members of a population train in lockstep to the last epoch; stopping some would need masks.
        p.add("budget.early_stopping", "cannot be combined with resources.population "
              f"{resources.population!r}; allowed: remove early_stopping, or set resources.population: 1")
    if budget and budget.studies > 1 and evaluation and evaluation.adaptive:
        # With several studies the replicate is the study: the selection design is budget.studies: auto.
        many = "auto" if budget.adaptive_studies else budget.studies
        p.add("evaluation.seeds", f"got 'auto' with budget.studies {many}; allowed with several tuning "
              "studies: an integer (the seeds of each study's chosen configuration; the verdict then compares "
              "strategies over studies; budget.studies: auto selects over studies), or budget.studies: 1")
    search_space = ()
    if strategies and workloads:
        search_space = parse_search_space(raw.get("search_space"), strategies, workloads, p)
    tracking = parse_tracking(raw.get("tracking"), p)
    calibrate = parse_calibration(raw.get("calibrate"), p)
    if calibrate is not None:  # one procedure for every pair: a hand-set range would be a second one
        for strategy, ranges in search_space:
            if calibrate.hparam in dict(ranges):
                p.add(f"search_space.{strategy}.{calibrate.hparam}", f"cannot be combined with calibrate "
                      f"({calibrate.hparam} is calibrated for every pair); allowed: remove one of the two")
    if p.items:
        raise SpecError(p.items, source)
    return Spec(name, workloads, strategies, budget, evaluation, resources, storage, data_dir,
                max_concurrent, keep_checkpoints, search_space, imported, tracking, calibrate)


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
