"""Starting Ray and the run side of a Tune experiment, shared by sweeps (``sweeps.engine``) and
reproductions (``sweeps.reproduce``): the cluster connection, quiet output, trial names, storage,
retries, checkpoints kept and the progress callback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sweeps import plugins
from sweeps.progress import Progress
from sweeps.spec import Spec
from sweeps.storage import EXPERIMENT, SweepDir
from sweeps.trial_entry import LOG_DIR_VAR

__all__ = ["LOOPBACK", "MAX_FAILURES", "init_ray", "loopback_node", "quiet_tune", "run_config", "trial_dirname"]

LOOPBACK = "127.0.0.1"
"""The node address of the embedded Ray: it listens on this machine only."""
MAX_FAILURES = 2
"""Times Tune retries a crashed trial (from its last checkpoint) before it counts as errored."""


def init_ray(address: str | None, num_cpus: int | None, spec: Spec | None = None,
             sweep: SweepDir | None = None) -> bool:
    """Start an embedded local Ray (``address`` None), listening on loopback only (``loopback_node``),
    or connect to a cluster; True if we started it.

    The job's runtime_env carries the spec's plugins to every worker (``sweeps.plugins``). Inside a
    Ray Job sent by ``lrsweep submit`` the job's own runtime_env carries them already, and Ray
    refuses a driver runtime_env that sets the same fields again. The spec's text tasks travel as
    names (``LRSWEEP_TEXT_TASKS``).
    """
    import ray

    if ray.is_initialized():
        return False
    env = plugins.runtime_env(spec.plugins, [w.name for w in spec.workloads if w.text]) if spec else {}
    if sweep is not None and sweep.is_local:  # trials' library chatter (LOG_DIR_VAR) into the sweep dir
        env.setdefault("env_vars", {})[LOG_DIR_VAR] = sweep.path("logs")
    if os.environ.get(plugins.ENV_VAR):  # a job from `lrsweep submit`: its runtime_env ships the plugins
        env.pop("py_modules", None)
        env.get("env_vars", {}).pop(plugins.ENV_VAR, None)
    quiet = {"log_to_driver": bool(os.environ.get("LRSWEEP_TRIAL_LOGS")), "logging_level": "WARNING",
             "runtime_env": {k: v for k, v in env.items() if v} or None}
    if address is None:
        # "local" always starts a private Ray: never join a cluster someone started on this machine.
        with loopback_node():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK,
                     **quiet)
    else:
        ray.init(address=address, **quiet)
    return True


@contextmanager
def loopback_node() -> Iterator[None]:
    """While Ray starts, let its node address be loopback: Ray 2.60 binds its servers (GCS, raylet,
    workers' and driver's gRPC, agents, autoscaler metrics) to the node address.

    Ray replaces a loopback ``_node_ip_address`` by the machine's routable address unless
    ``ray_constants.ENABLE_RAY_CLUSTER`` is false (its macOS / Windows default, env
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, read once at import), so the flag is off for the start
    only: a later ``--address`` connection in this process is unaffected.
    """
    import ray._private.ray_constants as ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def trial_dirname(trial) -> str:
    """Trial directories named by trial id: Tune's default name embeds the whole (long) config."""
    return trial.trial_id


def quiet_tune() -> None:
    """One line per finished trial is our progress output; keep Tune's own output out of the log."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0 fully
    # The snapshot after each trial checkpoint (see checkpoint_every) is wanted; Tune warns at each.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def run_config(sweep: SweepDir, planned: dict[str, dict[str, int]], out: Callable[[str], None]):
    """The experiment's RunConfig: its storage, retries, one kept checkpoint per trial, and the
    progress callback for ``planned[stage][pair]`` trials."""
    from ray import tune

    return tune.RunConfig(
        name=EXPERIMENT,
        storage_path=sweep.root,
        failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[Progress(planned, sweep, out)],
        verbose=0,
    )
