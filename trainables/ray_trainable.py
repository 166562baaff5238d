"""The Ray Tune function trainable: a trial (one run or a population) reporting each epoch via ``ray.tune.report``.

Each epoch's dict goes out with a checkpoint every ``checkpoint_every`` epochs (default 1, and
always on the final epoch; 0 turns checkpoints off): a directory holding ``trial.pt``, a
``torch.save`` of the trial's snapshot (model, stepper, RNG states, epoch, history). A restarted
trial (Tune's fault tolerance, or ``Tuner.restore``) finds it through ``ray.tune.get_checkpoint()``
and goes on from the epoch after it, ending with the metrics of an uninterrupted run.

With ``checkpoint_final_state: false`` the final checkpoint is a finished marker instead: the
history and ``finished: True``, a few KB where the full state of a fine-tuned DistilBERT is about
0.8 GB. A trial restored from it returns at once (its epochs were all reported), so a resumed
sweep never trains a finished trial again, and a sweep keeps no weights it does not need.

A population trial (``vocab.members``: ``{"members": [config, ...]}``) reports one dict per
epoch holding every member's metrics (``members``, keyed by index; None for a member frozen earlier) and checkpoints
the population's snapshot on the same cadence; each member's history is its solo run's.

Resources: the trial trains on CUDA when Ray gave it a GPU, else on the CPU with as many torch
threads as CPUs it holds (``tune.with_resources(trainable, {"cpu": n, "gpu": g})``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from trainables.population import run_population
from trainables.trial import Progress, TrialConfig
from vocab import members

CHECKPOINT_FILE = "trial.pt"


def _held_resources(config: Mapping[str, Any]) -> dict:
    """``device`` and ``cpus`` from what Ray assigned this trial, unless the config sets them."""
    import ray

    held = ray.get_runtime_context().get_assigned_resources()
    resolved = {}
    if config.get("device", "auto") == "auto":
        resolved["device"] = "cuda" if held.get("GPU", 0) > 0 and torch.cuda.is_available() else "cpu"
    if config.get("cpus") is None:
        resolved["cpus"] = max(1, int(held.get("CPU", 1)))
    return resolved


def load_checkpoint(directory: str | Path) -> dict:
    """The snapshot saved in a checkpoint directory written by ``trainable``."""
    # Not weights_only: the snapshot holds the stepper's state, whose types the strategies own,
    # and the file was written by this trial into its own storage.
    return torch.load(Path(directory) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)


def _restored():
    """The snapshot of the checkpoint Tune restored this trial from, if any."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return load_checkpoint(directory)


def _finished_marker(state: dict) -> dict:
    """The final checkpoint without weights: epoch and histories (a population's, one per member)."""
    return {"finished": True, "epoch": state["epoch"], "histories": _histories(state)}


def _histories(state: dict) -> list[list[dict]]:
    """Each run's history in a snapshot or a finished marker, one per member (a trial's one; ``history``:
    a checkpoint of the solo loop lrsweep had before)."""
    if "histories" in state:
        return state["histories"]
    if "members" in state:
        return [m["history"] for m in state["members"]]
    return [state["history"]]


def _replay(state: dict, population: bool) -> None:
    """Report the epochs a restored snapshot holds again, so whoever keeps the trial's results (the
    sweep's driver) has all of them, whichever driver saw them first."""
    from ray import tune

    histories = _histories(state)
    for epoch in range(1, state["epoch"] + 1):
        metrics = [dict(h[epoch - 1]) if len(h) >= epoch else None for h in histories]
        tune.report(members.report(epoch, metrics) if population else metrics[0])


def _reporter(cfg: TrialConfig, store=None) -> Callable[[dict, Progress], None]:
    """``on_epoch`` for Tune: report the epoch's dict, with a checkpoint every ``checkpoint_every``
    epochs and at the last one (a finished marker instead when ``checkpoint_final_state`` is off).
    ``store`` (``save(state)``) gets each checkpoint first, written whole."""
    from ray import tune

    every = cfg.checkpoint_every

    def report(metrics: dict, progress: Progress) -> None:
        if every and (progress.epoch % every == 0 or progress.final):
            state = progress.snapshot()
            if progress.final and not cfg.checkpoint_final_state:
                state = _finished_marker(state)
            if store is not None:
                store.save(_finished_marker(state) if progress.final and not state.get("finished") else state)
            with tempfile.TemporaryDirectory() as directory:
                torch.save(state, Path(directory) / CHECKPOINT_FILE)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)

    return report


def trainable(config: dict, store=None) -> None:
    """Ray Tune function trainable for one trial (config keys: see ``trainables.run_trial``), or for
    a population (``{"members": [trial config, ...]}``, see ``trainables.population``), which reports
    ``{"epoch", "population": K, "members": {"i": metrics or None}}`` each epoch (None: member i froze
    earlier, diverged).

    ``store`` (``load()``, ``save(state)``): a durable home for the trial's checkpoints outside Tune
    (``sweeps.record.durable.CheckpointStore``); the newer of its snapshot and Tune's is resumed, and the
    resumed epochs are reported again first."""
    runs = members.run_configs(config)
    population = len(runs) > 1
    held = _held_resources(runs[0])
    # Copies: Tune's config is shared, never mutated.
    configs = [{**c, **held} for c in runs]
    resume = _restored()
    saved = store.load() if store is not None else None
    if saved is not None and (resume is None or saved["epoch"] >= resume["epoch"]):
        resume = saved
    if resume is not None:
        _replay(resume, population)
        if resume.get("finished"):
            return  # restored after its final report: nothing left to train
    report = _reporter(TrialConfig.from_dict(configs[0]), store)

    def on_epoch(metrics: list[dict | None], progress: Progress) -> None:
        report(members.report(progress.epoch, metrics) if population else metrics[0], progress)

    run_population(configs, on_epoch=on_epoch, resume=resume)
