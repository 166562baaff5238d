"""From finished Tune trials to the Parquet tables ``trials``, ``epochs``, ``layers``, ``predictions`` and ``budget``.

Rows follow ``lrresults/schema.py`` column for column and are written through
``lrresults.store.write_table`` (atomic). The tune stage never fills a test column and the seed
stage never fills a validation column, whatever a trainable reported: the test split is never
used to choose anything, and the tables show it.
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

from lrresults.crashpoints import crash_point
from lrresults.store import Location, exists, read_table, write_table
from sweeps.spec import Spec, WorkloadSpec, catalog
from vocab import predictions
from vocab.contracts import ERROR, FINISHED, LAYER_KEYS, OK, SEED, TUNE, Pair
from vocab.members import member_metrics, run_ids, trial_members

if TYPE_CHECKING:
    from lrstats.replay import Replay
    from sweeps.record.storage import SweepDir


@dataclass(frozen=True)
class TrialRecord:
    """One finished Tune trial: where it belongs, what it ran, and its per-epoch dicts."""

    trial_id: str
    stage: str
    pair: str
    workload: str
    strategy: str
    trial_index: int
    canonical: bool
    seed: int
    epochs_planned: int
    hparams: Mapping[str, Any]
    history: tuple[Mapping[str, Any], ...]
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    error_log: str | None = None
    population_id: str | None = None  # the Tune trial that trained it (a population's, for a member)
    spec_hash: str | None = None  # the spec of the step that added it (an extended sweep); None: the sweep's
    study: int = 0  # the pair's tuning study it belongs to (budget.studies)

    @property
    def status(self) -> str:
        if self.error is not None or not self.history:
            return ERROR
        return self.history[-1].get("status", OK)


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ERROR_CHARS = 2000


def describe_error(error: BaseException) -> tuple[str, str]:
    """``(summary, full text)`` of a trial's failure.

    The summary is the exception that failed the trial, as ``Type: message``: Ray's wrappers
    (``RayTaskError(...)`` and the ``ray::ImplicitFunc.train()`` header) are unwrapped and ANSI colour
    codes removed, so the real exception is never cut off behind a long traceback. The full text
    (Ray's traceback, colours removed) goes to the trial's error log.
    """
    full = ANSI.sub("", str(error))
    cause = error
    while getattr(cause, "cause", None) is not None and cause.cause is not cause:
        cause = cause.cause
    if cause is not error or not type(error).__module__.startswith("ray."):
        summary = f"{type(cause).__name__}: {ANSI.sub('', str(cause))}"
    else:  # a Ray error whose cause did not come back: its traceback ends with the exception line
        lines = [line for line in full.splitlines() if line.strip()]
        summary = lines[-1].strip() if lines else type(error).__name__
    if len(summary) > ERROR_CHARS:
        summary = summary[: ERROR_CHARS - 1] + "\u2026"
    return summary, full


def dedupe_epochs(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """One dict per epoch, from the last attempt: a trial retried from scratch or from a checkpoint
    reports some epochs again, and the later report of an epoch replaces the earlier ones."""
    out: list[dict] = []
    for row in rows:
        epoch = row.get("epoch")
        if epoch is None:
            continue
        out = [r for r in out if r["epoch"] < epoch]
        out.append(dict(row))
    return out


@lru_cache(maxsize=1)
def versions() -> str:
    """JSON of the library versions this sweep ran with."""
    names = ("lrsweep", "torch", "ray", "optuna", "pyarrow", "numpy", "transformers")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return json.dumps(found, sort_keys=True)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _resolved_hparams(record: TrialRecord) -> dict:
    """The hyperparameters the trial reported training with (``strategies.resolve_hparams``, once, in
    the trial); a trial that failed before its first epoch reported none: its sampled values."""
    reported = next((r["hparams"] for r in reversed(record.history) if r.get("hparams") is not None), None)
    return dict(record.hparams) if reported is None else dict(reported)


@cache
def _regime(workload: str, options: str) -> str:
    from trainables import get_workload

    w = get_workload(workload)
    return w.regime_for(w.validate_options(json.loads(options)))


@cache
def _generation(strategy: str) -> str:
    from strategies import get_strategy

    return str(get_strategy(strategy).generation)


def _finite_values(history: Iterable[Mapping[str, Any]], key: str) -> list[float]:
    """The finite values of ``key`` over a run's epochs, in order."""
    return [v for v in (_finite(r.get(key)) for r in history) if v is not None]


def trial_row(spec: Spec, record: TrialRecord) -> dict:
    """The ``trials`` row of one record."""
    h = record.history
    tune = record.stage == TUNE
    val = _finite_values(h, "val_accuracy") if tune else []
    test = _finite_values(h, "test_accuracy") if not tune else []
    return {
        "sweep_id": spec.name,
        "spec_hash": record.spec_hash or spec.hash,
        "workload": record.workload,
        "strategy": record.strategy,
        "generation": _generation(record.strategy),
        "regime": _regime(record.workload, json.dumps(dict(record.extra.get("workload_options", {})), sort_keys=True)),
        "stage": record.stage,
        "trial_id": record.trial_id,
        "trial_index": record.trial_index,
        "canonical": record.canonical,
        "seed": record.seed,
        "hparams": json.dumps(_resolved_hparams(record), sort_keys=True),
        "status": record.status,
        "error": record.error,
        "val_accuracy_final": val[-1] if val else None,
        "val_accuracy_best": max(val) if val else None,
        "test_accuracy_final": test[-1] if test else None,
        "test_accuracy_best": max(test) if test else None,
        "chance_accuracy": _finite(h[-1].get("chance_accuracy")) if h else None,
        "train_loss_final": _finite(h[-1].get("train_loss")) if h else None,
        "epochs_planned": record.epochs_planned,
        "epochs_run": len(h),
        "wall_seconds": float(sum(r.get("seconds") or 0.0 for r in h)),
        **_compute(h),
        "device": next((r["device"] for r in reversed(h) if r.get("device")), "unknown"),
        "versions": versions(),
        "error_log": record.error_log,
        "population_id": record.population_id or record.trial_id,
        "protocol_hash": _protocol_hash(spec, record.workload),
        "study": record.study,
    }


def _protocol_hash(spec: Spec, workload: str) -> str | None:
    return next((spec.protocol_hash(w) for w in spec.workloads if w.name == workload), None)


def _compute(history: list[dict]) -> dict:
    """The run's gradient evaluations and optimizer seconds, summed over its epochs; null for a run
    whose epochs predate the count (a record written by an older lrsweep and resumed)."""
    if not history or any("grad_evals" not in r for r in history):
        return {"grad_evals": None, "step_seconds": None}
    return {"grad_evals": int(sum(r["grad_evals"] for r in history)),
            "step_seconds": float(sum(r.get("step_seconds") or 0.0 for r in history))}


def epoch_rows(spec: Spec, record: TrialRecord) -> list[dict]:
    """The ``epochs`` rows of one record."""
    tune = record.stage == TUNE
    rows = []
    for r in record.history:
        phase = r.get("phase")
        rows.append({
            "sweep_id": spec.name,
            "workload": record.workload,
            "strategy": record.strategy,
            "stage": record.stage,
            "trial_id": record.trial_id,
            "seed": record.seed,
            "epoch": int(r["epoch"]),
            "train_loss": _finite(r.get("train_loss")) if _finite(r.get("train_loss")) is not None else 0.0,
            "train_accuracy": _finite(r.get("train_accuracy")) or 0.0,
            "val_accuracy": _finite(r.get("val_accuracy")) if tune else None,
            "test_accuracy": None if tune else _finite(r.get("test_accuracy")),
            "lr": _finite(r.get("lr")) or 0.0,
            "phase": int(phase) if _finite(phase) is not None else None,
            "trust_ratio": _finite(r.get("trust_ratio")),
            "seconds": _finite(r.get("seconds")) or 0.0,
            "steps": int(r["steps"]) if r.get("steps") is not None else None,
            "status": r.get("status", OK),
        })
    return rows


def layer_rows(spec: Spec, record: TrialRecord) -> list[dict]:
    """The ``layers`` rows of one record: one per epoch and layer group, bottom to top (none for epochs
    recorded before lrsweep measured them)."""
    rows = []
    for r in record.history:
        layers = r.get("layers")
        if not layers:
            continue
        n = len(layers["weight_norm"])  # one per layer group; a list of another length is not per group
        aligned = {key: values for key, values in layers.items() if values is not None and len(values) == n}
        for group in range(n):
            row = {"sweep_id": spec.name, "workload": record.workload, "strategy": record.strategy,
                   "stage": record.stage, "trial_id": record.trial_id, "seed": record.seed,
                   "epoch": int(r["epoch"]), "group": group}
            for key in LAYER_KEYS:
                row[key] = _finite(aligned[key][group]) if key in aligned else None
            rows.append(row)
    return rows


def prediction_rows(spec: Spec, record: TrialRecord) -> list[dict]:
    """The ``predictions`` row of a seed run: its last epoch's packed test predictions (none for a tune
    trial, an errored run, or a run recorded before lrsweep kept them)."""
    last = record.history[-1] if record.history else {}
    packed = last.get(predictions.KEY)
    if record.stage != SEED or record.status not in FINISHED or not packed:
        return []
    predicted, correct = predictions.blobs(packed)
    return [{"sweep_id": spec.name, "spec_hash": record.spec_hash or spec.hash, "workload": record.workload,
             "strategy": record.strategy,
             "trial_id": record.trial_id, "seed": record.seed, "population_id": record.population_id or record.trial_id,
             "epoch": int(last["epoch"]), "n_rows": packed["rows"], "n_classes": packed["classes"],
             "width": packed["width"], "n_correct": packed["n_correct"], "predicted": predicted, "correct": correct,
             "study": record.study}]


def _space_json(workload: WorkloadSpec, strategy: str, overrides: Mapping) -> str:
    """The pair's searched ranges as JSON, so a report (which reads only Parquet) can mark the bounds."""
    space = catalog.space(workload.name, workload.options_dict, strategy, overrides)
    return json.dumps({h: {"low": r.low, "high": r.high, "scale": r.scale} for h, r in space.items()},
                      sort_keys=True)


def _summed_grad_evals(records: list[TrialRecord]) -> int | None:
    """Gradient evaluations over the finished records, or None when any of them did not count them."""
    counts = [_compute(r.history)["grad_evals"] for r in records if r.status in FINISHED]
    return None if not counts or None in counts else int(sum(counts))


def _study_selections(spec: Spec, records: list[TrialRecord]) -> dict[str, Replay]:
    """Each workload's selection over studies replayed from its seed runs (``budget.studies: auto`` only), as
    the driver replayed it (``sweeps.designs.rounds.StudyRounds``)."""
    from lrstats.replay import Replay
    from sweeps.designs.rounds import StudyRounds

    rounds = StudyRounds(spec.budget.study_selection.settings(),
                         {Pair(w.name, s).key: (w.name, s) for w, s in spec.pairs()}, int(spec.evaluation.seeds))
    for r in records:
        if r.stage == SEED:
            test = _finite_values(r.history, "test_accuracy") if r.status in FINISHED else []
            rounds.scored(r.pair, r.seed, 100.0 * test[-1] if test else None)
    out = {}
    for w in spec.workloads:
        rounds.ask(w.name)
        found = rounds.workloads[w.name]
        out[w.name] = Replay(found.decision, found.errored)
    return out


def _selections(spec: Spec, records: list[TrialRecord]) -> dict[str, Replay]:
    """Each workload's selection replayed from its seed runs (the selection design only)."""
    if spec.budget.adaptive_studies:
        return _study_selections(spec, records)
    if not spec.evaluation.adaptive:
        return {}
    from lrstats.replay import replay

    rows: dict[str, list] = {w.name: [] for w in spec.workloads}
    for r in records:
        if r.stage == SEED:
            test = _finite_values(r.history, "test_accuracy") if r.status in FINISHED else []
            rows[r.workload].append((r.strategy, r.seed, 100.0 * test[-1] if test else None))  # trials' final
    return {w: replay(found, spec.evaluation.settings(), {s for s, _, _ in found}) for w, found in rows.items()}


def budget_rows(spec: Spec, records: list[TrialRecord], spec_hashes: Mapping[str, str] | None = None,
                calibrated: Mapping[str, Mapping] | None = None) -> list[dict]:
    """One ``budget`` row per pair: what was planned, what ran, and whether that is complete;
    ``spec_hashes``: pair key -> the spec hash of the step that added it (an extended sweep);
    ``calibrated``: pair key -> its calibration (``sweeps.engine.calibrate``), whose range was searched."""
    rows = []
    selections = _selections(spec, records)
    design = "selection" if spec.evaluation.adaptive else "study_selection" if spec.budget.adaptive_studies else "fixed"
    settings = json.dumps(spec.evaluation.to_dict(), sort_keys=True) if spec.evaluation.adaptive else None
    if spec.budget.adaptive_studies:  # the same five fields, in studies
        settings = json.dumps(spec.budget.study_selection.to_dict(), sort_keys=True)
    studies = spec.budget.studies
    for w, s in spec.pairs():
        pair = Pair(w.name, s).key
        mine = [r for r in records if (r.workload, r.strategy) == (w.name, s)]  # every study's runs
        tune = [r for r in mine if r.stage == TUNE]
        seed = [r for r in mine if r.stage == SEED]
        trials_run = sum(r.status in FINISHED for r in tune)
        seeds_run = sum(r.status in FINISHED for r in seed)
        asked, stopped, studies_asked = spec.evaluation.first_stage * studies, True, studies
        if w.name in selections and spec.budget.adaptive_studies:  # seeds asked: each study asked, its seeds
            chosen = selections[w.name]
            given = chosen.seeds_asked(s)
            studies_asked = max(given or 0, studies) if s not in chosen.errored else len({r.study for r in tune})
            asked = studies_asked * spec.evaluation.first_stage
            stopped = chosen.decision is not None and chosen.decision.stopped
        elif w.name in selections:
            chosen = selections[w.name]
            given = chosen.seeds_asked(s)  # a workload of one strategy selects it after its first stage
            asked = len(seed) if given is None else max(given, spec.evaluation.first_stage)
            stopped = chosen.decision is not None and chosen.decision.stopped
        es = spec.budget.early_stopping
        own = (calibrated or {}).get(pair)
        rows.append({
            "sweep_id": spec.name,
            "spec_hash": (spec_hashes or {}).get(pair, spec.hash),
            "workload": w.name,
            "strategy": s,
            "trials_planned": spec.budget.total_trials,  # over studies: the first stage's (the least)
            "trials_run": trials_run,
            "trials_errored": sum(r.status == ERROR for r in tune),
            "epochs": w.epochs,
            "budget_unit": spec.budget.unit,
            "grad_evals": _summed_grad_evals(tune),
            "sampler": spec.budget.sampler,
            "sampler_seed": spec.budget.sampler_seed,
            "early_stopping": json.dumps(es.to_dict(), sort_keys=True) if es else None,
            "selection": spec.evaluation.selection,
            "seeds_planned": spec.evaluation.first_stage * studies,
            "seeds_run": seeds_run,
            "complete": trials_run == studies_asked * spec.budget.trials and seeds_run == asked and stopped,
            "seed_design": design,
            "seeds_asked": asked,
            "selection_settings": settings,
            "search_space": _space_json(w, s, {**spec.overrides(s), **catalog.calibration_override(own)}),
            "protocol_hash": spec.protocol_hash(w),
            "studies": studies_asked,
            "default_search_space": _space_json(w, s, spec.overrides(s)) if own else None,
            "calibration": json.dumps(own, sort_keys=True) if own else None,
        })
    return rows


def write_results(spec: Spec, records: list[TrialRecord], directory: str | Location,
                  spec_hashes: Mapping[str, str] | None = None, calibrated: Mapping | None = None) -> list[dict]:
    """Write ``trials``, ``epochs``, ``layers``, ``predictions`` and ``budget`` under ``directory`` (budget
    last: its presence marks the tables complete); return the budget rows (``spec_hashes`` as in
    ``budget_rows``)."""
    records = sorted(records, key=lambda r: (r.workload, r.strategy, r.stage != TUNE, r.study, r.trial_index))
    budget = budget_rows(spec, records, spec_hashes, calibrated)
    write_table("trials", [trial_row(spec, r) for r in records], directory)
    crash_point("table")
    write_table("epochs", [row for r in records for row in epoch_rows(spec, r)], directory)
    crash_point("table")
    write_table("layers", [row for r in records for row in layer_rows(spec, r)], directory)
    crash_point("table")
    write_table("predictions", [row for r in records for row in prediction_rows(spec, r)], directory)
    crash_point("table")
    write_table("budget", budget, directory)
    crash_point("table")
    return budget


def records(runs, sweep: SweepDir | None = None) -> list[TrialRecord]:
    """One record per run (a population trial's members each) from the durable record's finished
    trials; with ``sweep``, each failure's full text goes to errors/<trial id>.txt."""
    found = []
    for result in runs:
        members = trial_members(result.config)
        history = dedupe_epochs(result.history)
        trial_id = result.trial_id
        error, error_log = result.error, None
        if error is not None and sweep is not None:
            sweep.write_text(f"errors/{trial_id}.txt", f"trial {trial_id} failed: {error}\n\n{result.error_full}\n")
            error_log = sweep.path(f"errors/{trial_id}.txt")
        per_epoch = [member_metrics(h, len(members)) for h in history]  # each epoch's dict of every run
        for i, ((run, meta), run_id) in enumerate(zip(members, run_ids(trial_id, len(members)), strict=True)):
            own = tuple(dedupe_epochs(row[i] for row in per_epoch if row[i]))  # the epochs it reported in
            found.append(TrialRecord(
                trial_id=run_id, stage=run["stage"], pair=meta["pair"],
                workload=run["workload"], strategy=run["strategy"], trial_index=meta["trial_index"],
                canonical=bool(meta["canonical"]), seed=run["seed"], epochs_planned=run["epochs"],
                hparams=run["hparams"], history=own, error=error, error_log=error_log,
                extra={"workload_options": run["workload_options"]}, population_id=trial_id,
                study=int(run.get("study", meta.get("study", 0))),  # a tune run's config, a seed run's meta
            ))
    return found


def tables_complete(sweep: SweepDir) -> bool:
    """Whether the sweep's three tables are there and readable (they are written last, budget last)."""
    try:
        return all(exists(name, sweep.location) and read_table(name, sweep.location) is not None
                   for name in ("trials", "epochs", "budget"))
    except Exception:  # noqa: BLE001 - a damaged table is rewritten by a resume
        return False
