"""A sweep's progress while it runs and after: one line per finished trial, ``progress.json``, ``lrsweep status``.

``Progress`` (a Tune callback on the driver) writes ``progress.json``; ``status`` reads it back with
the spec and the budget table, so a sweep's state can be shown without Ray.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ray.tune import Callback

from sweeps.contracts import OK, SEED, STAGE_METRIC, TUNE, Pair
from sweeps.results import describe_error
from sweeps.storage import SweepDir, load_sweep_spec

__all__ = ["Progress", "status"]


def say(line: str) -> None:
    """The default ``out``: a progress line to stdout, flushed so a job's log shows it at once."""
    print(line, flush=True)


def _trial_error(trial) -> BaseException | None:
    """The exception that just failed ``trial``, from the driver-local file Tune has just written
    (``Trial.get_pickled_error`` reads the storage copy, which is synced later)."""
    from ray import cloudpickle

    path = trial.pickled_error_file
    try:
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    except Exception:  # no such file, or not unpicklable here: the line goes without the reason
        return None


class Progress(Callback):
    """A Tune callback printing one line per finished trial and keeping ``progress.json`` current.

    ``planned[stage][pair]`` is the number of trials the pair gets in that stage. Its counts travel
    in the experiment snapshot (``get_state``), so a resumed sweep goes on counting.
    """

    def __init__(self, planned: dict[str, dict[str, int]], sweep: SweepDir, out: Callable[[str], None]) -> None:
        self.planned, self.sweep, self.out = planned, sweep, out
        self.done = {stage: dict.fromkeys(pairs, 0) for stage, pairs in planned.items()}
        self.errored = {stage: dict.fromkeys(pairs, 0) for stage, pairs in planned.items()}
        self.best: dict[str, dict[str, float]] = {stage: {} for stage in planned}
        self.started = time.time()

    def _record(self, trial, error: bool) -> None:
        meta, stage = trial.config["sweep"], trial.config["run"]["stage"]
        pair, key = meta["pair"], STAGE_METRIC[stage]
        done, best = self.done[stage], self.best[stage]
        last = trial.last_result or {}
        score = last.get(key)
        if error:
            self.errored[stage][pair] += 1
            cause = _trial_error(trial)
            what = "ERROR" + (f" {describe_error(cause)[0][:300]}" if cause is not None else "")
        else:
            done[pair] += 1
            if isinstance(score, float):
                best[pair] = max(score, best.get(pair, float("-inf")))
            what = f"{last.get('status', OK)} {key}={score:.4f}" if isinstance(score, float) else "no score"
        total = sum(done.values()) + sum(self.errored[stage].values())
        self.out(f"[{stage} {total}/{sum(self.planned[stage].values())}] {pair} #{meta['trial_index']} {what} "
                 f"(pair {done[pair] + self.errored[stage][pair]}/{self.planned[stage][pair]}, best "
                 f"{best.get(pair, float('nan')):.4f}) {time.time() - self.started:.0f}s")
        self._save()

    def _save(self) -> None:
        state = {stage: {k: {"planned": n, "done": self.done[stage][k], "errored": self.errored[stage][k],
                             "best": self.best[stage].get(k)} for k, n in pairs.items()}
                 for stage, pairs in self.planned.items()}
        state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.sweep.write_text("progress.json", json.dumps(state, indent=1))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._record(trial, error=False)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._record(trial, error=True)

    def get_state(self) -> dict:
        return {"done": self.done, "errored": self.errored, "best": self.best}

    def set_state(self, state: dict) -> None:
        self.done, self.errored, self.best = state["done"], state["errored"], state["best"]


def status(directory: str, out: Callable[[str], None] = say) -> int:
    """Print a sweep's progress per pair (from progress.json and the budget table); no Ray needed."""
    spec, sweep = load_sweep_spec(directory)
    progress = json.loads(sweep.read_text("progress.json") or "{}")
    out(f"sweep {spec.name} (spec hash {spec.hash}) at {sweep.root}; last update {progress.get('updated', '-')}")
    out(f"{'pair':40s} {'tune':>9s} {'best val':>9s} {'seeds':>7s} {'best test':>9s}")
    tune, seed = progress.get(TUNE, {}), progress.get(SEED, {})
    for w, s in spec.pairs():
        key = Pair(w.name, s).key
        t, sd = tune.get(key, {}), seed.get(key, {})
        best_t = "-" if t.get("best") is None else f"{t['best']:.4f}"
        best_s = "-" if sd.get("best") is None else f"{sd['best']:.4f}"
        out(f"{key:40s} {t.get('done', 0):>4d}/{spec.budget.trials:<4d} {best_t:>9s} "
            f"{sd.get('done', 0):>3d}/{spec.evaluation.seeds:<3d} {best_s:>9s}")
    from reports.store import exists, read_table

    if not exists("budget", sweep.root):
        out("state: running or interrupted (no results tables yet); `lrsweep resume DIR` continues it")
        return 0
    rows = read_table("budget", sweep.root).to_pylist()
    if all(r["complete"] for r in rows):
        out("state: complete")
    else:
        out("state: finished with an unequal budget (budget table: complete=False)")
    return 0
