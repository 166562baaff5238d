"""What the trackers are handed: the record's runs as ``TrackedRun``s and the report's verdict.

Pure conversion, no transport: a finished Tune trial (``RunRecord``) becomes one ``TrackedRun`` per
run (a population's members each) as the ``trials`` table has it, and a rendered ``report.md`` gives
its verdict section.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from sweeps.record.durable import RunRecord
from sweeps.record.storage import SweepDir
from sweeps.spec import Spec
from sweeps.trackers import SweepInfo, TrackedRun

__all__ = ["TAG_COLUMNS", "epoch_scalars", "report_verdict", "sweep_info", "tracked_runs"]

TAG_COLUMNS = ("sweep_id", "spec_hash", "stage", "workload", "strategy", "seed", "trial_id", "trial_index",
               "population_id", "canonical", "status")
"""Columns of the ``trials`` table that a run carries as tags (with its ``pair``), to filter runs by."""


def sweep_info(spec: Spec, sweep: SweepDir) -> SweepInfo:
    """What a tracker is told of the sweep; its local folder is the sweep directory, or for a remote
    sweep the driver's cache of it (where the journal is)."""
    return SweepInfo(spec.name, spec.hash, sweep.root, os.path.dirname(os.path.abspath(sweep.journal_path)))


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def epoch_scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The loggable numbers of one epoch's dict: every finite scalar (accuracies, losses, lr, phase,
    gradient evaluations, ...) and each per-layer-group list as ``layers/<name>/group<i>``."""
    out = {k: v for k, v in ((k, _scalar(v)) for k, v in row.items() if k != "epoch") if v is not None}
    for name, values in (row.get("layers") or {}).items():
        for i, value in enumerate(values or ()):
            if (v := _scalar(value)) is not None:
                out[f"layers/{name}/group{i}"] = v
    return out


def tracked_runs(spec: Spec, run: RunRecord) -> list[TrackedRun]:
    """The runs of one finished Tune trial as the ``trials`` table has them (same ids, hyperparameters
    and status; ``sweeps.record.results.trial_row``), with their epochs."""
    from sweeps.record.results import records, trial_row

    out = []
    for record in records([run]):
        row = trial_row(spec, record)
        key = f"{record.pair}/{record.stage}-{record.trial_index}"
        tags = {"pair": record.pair, **{c: str(row[c]) for c in TAG_COLUMNS}}
        params = {**json.loads(row["hparams"]), "epochs_planned": record.epochs_planned}
        epochs = tuple((int(h["epoch"]), epoch_scalars(h)) for h in record.history)
        out.append(TrackedRun(key, f"{record.pair} {record.stage} {record.trial_index}", params, tags, epochs))
    return out


def report_verdict(markdown: str) -> str:
    """The verdict section of a rendered ``report.md`` (the report's own words, not recomputed)."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("## "):
            if inside:
                break
            inside = line.strip() == "## Verdict"
        if inside:
            lines.append(line)
    return "\n".join(lines).strip()
