"""The function Ray Tune runs for every trial of a sweep.

It lives in a module that imports nothing heavy, so a new trial actor starts in about a second
and pays for torch and the strategies inside its first trial. That matters to Ray Tune's actor
reuse: a pending trial takes a finished trial's cached actor and drops its own actor if that one
has not started yet, so an actor that started slower than a short trial runs would never be added
and the sweep would run one trial at a time.
"""


LOG_DIR_VAR = "LRSWEEP_LOG_DIR"
"""Where trials write their logs, ``<dir>/<trial id>.log`` (the sweep's ``logs/`` on local storage;
set through the job's runtime_env). Unset: the trial's directory in Ray's session on its node."""


def run_trial_config(config: dict) -> None:
    """``trainables.trainable`` on ``config["run"]``; ``config["sweep"]`` is the sweep's own
    bookkeeping (pair, trial index, selection). Library chatter goes to the trial's log file."""
    import os

    from ray import tune

    from sweeps.spec.plugins import import_from_env
    from trainables import trainable
    from trainables.logs import trial_log

    context = tune.get_context()
    log_dir = os.environ.get(LOG_DIR_VAR) or context.get_trial_dir()
    store = None
    if config["sweep"].get("record"):  # the sweep's durable record (sweeps.record.durable) keeps its checkpoints
        from sweeps.record.durable import CheckpointStore, Record
        from sweeps.record.storage import SweepDir

        root = config["sweep"]["record"]
        store = CheckpointStore(root, Record(SweepDir(root)).checkpoint_name(config))
    with trial_log(os.path.join(log_dir, f"{context.get_trial_id()}.log")):
        import_from_env()  # the sweep's plugins register their workloads and strategies here too
        trainable(config["run"], store)
