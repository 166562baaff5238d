"""The Parquet results schema: five tables, one row per thing, every column typed.

This module is the single source of truth for what a sweep writes and what a report reads. It
imports pyarrow only, so reports run on a machine without Ray or torch. Accuracies are fractions
in [0, 1]; times are seconds. docs/RESULTS.md is generated from `TABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """One documented column of a results table."""

    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False


PROTOCOL_DOC = ("16 hex: 8 of the budget, evaluation and seed rule, 8 of the workload (options, epochs); equal "
                "hashes = comparable pairs, whatever the strategy list (an extended sweep keeps it); null in results "
                "written before it was recorded")

TRIALS = (
    Column("sweep_id", pa.string(), "sweep name from the spec"),
    Column("spec_hash", pa.string(), "sha256 (first 16 hex) of the normalised spec; equal hashes = same protocol"),
    Column("workload", pa.string(), "workload name, e.g. synthetic"),
    Column("strategy", pa.string(), "strategy id from STRATEGIES.md, e.g. dals"),
    Column("generation", pa.string(), "the strategy's generation: the paper's 1..5 or SOTA, or modern "
           "(the later baselines)"),
    Column("regime", pa.string(), "scratch (trained from scratch) or finetune (a pretrained model fine-tuned)"),
    Column("stage", pa.string(), "tune (validation split) or seed (full train, scored on test)"),
    Column("trial_id", pa.string(), "unique id of the trial within the sweep"),
    Column("trial_index", pa.int32(), "0-based index in its (workload, strategy, stage); tune index 0 is canonical"),
    Column("canonical", pa.bool_(), "whether the hyperparameters are the strategy's canonical (paper) ones"),
    Column("seed", pa.int64(), "torch/numpy seed of the run (tune trials and seed runs never share one; see README)"),
    Column("hparams", pa.string(), "JSON object of the full resolved hyperparameters"),
    Column("status", pa.string(), "ok, diverged (non-finite loss or weights: a result) or error (failed on retries)"),
    Column("error", pa.string(), "error message when status is error", nullable=True),
    Column("val_accuracy_final", pa.float64(), "validation accuracy after the last epoch (tune stage)", nullable=True),
    Column("val_accuracy_best", pa.float64(), "best validation accuracy over epochs (tune stage)", nullable=True),
    Column("test_accuracy_final", pa.float64(), "test accuracy after the last epoch (seed stage; primary metric)",
           nullable=True),
    Column("test_accuracy_best", pa.float64(),
           "best test accuracy over epochs (seed stage; the paper's optimistic metric)", nullable=True),
    Column("chance_accuracy", pa.float64(),
           "majority-class rate of the scored split (validation in tune, test in seed): a constant classifier's "
           "accuracy, the 0 of the report's normalised scores", nullable=True),
    Column("train_loss_final", pa.float64(), "training loss of the last epoch", nullable=True),
    Column("epochs_planned", pa.int32(), "epochs the budget asked for"),
    Column("epochs_run", pa.int32(), "epochs actually run (fewer when diverged or early-stopped, or when a budget "
           "in gradient evaluations gives a strategy of two passes per step, SAM, half the steps)"),
    Column("wall_seconds", pa.float64(), "sum of the trial's epoch times"),
    Column("grad_evals", pa.int64(), "gradient evaluations (forward and backward passes) over the run, counted "
           "where the strategy's closure runs: SAM makes two per step", nullable=True),
    Column("step_seconds", pa.float64(), "seconds in the optimizer's own step over the run, its closure calls "
           "excluded (host time on CUDA)", nullable=True),
    Column("device", pa.string(), "cpu or cuda:<name>"),
    Column("versions", pa.string(), "JSON object of library versions (torch, ray, optuna, lrsweep, ...)"),
    Column("error_log", pa.string(), "path of the file holding the failure's full traceback when status is error",
           nullable=True),
    Column("population_id", pa.string(), "the Tune trial that trained this run: equal to trial_id for a run trained "
           "alone, shared by the members of a population (resources.population)", nullable=True),
    Column("protocol_hash", pa.string(), PROTOCOL_DOC, nullable=True),
    Column("study", pa.int32(), "0-based tuning study of the pair the run belongs to (budget.studies): a tune trial "
           "of study j was asked by its study's sampler; a seed run retrains study j's chosen configuration. 0 for a "
           "one-study sweep; null in results written before it was recorded (read as 0)", nullable=True),
)

RUN_EPOCH = (
    Column("sweep_id", pa.string(), "sweep name"),
    Column("workload", pa.string(), "workload name"),
    Column("strategy", pa.string(), "strategy id"),
    Column("stage", pa.string(), "tune or seed"),
    Column("trial_id", pa.string(), "joins trials.trial_id"),
    Column("seed", pa.int64(), "seed of the run"),
    Column("epoch", pa.int32(), "1-based epoch number"),
)
"""The columns that name one epoch of one run, first in ``epochs`` and ``layers``."""

EPOCHS = RUN_EPOCH + (
    Column("train_loss", pa.float64(), "mean training loss over the epoch (capped when diverged)"),
    Column("train_accuracy", pa.float64(), "training accuracy over the epoch"),
    Column("val_accuracy", pa.float64(), "validation accuracy (tune stage)", nullable=True),
    Column("test_accuracy", pa.float64(), "test accuracy (seed stage)", nullable=True),
    Column("lr", pa.float64(), "learning rate of the top layer group at the end of the epoch"),
    Column("phase", pa.int32(), "DALS phase at the end of the epoch (0, 1, 2); null for other strategies",
           nullable=True),
    Column("trust_ratio", pa.float64(), "DALS mean trust ratio at the end of the epoch", nullable=True),
    Column("seconds", pa.float64(), "wall seconds of this epoch"),
    Column("steps", pa.int32(), "optimizer steps in this epoch (a whole pass over the data, except the last epoch "
           "of a budget in gradient evaluations); null in results written before it was recorded", nullable=True),
    Column("status", pa.string(), "ok or diverged"),
)

BUDGET = (
    Column("sweep_id", pa.string(), "sweep name"),
    Column("spec_hash", pa.string(), "spec hash, as in trials"),
    Column("workload", pa.string(), "workload name"),
    Column("strategy", pa.string(), "strategy id"),
    Column("trials_planned", pa.int32(), "tuning trials the budget gives every pair, over all its studies "
           "(studies x trials; with budget.studies: auto, the first stage's: the least any pair got)"),
    Column("trials_run", pa.int32(), "tuning trials that finished (ok or diverged)"),
    Column("trials_errored", pa.int32(), "tuning trials that errored after retries"),
    Column("epochs", pa.int32(), "epochs per tuning trial (in budget_unit)"),
    Column("budget_unit", pa.string(), "what epochs measures: epochs (passes over the data) or gradient_evaluations "
           "(the passes' gradient evaluations at one per step, so SAM trains half the steps); null in results "
           "written before it was recorded", nullable=True),
    Column("grad_evals", pa.int64(), "gradient evaluations of the pair's finished tuning trials, summed; null "
           "when any went unrecorded", nullable=True),
    Column("sampler", pa.string(), "Optuna sampler: tpe, qmc or random"),
    Column("sampler_seed", pa.int64(), "sampler seed (the same for every pair)"),
    Column("early_stopping", pa.string(), "JSON of the early-stopping rule applied to every pair, or null",
           nullable=True),
    Column("selection", pa.string(), "validation score that picked the seed stage's config: final or best epoch"),
    Column("seeds_planned", pa.int32(), "re-evaluation seeds planned for every pair: all of them (fixed design) or "
           "the common first stage (selection design); with several studies, over all of them (studies x seeds)"),
    Column("seeds_run", pa.int32(), "re-evaluation runs that finished (ok or diverged)"),
    Column("complete", pa.bool_(), "trials_run == trials_planned and seeds_run == seeds_asked (selection: and the "
           "workload's procedure stopped)"),
    Column("seed_design", pa.string(), "fixed (seeds: N), selection (seeds: auto, Kim & Nelson's procedure) or "
           "study_selection (budget.studies: auto, the same procedure over tuning studies); "
           "null in results written before the selection design existed (all fixed)", nullable=True),
    Column("seeds_asked", pa.int32(), "seeds the pair was given: seeds_planned (fixed), or the first stage plus "
           "every round it stayed in contention (selection; study_selection: studies asked x seeds); null before it "
           "was recorded", nullable=True),
    Column("selection_settings", pa.string(), "JSON of the selection design's settings (indifference in pp, "
           "confidence, first_seeds, max_seeds, batch; study_selection: first_studies, max_studies, batch in studies); "
           "null for a fixed design", nullable=True),
    Column("search_space", pa.string(), "JSON object {hparam: {low, high, scale}} of the searched ranges "
           "(scale log, linear or int), spec overrides applied; null in results written before it was recorded",
           nullable=True),
    Column("protocol_hash", pa.string(), "protocol hash, as in trials", nullable=True),
    Column("studies", pa.int32(), "independent tuning studies per pair (budget.studies), each of "
           "trials_planned / studies trials (study_selection: the studies the pair was given, each of budget.trials "
           "trials); null in results written before it was recorded (one)", nullable=True),
    Column("default_search_space", pa.string(), "JSON as search_space: the ranges the width policy (and "
           "overrides) gave before calibration; null where no range was calibrated", nullable=True),
    Column("calibration", pa.string(), "JSON of the pair's LR range test (spec section calibrate): hparam, "
           "low, high, steepest_lr, minimum_lr, divergence_lr, steps, min_lr, max_lr, seed, grad_evals, epochs, "
           "seconds, notes; its cost is not in grad_evals; null without calibration", nullable=True),
)

LAYERS = RUN_EPOCH + (
    Column("group", pa.int32(), "layer group, 0 = bottom (input side), as the workload defines its groups"),
    Column("lr", pa.float64(), "the group's learning rate at that step; null where the strategy's param groups "
           "do not follow the layer groups (Muon: its Muon and AdamW parts of a group have two)", nullable=True),
    Column("grad_norm", pa.float64(), "L2 norm of the group's gradient (the step's first pass, before the strategy "
           "rewrites it); null where not finite or the step was not reached (diverged)", nullable=True),
    Column("weight_norm", pa.float64(), "L2 norm of the group's weights after the step; null where not finite",
           nullable=True),
    Column("update_ratio", pa.float64(), "norm of the step's change of the group's weights over their norm after "
           "it; null where not finite or the step was not reached", nullable=True),
    Column("trust_ratio", pa.float64(), "mean trust ratio over the group's tensors at that step, for strategies "
           "that have one (DALS family, LARS); null otherwise", nullable=True),
)

PREDICTIONS = (
    Column("sweep_id", pa.string(), "sweep name"),
    Column("spec_hash", pa.string(), "spec hash, as in trials"),
    Column("workload", pa.string(), "workload name"),
    Column("strategy", pa.string(), "strategy id"),
    Column("trial_id", pa.string(), "joins trials.trial_id (a seed-stage run)"),
    Column("seed", pa.int64(), "seed of the run; runs of one workload with equal seeds are paired"),
    Column("population_id", pa.string(), "the Tune trial that trained the run, as in trials", nullable=True),
    Column("epoch", pa.int32(), "the epoch the predictions were taken at: the run's last (its epochs_run)"),
    Column("n_rows", pa.int32(), "test rows scored, in the test split's order"),
    Column("n_classes", pa.int32(), "classes of the task"),
    Column("width", pa.int8(), "bytes per predicted class in predicted: 1 up to 256 classes, else 2 (little-endian)"),
    Column("n_correct", pa.int32(), "test rows predicted right: n_correct / n_rows is trials.test_accuracy_final"),
    Column("predicted", pa.binary(), "the predicted class of every test row, width bytes each (n_rows x width bytes)"),
    Column("correct", pa.binary(), "whether each test row was predicted right, one bit per row, first row in the "
           "high bit of the first byte (numpy.packbits; ceil(n_rows / 8) bytes)"),
    Column("study", pa.int32(), "the run's tuning study, as in trials; null in results written before it was "
           "recorded (read as 0)", nullable=True),
)
"""One row per seed-stage run: its predictions on the test split (``vocab.predictions`` packs them)."""

TABLES: dict[str, tuple[Column, ...]] = {"trials": TRIALS, "epochs": EPOCHS, "budget": BUDGET, "layers": LAYERS,
                                         "predictions": PREDICTIONS}


def schema(table: str) -> pa.Schema:
    """The pyarrow schema of a results table, with each column's doc as field metadata."""
    try:
        columns = TABLES[table]
    except KeyError:
        raise ValueError(f"unknown results table {table!r}; valid tables: {sorted(TABLES)}") from None
    return pa.schema(
        [pa.field(c.name, c.type, nullable=c.nullable, metadata={"doc": c.doc}) for c in columns]
    )


def markdown_table(table: str) -> str:
    """A Markdown table documenting one results table (used to keep docs/RESULTS.md true)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for c in TABLES[table]:
        kind = f"{c.type}" + (", nullable" if c.nullable else "")
        lines.append(f"| `{c.name}` | {kind} | {c.doc} |")
    return "\n".join(lines)
