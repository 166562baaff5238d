"""Workloads and the trial loop: one (workload, strategy, hyperparameters, seed) run per call.

- ``run_trial(config) -> list[dict]``: train without Ray, one metrics dict per epoch.
- ``trainable(config)``: the same as a Ray Tune function trainable (reports and checkpoints).
- ``get_workload`` / ``list_workloads`` / ``register_workload``: the workload registry.
- ``resolve_hparams``: the full hyperparameters a trial would train with.

Importing this package registers the built-in workloads (synthetic, cifar10, rte, trec6, imdb);
torchvision, transformers, datasets and Ray are imported only when a workload or the trainable
needs them.
"""

from trainables import workloads as _workloads  # noqa: F401  (registers the built-in workloads)
from trainables.ray_trainable import trainable
from trainables.trial import LOSS_CAP, Progress, TrialConfig, resolve_hparams, run_trial
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
    "resolve_hparams",
    "run_trial",
    "trainable",
]
