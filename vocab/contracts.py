"""The names every layer agrees on: stages, the metric each stage scores, trial statuses, regimes, pairs.

They travel as strings through Tune configs, epoch dicts and the Parquet tables; defining each once
here keeps the writers (trainables, sweeps) and the readers (reports) in step. This module imports
nothing and sits below every package that uses it, so strategies, trainables, sweeps and reports all
import it without pulling in torch, Ray or each other.
"""

from __future__ import annotations

from dataclasses import dataclass

TUNE = "tune"
"""The stage that searches hyperparameters, scored on the validation split."""
SEED = "seed"
"""The stage that retrains a pair's selected configuration with each seed, scored on test."""
STAGES = (TUNE, SEED)

STAGE_METRIC = {TUNE: "val_accuracy", SEED: "test_accuracy"}
"""The metric each stage reports as its score: tune trials never see test, seed runs are ranked on it."""

OK = "ok"
DIVERGED = "diverged"
ERROR = "error"
"""A trial's status: the last epoch's ``status`` (ok or diverged), or error when it failed."""
FINISHED = (OK, DIVERGED)
"""Statuses of trials that give a result; a diverged trial is a result (at its measured accuracy), not an error."""

TIMINGS = ("seconds", "step_seconds")
"""Epoch metric keys that are clock readings (the epoch's wall seconds, the optimizer's own seconds):
they differ between two runs of the same config, so comparisons of histories leave them out."""

EPOCHS = "epochs"
GRADIENT_EVALUATIONS = "gradient_evaluations"
BUDGET_UNITS = (EPOCHS, GRADIENT_EVALUATIONS)
"""What a budget's ``epochs`` measures: passes over the data, or the gradient evaluations those passes
make at one per step, shared out ``passes_per_step`` per step (SAM: half the steps)."""

LAYER_KEYS = ("lr", "grad_norm", "weight_norm", "update_ratio", "trust_ratio")
"""The per-layer-group values of an epoch's ``layers`` dict and the ``layers`` table's columns
(``trust_ratio`` only where the strategy has one)."""

SCRATCH = "scratch"
FINETUNE = "finetune"
REGIMES = (SCRATCH, FINETUNE)
"""A workload's regime: trained from scratch, or a pretrained model fine-tuned (strategies' settings differ)."""


STUDY_MARK = "#study"
"""Joins a pair's key and a study index in the key of one of several tuning studies."""


@dataclass(frozen=True)
class Pair:
    """A (workload, strategy) pair: the unit that gets one budget, its tuning studies and their seed runs."""

    workload: str
    strategy: str

    @property
    def key(self) -> str:
        """The pair's name: its Optuna study name and its key in configs, progress.json and selection.json."""
        return f"{self.workload}/{self.strategy}"

    def study_key(self, study: int, studies: int) -> str:
        """The name of the pair's tuning study ``study`` of ``studies``: its key when it is the only one."""
        return self.key if studies == 1 else f"{self.key}{STUDY_MARK}{study}"
