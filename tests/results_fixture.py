"""Synthetic but realistic sweep results, written through `lrresults.store.write_table`.

A fixture sweep has, per (workload, strategy): `tune_trials` tuning trials (trial 0 canonical),
then one re-evaluation run per seed with the best configuration, each with a learning curve in the
`epochs` table, and a `budget` row. Accuracies follow a saturating curve towards a per-pair skill
plus seed noise, so strategies differ by realistic margins, or towards given true means (`offsets`)
for simulations. One seed run can be made to diverge.
Everything is drawn from a numpy generator seeded by `rng_seed`, so the files are reproducible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from lrresults.store import write_table
from vocab.predictions import blobs, pack

#: The paper's generation of each strategy (docs/STRATEGIES.md).
GENERATION = {
    "fixed_sgd": "1", "cosine_sgd": "2", "sgdr": "2", "adam": "3", "adamw": "3", "adabound": "3",
    "lars": "4", "discriminative": "4", "radam": "5", "lion": "5", "lookahead_adamw": "5", "sam": "5",
    "grokfast": "5", "stlr_discriminative": "5", "sam_discriminative": "SOTA", "dals": "SOTA",
    "dals_fast": "SOTA", "dals_acc": "SOTA",
}
FINETUNE = ("rte", "trec6", "imdb")
#: The searched ranges every fixture pair records: the tune LRs are drawn log-uniformly inside it.
SEARCH_SPACE = json.dumps({"lr": {"low": 1e-3, "high": 1e-1, "scale": "log"},
                           "momentum": {"low": 0.8, "high": 0.95, "scale": "linear"}}, sort_keys=True)
VERSIONS = json.dumps({"lrsweep": "0.1.0", "torch": "2.14.1", "ray": "2.60.0"})


@dataclass
class _Pair:
    """One (workload, strategy) of the fixture: appends a run's trials row and epochs rows."""

    common: dict
    spec_hash: str
    generation: str
    index: int
    base: float
    epochs: int
    rng: np.random.Generator
    trials: list
    epoch_rows: list
    epoch_sd: float = 0.003

    def tau(self) -> float:
        return 1.5 + self.index * 0.5

    def level_for(self, final: float) -> float:
        """The curve level whose expected final-epoch accuracy is `final` (the curve may not have saturated)."""
        return self.base + (final - self.base) / (1 - np.exp(-self.epochs / self.tau()))

    def run(self, stage: str, index: int, seed: int, lr: float, level: float, diverged: bool) -> None:
        """A learning curve saturating at `level`; a diverged run drops to chance after 2 epochs."""
        trial_id = f"{self.common['workload']}-{self.common['strategy']}-{stage}-{index}"
        dals = self.common["strategy"].startswith("dals")
        n_ep = 2 if diverged else self.epochs
        tau = self.tau()
        curve, secs = [], []
        for e in range(1, n_ep + 1):
            acc = self.base + (level - self.base) * (1 - np.exp(-e / tau)) + self.rng.normal(0, self.epoch_sd)
            acc = float(np.clip(0.1 if diverged and e == n_ep else acc, 0, 1))
            sec = float(1.0 + 0.1 * self.index + self.rng.uniform(0, 0.05))
            curve.append(acc)
            secs.append(sec)
            self.epoch_rows.append({
                **self.common, "stage": stage, "trial_id": trial_id, "seed": seed, "epoch": e,
                "train_loss": float(2.3 * (1 - acc) + 0.01), "train_accuracy": min(1.0, acc + 0.02),
                "val_accuracy": acc if stage == "tune" else None,
                "test_accuracy": acc if stage == "seed" else None,
                "lr": lr * 0.5 * (1 + np.cos(np.pi * e / n_ep)),
                "phase": min(2, e // 3) if dals else None, "trust_ratio": 1.0 if dals else None,
                "seconds": sec, "status": "diverged" if diverged and e == n_ep else "ok",
            })
        final, best = curve[-1], max(curve)
        self.trials.append({
            **self.common, "spec_hash": self.spec_hash, "generation": self.generation, "stage": stage,
            "trial_id": trial_id, "trial_index": index, "canonical": stage == "tune" and index == 0,
            "seed": seed, "hparams": json.dumps({"lr": lr, "momentum": 0.9}, sort_keys=True),
            "regime": "finetune" if self.common["workload"] in FINETUNE else "scratch",
            "chance_accuracy": self.base,
            "status": "diverged" if diverged else "ok", "error": None,
            "val_accuracy_final": final if stage == "tune" else None,
            "val_accuracy_best": best if stage == "tune" else None,
            "test_accuracy_final": final if stage == "seed" else None,
            "test_accuracy_best": best if stage == "seed" else None,
            "train_loss_final": float(2.3 * (1 - final)), "epochs_planned": self.epochs, "epochs_run": n_ep,
            "wall_seconds": float(sum(secs)), "device": "cpu", "versions": VERSIONS,
        })


def make_rows(
    *,
    workloads: Sequence[str] = ("synthetic", "cifar10", "rte"),
    strategies: Sequence[str] = ("dals", "sgdr", "adamw", "fixed_sgd"),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    seeds_by_workload: dict[str, Sequence[int]] | None = None,
    tune_trials: int = 6,
    epochs: int = 8,
    spec_hash: str = "0123456789abcdef",
    sweep_id: str = "fixture",
    trials_planned: int | None = None,
    diverge: tuple[str, str, int] | None = ("cifar10", "fixed_sgd", 3),
    rng_seed: int = 0,
    selection: str = "final",
    offsets: dict[str, float] | None = None,
    seed_sd: float = 0.004,
    shared_sd: float = 0.0,
    epoch_sd: float = 0.003,
) -> dict[str, list[dict]]:
    """Row dicts for the `trials`, `epochs` and `budget` tables.

    `seeds_by_workload` overrides `seeds` for some workloads (e.g. a single-seed workload).
    `diverge = (workload, strategy, seed)` makes that seed run diverge after 2 epochs at chance level.
    `offsets` (strategy -> fraction) sets each strategy's true mean final test accuracy to the workload's
    top skill (0.95 - 0.08 * workload index) plus its offset, instead of the default 1.5 pp ladder.
    Seed noise: `seed_sd` per seed run, `shared_sd` per seed and workload, shared by its strategies (so
    pairing by seed removes it), and `epoch_sd` on every epoch's accuracy.
    """
    rng = np.random.default_rng(rng_seed)
    trials, epoch_rows, budget = [], [], []
    for wi, workload in enumerate(workloads):
        base = 0.1 + 0.05 * wi
        run_seeds = list((seeds_by_workload or {}).get(workload, seeds))
        shared = {s: rng.normal(0, shared_sd) for s in run_seeds} if shared_sd else {}
        for si, strategy in enumerate(strategies):
            skill = 0.95 - 0.08 * wi + (offsets[strategy] if offsets is not None else -0.015 * si)
            gen = GENERATION.get(strategy, "5")
            common = {"sweep_id": sweep_id, "workload": workload, "strategy": strategy}
            pair = _Pair(common, spec_hash, gen, si, base, epochs, rng, trials, epoch_rows, epoch_sd)
            lrs = [0.03] + list(10 ** rng.uniform(-3, -1, tune_trials - 1))
            levels = [skill - 0.03 * abs(np.log10(lr) + 1.5) + rng.normal(0, 0.004) for lr in lrs]
            for i, (lr, lv) in enumerate(zip(lrs, levels, strict=True)):
                pair.run("tune", i, 1000 + i, float(lr), lv, False)
            best_lr = float(lrs[int(np.argmax(levels))])
            for s in run_seeds:
                level = skill + shared.get(s, 0.0) + rng.normal(0, seed_sd)
                if offsets is not None:
                    level = pair.level_for(level)
                pair.run("seed", s, s, best_lr, level, diverge == (workload, strategy, s))
            budget.append({
                **common, "spec_hash": spec_hash, "trials_planned": trials_planned or tune_trials,
                "trials_run": tune_trials, "trials_errored": 0, "epochs": epochs, "sampler": "tpe",
                "sampler_seed": 0, "early_stopping": None, "selection": selection, "seeds_planned": len(run_seeds),
                "seeds_run": len(run_seeds),
                "complete": (trials_planned or tune_trials) == tune_trials,
                "search_space": SEARCH_SPACE,
            })
    return {"trials": trials, "epochs": epoch_rows, "budget": budget}


def write_fixture(directory: str, **kwargs) -> dict[str, list[dict]]:
    """Write a fixture sweep's tables (without predictions: `add_predictions`) under `directory`; returns the rows."""
    rows = make_rows(**kwargs)
    for name, table_rows in rows.items():
        write_table(name, table_rows, directory)
    return rows


def add_predictions(directory: str, rows: int = 277, rng_seed: int = 0) -> None:
    """Give every seed run of a fixture sweep a ``predictions`` row on ``rows`` test rows (RTE's 277 by
    default; a difficulty per row shared by all runs of a workload, so paired rows correlate as real ones
    do), and set its trials row's test accuracy to the predictions' n_correct / rows."""
    rng = np.random.default_rng(rng_seed)
    trials = pd.read_parquet(os.path.join(directory, "trials.parquet"))
    difficulty = {w: rng.normal(0, 1, rows) for w in trials.workload.unique()}
    labels = np.zeros(rows, dtype=np.int64)
    out = []
    for i in trials.index[trials.stage == "seed"]:
        r = trials.loc[i]
        right = int(round(float(np.clip(r.test_accuracy_final, 0, 1)) * rows))
        order = np.argsort(difficulty[r.workload] + rng.normal(0, 0.7, rows))
        predicted = np.ones(rows, dtype=np.int64)
        predicted[order[:right]] = 0
        packed = pack(predicted, labels, 2)
        classes, correct = blobs(packed)
        trials.loc[i, "test_accuracy_final"] = packed["n_correct"] / rows
        out.append({"sweep_id": r.sweep_id, "spec_hash": r.spec_hash, "workload": r.workload, "strategy": r.strategy,
                    "trial_id": r.trial_id, "seed": int(r.seed), "population_id": r.trial_id,
                    "epoch": int(r.epochs_run), "n_rows": rows, "n_classes": 2, "width": 1,
                    "n_correct": packed["n_correct"], "predicted": classes, "correct": correct})
    write_table("trials", pa.Table.from_pandas(trials, preserve_index=False), directory)
    write_table("predictions", out, directory)
