"""Sweep specs: a frozen dataclass tree parsed from YAML, validated all at once.

A spec names the workloads, the strategies and ONE budget that every (workload, strategy) pair
gets alike. There is deliberately no per-pair budget field: unequal budgets cannot be written
down. Per-strategy search-space overrides may only narrow or move the range of a hyperparameter
the strategy already searches; they change nothing else.

``load_spec(path)`` / ``parse_spec(mapping)`` return a ``Spec`` or raise ``SpecError`` carrying
every problem found, each as ``<field path>: <what is wrong>; allowed: <values>``. Nothing is
written while parsing: the CLI validates before it creates any directory.

Modules: ``model`` (the dataclasses, constants and the spec hash), ``checks`` (the validation
toolkit: ``Problems`` and the field readers), ``sections`` (one parser per section),
``plugin_import`` (the spec's plugins, imported before the rest validates) and ``loading``
(``parse_spec`` / ``load_spec``). Other spec formats (``sweeps.commands.reproduce``) build on the public
toolkit and section parsers re-exported here.
"""

from sweeps.spec.checks import MISSING, Problems, is_int, is_number, read_choice, read_fields, read_int
from sweeps.spec.loading import TOP_FIELDS, load_spec, parse_spec
from sweeps.spec.model import (
    MAX_EVAL_SEEDS,
    SAMPLERS,
    SEED_RULE,
    SELECTIONS,
    TUNE_SEED_OFFSET,
    Budget,
    EarlyStopping,
    Evaluation,
    Resources,
    Spec,
    SpecError,
    WorkloadSpec,
    population_size,
)
from sweeps.spec.sections import (
    parse_budget,
    parse_evaluation,
    parse_location,
    parse_name,
    parse_resources,
    parse_strategies,
    parse_workloads,
)

__all__ = [
    "MAX_EVAL_SEEDS",
    "MISSING",
    "SAMPLERS",
    "SEED_RULE",
    "SELECTIONS",
    "TOP_FIELDS",
    "TUNE_SEED_OFFSET",
    "Budget",
    "EarlyStopping",
    "Evaluation",
    "Problems",
    "Resources",
    "Spec",
    "SpecError",
    "WorkloadSpec",
    "is_int",
    "is_number",
    "load_spec",
    "parse_budget",
    "parse_evaluation",
    "parse_location",
    "parse_name",
    "parse_resources",
    "parse_spec",
    "parse_strategies",
    "parse_workloads",
    "population_size",
    "read_choice",
    "read_fields",
    "read_int",
]
