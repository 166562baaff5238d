"""The function Ray Tune runs for every trial of a sweep.

It lives in a module that imports nothing heavy, so a new trial actor starts in about a second
and pays for torch and the strategies inside its first trial. That matters to Ray Tune's actor
reuse: a pending trial takes a finished trial's cached actor and drops its own actor if that one
has not started yet, so an actor that started slower than a short trial runs would never be added
and the sweep would run one trial at a time.
"""


def run_trial_config(config: dict) -> None:
    """``trainables.trainable`` on ``config["run"]``; ``config["sweep"]`` is the sweep's own
    bookkeeping (pair, trial index, selection)."""
    from sweeps.plugins import import_from_env
    from trainables import trainable

    import_from_env()  # the sweep's plugins register their workloads and strategies here too
    trainable(config["run"])
