"""The order trials start in, and early stopping applied to every pair alike, each pair's trials
compared only with each other.

``LiveFIFOScheduler`` starts trials in the order the searcher made them, looking at the live trials
only: Tune's ``FIFOScheduler`` scans every trial of the experiment, finished ones included, each
time the controller looks for one to start, a cost per step that grows with the trials done
(15% of the driver's time 2,800 trials into a sweep of tiny trials; BENCHMARKS.md, "Driver scale").

A single ASHA over the whole experiment would stop one strategy's trials because another
strategy's trials did better; that is not an equal budget. ``PerPairScheduler`` keeps one copy of
the same rule per (workload, strategy) pair and routes each tune trial to its pair's copy. Seed
runs share the experiment but are never stopped early: they always train all their epochs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler

from sweeps.spec import EarlyStopping
from vocab.contracts import TUNE

RULES: dict[str, Callable[[EarlyStopping, int], TrialScheduler]] = {
    "asha": lambda es, epochs: AsyncHyperBandScheduler(
        time_attr="training_iteration", metric=es.metric, mode="max", max_t=epochs,
        grace_period=es.grace_epochs, reduction_factor=es.reduction_factor),
    "median": lambda es, epochs: MedianStoppingRule(
        time_attr="training_iteration", metric=es.metric, mode="max", grace_period=es.grace_epochs,
        min_samples_required=3),
}
"""Rule name -> factory of one pair's scheduler, given the rule and the pair's epochs."""


class LiveFIFOScheduler(FIFOScheduler):
    """Tune's FIFO order (the first pending trial added, else the first paused one), chosen among
    the live trials (``get_live_trials``: not finished, not errored) instead of all of them."""

    def __init__(self) -> None:
        super().__init__()
        self._added: dict[Trial, int] = {}  # live trial -> the order it was added in
        self._next = itertools.count()

    def on_trial_add(self, tune_controller, trial) -> None:
        self._added.setdefault(trial, next(self._next))

    def _forget(self, trial) -> None:
        self._added.pop(trial, None)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._forget(trial)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._forget(trial)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._forget(trial)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        live = tune_controller.get_live_trials()
        for status in (Trial.PENDING, Trial.PAUSED):
            waiting = [t for t in live if t.status == status]
            if waiting:
                return min(waiting, key=lambda t: self._added.get(t, -1))
        return None


class PerPairScheduler(LiveFIFOScheduler):
    """FIFO trial order; stop/continue decisions by the trial's own pair's copy of the rule."""

    def __init__(self, rule: EarlyStopping, epochs_by_pair: dict[str, int]) -> None:
        super().__init__()
        self.rule = rule
        self.per_pair = {key: RULES[rule.rule](rule, epochs) for key, epochs in epochs_by_pair.items()}
        self.no_stopping = FIFOScheduler()

    def _rule(self, trial) -> TrialScheduler:
        """The trial's pair's copy of the rule; seed runs are never stopped early."""
        if trial.config["run"]["stage"] != TUNE:
            return self.no_stopping
        return self.per_pair[trial.config["sweep"]["pair"]]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # each pair's rule has its metric and mode already

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        self._rule(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial) -> None:
        super().on_trial_error(tune_controller, trial)
        self._rule(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        return self._rule(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        super().on_trial_complete(tune_controller, trial, result)
        self._rule(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        super().on_trial_remove(tune_controller, trial)
        self._rule(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"per-pair {self.rule.rule} early stopping over {len(self.per_pair)} pairs"
