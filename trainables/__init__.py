"""Workloads and the trial loop: one (workload, strategy, hyperparameters, seed) run per call.

- ``run_trial(config) -> list[dict]``: train without Ray, one metrics dict per epoch.
- ``trainable(config)``: the same as a Ray Tune function trainable (reports and checkpoints).
- ``get_workload`` / ``list_workloads`` / ``register_workload``: the workload registry.

Importing this package registers the built-in workloads (synthetic, cifar10, rte, trec6, imdb) as
torch-free declarations: a spec is validated against them without torch. Torch, torchvision,
transformers, datasets and Ray are imported only when a trial runs (``run_trial``, ``trainable``
and the names below them are loaded on first use).
"""

import importlib

from trainables import workloads as _workloads  # noqa: F401  (registers the built-in workloads)
from trainables.workload import (
    Data,
    Option,
    Split,
    StageData,
    Workload,
    WorkloadError,
    get_workload,
    list_workloads,
    register_workload,
)

__all__ = [
    "LOSS_CAP",
    "Data",
    "Option",
    "Progress",
    "Split",
    "StageData",
    "TrialConfig",
    "Workload",
    "WorkloadError",
    "get_workload",
    "list_workloads",
    "register_workload",
    "run_trial",
    "trainable",
]

_TRAINING = {"LOSS_CAP": "trainables.trial", "Progress": "trainables.trial", "TrialConfig": "trainables.trial",
             "run_trial": "trainables.population", "trainable": "trainables.ray_trainable"}


def __getattr__(name: str):
    """The training names on first use: they import torch."""
    if name in _TRAINING:
        return getattr(importlib.import_module(_TRAINING[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
