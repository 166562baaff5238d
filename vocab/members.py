"""The population protocol: how a Tune trial's config holds its runs, and its reports their metrics.

A trial of one run is the run itself; a trial of K runs (a population, ``trainables.population``)
holds them as ``members``: its config ``{"run": {"members": [...]}, "sweep": {"pair", "members":
[...]}}``, each epoch's report ``{"epoch", "population": K, "members": {"0": metrics | None, ...}}``
(None: member 0 froze earlier, diverged), which Tune's loggers flatten to ``members/<i>/<metric>``.
Only this module writes or parses these keys; the trainable, searcher, engine, record and progress
call it. Like ``vocab.contracts`` it imports nothing of lrsweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MEMBERS = "members"
POPULATION = "population"


def trial_config(runs: Sequence[Mapping[str, Any]], metas: Sequence[Mapping[str, Any]]) -> dict:
    """A Tune trial's config from its runs' trial configs and sweep bookkeeping: one run as it is,
    several as a population."""
    if len(runs) == 1:
        return {"run": dict(runs[0]), "sweep": dict(metas[0])}
    return {"run": {MEMBERS: list(runs)}, "sweep": {"pair": metas[0]["pair"], MEMBERS: list(metas)}}


def trial_members(config: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """``(run, sweep)`` of each run a Tune trial's config trains: one, or a population's members."""
    run, meta = config["run"], config["sweep"]
    if MEMBERS in run:
        return list(zip(run[MEMBERS], meta[MEMBERS], strict=True))
    return [(run, meta)]


def run_configs(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The trial configs in a trainable's config: a population's members, or the one run."""
    return list(run[MEMBERS]) if MEMBERS in run else [run]


def run_ids(trial_id: str, runs: int) -> list[str]:
    """The ids of the runs Tune trial ``trial_id`` trains: its own id for one run, ``<id>-<i>`` for
    member i of a population (the ``trials`` table's ``trial_id``)."""
    return [trial_id] if runs == 1 else [f"{trial_id}-{i}" for i in range(runs)]


def report(epoch: int, metrics: Sequence[Mapping[str, Any] | None]) -> dict:
    """One epoch's report of a population: every member's metrics keyed by index (so Tune's loggers
    flatten them to scalars, ``members/3/val_accuracy``), None for a member frozen earlier."""
    return {"epoch": epoch, POPULATION: len(metrics),
            MEMBERS: {str(i): (dict(m) if m is not None else None) for i, m in enumerate(metrics)}}


def member_metrics(result: Mapping[str, Any] | None, runs: int) -> list[Mapping[str, Any] | None]:
    """Each run's metrics in one reported result: a population's ``members`` (None for a member
    frozen earlier), Tune's flattened ``members/<i>/<metric>`` form of it, or the result itself for
    a trial of one run."""
    if not result:
        return [None] * runs
    if MEMBERS in result:
        return [result[MEMBERS].get(str(i)) for i in range(runs)]
    if POPULATION in result:  # a searcher gets Tune's flattened dict
        out: list[dict | None] = [None] * runs
        for key, value in result.items():
            parts = key.split("/", 2)
            if parts[0] == MEMBERS and len(parts) == 3:
                out[int(parts[1])] = {**(out[int(parts[1])] or {}), parts[2]: value}
        return out
    return [result] * runs
def member_finals(results, runs: int) -> list[Mapping[str, Any] | None]:
    """Each run's last metrics over a trial's ``results`` in order (a member frozen earlier keeps the
    last epoch it reported; None for a run that reported nothing)."""
    out: list[Mapping[str, Any] | None] = [None] * runs
    for result in results:
        for i, m in enumerate(member_metrics(result, runs)):
            if m is not None:
                out[i] = m
    return out


