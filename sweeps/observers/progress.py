"""A sweep's progress while it runs and after: one line per finished trial, ``progress.json``, ``lrsweep status``.

``Progress`` (a Tune callback on the driver) writes ``progress.json``; ``status`` reads it back with
the spec and the budget table, so a sweep's state can be shown without Ray.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ray.tune import Callback

from sweeps.record.results import describe_error
from sweeps.record.storage import StorageWatch, SweepDir, command, load_sweep_spec
from vocab.contracts import OK, SEED, STAGE_METRIC, STUDY_MARK, TUNE, Pair
from vocab.members import member_metrics, trial_members

__all__ = ["RUNNING", "Progress", "status", "trial_error"]

RUNNING = "running"
"""progress.json's list of the trials in flight: pair, stage, first and last run index, last epoch."""
LIVE_S = 2.0
"""progress.json is rewritten at most this often for running trials' epochs (always when one finishes)."""


def say(line: str) -> None:
    """The default ``out``: a progress line to stdout, flushed so a job's log shows it at once."""
    print(line, flush=True)


def trial_error(trial) -> BaseException | None:
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

    ``planned[stage][pair]`` is the number of runs the pair gets in that stage (a population trial
    counts as its members); with ``adaptive`` (the selection design) the seed stage's is its first
    stage, a least number, and the lines say so with a ``+``; with ``adaptive_studies`` (the selection
    over studies) both stages' are, and studies added later join ``planned`` at 0. ``finished``: the record's runs
    finished before this driver (a resume), counted from the start.
    """

    def __init__(self, planned: dict[str, dict[str, int]], sweep: SweepDir, out: Callable[[str], None],
                 finished=(), watch: StorageWatch | None = None, adaptive: bool = False,
                 adaptive_studies: bool = False) -> None:
        self.planned = {stage: dict(pairs) for stage, pairs in planned.items()}  # studies added later join it
        self.sweep, self.out, self.watch = sweep, out, watch
        self.adaptive, self.adaptive_studies = adaptive, adaptive_studies
        self.done = {stage: dict.fromkeys(pairs, 0) for stage, pairs in planned.items()}
        self.errored = {stage: dict.fromkeys(pairs, 0) for stage, pairs in planned.items()}
        self.best: dict[str, dict[str, float]] = {stage: {} for stage in planned}
        self.started = time.time()
        self.running: dict[str, dict] = {}  # Tune trial id -> its runs' last epoch, for `lrsweep status --watch`
        self.saved = 0.0
        for run in finished:
            self._count(run.config, run.history[-1] if run.history else None, run.error is not None)
        self.resumed_with = self._finished()  # runs finished before a resume: not part of this process's pace

    def _count(self, config, last_result, error: bool) -> tuple[list, list]:
        """Count a finished trial's runs, each under its own pair (a population of seed runs may hold several
        tuning studies of one pair); return its members and their final scores."""
        members = trial_members(config)
        stage = members[0][0]["stage"]
        key = STAGE_METRIC[stage]
        metrics = member_metrics(last_result, len(members))
        for (_, meta), m in zip(members, metrics, strict=True):
            pair = meta["pair"]
            if pair not in self.done[stage]:  # a study the selection over studies added: planned beyond the first stage
                self.planned[stage][pair] = self.done[stage][pair] = self.errored[stage][pair] = 0
            if error:
                self.errored[stage][pair] += 1
                continue
            self.done[stage][pair] += 1
            if m is not None and isinstance(m.get(key), float):
                self.best[stage][pair] = max(m[key], self.best[stage].get(pair, float("-inf")))
        return members, [m for m in metrics if m is not None]

    def _record(self, trial, error: bool) -> None:
        self.running.pop(trial.trial_id, None)
        if self.watch is not None and self.watch.fault is not None:  # the record writer has not recorded it
            run, meta = trial_members(trial.config)[0]
            self.out(f"[{run['stage']}] {meta['pair']} #{meta['trial_index']} not recorded: the storage failed "
                     "(it runs again on resume)")
            return
        members, finals = self._count(trial.config, trial.last_result, error)
        (run, meta), n = members[0], len(members)
        stage, pair = run["stage"], meta["pair"]
        key = STAGE_METRIC[stage]
        done, best = self.done[stage], self.best[stage]
        keys = list(dict.fromkeys(m["pair"] for _, m in members))  # several: one pair's studies, seed runs together
        if len(keys) > 1:
            pair = f"{pair.split(STUDY_MARK)[0]} (studies {', '.join(k.split(STUDY_MARK)[1] for k in keys)})"
        scores = [m[key] for m in finals if isinstance(m.get(key), float)]
        if error:
            cause = trial_error(trial)
            what = "ERROR" + (f" {describe_error(cause)[0][:300]}" if cause is not None else "")
        else:
            statuses = [m.get("status", OK) for m in finals] or [OK]
            status = ", ".join(f"{s} {statuses.count(s)}" for s in dict.fromkeys(statuses)) if n > 1 else statuses[0]
            # A population's line shows its best member's score, and says so.
            what = f"{status} {'best ' if n > 1 else ''}{key}={max(scores):.4f}" if scores else "no score"
        runs = f"#{meta['trial_index']}" if n == 1 else \
            f"#{meta['trial_index']}-{members[-1][1]['trial_index']} ({n} runs in one population)"
        total = sum(done.values()) + sum(self.errored[stage].values())
        # Contenders get seeds (or studies: tune and seed runs) beyond the first stage.
        more = "+" if (self.adaptive and stage == SEED) or self.adaptive_studies else ""
        pair_done = sum(done[k] + self.errored[stage][k] for k in keys)
        pair_best = max((best[k] for k in keys if k in best), default=float("nan"))
        self.out(f"[{stage} {total}/{sum(self.planned[stage].values())}{more}] {pair} {runs} {what} "
                 f"(pair {pair_done}/{sum(self.planned[stage][k] for k in keys)}{more}, best "
                 f"{pair_best:.4f}) {time.time() - self.started:.0f}s{self._eta()}")
        self._save()

    def _finished(self) -> int:
        return sum(sum(d.values()) for by_stage in (self.done, self.errored) for d in by_stage.values())

    def _eta(self) -> str:
        """The time left at this process's pace so far (finished runs per second, both stages); with the
        selection design, to the end of its first stage, and said so."""
        now = self._finished() - self.resumed_with
        left = sum(max(0, n - self.done[stage][pair] - self.errored[stage][pair])
                   for stage, pairs in self.planned.items() for pair, n in pairs.items())
        if now <= 0 or left <= 0:
            return ""
        # Under the selection design only the first stage's runs are known; the ETA says it covers those.
        first = "first stage " if self.adaptive or self.adaptive_studies else ""
        return f", {first}ETA ~{(time.time() - self.started) / now * left:.0f}s"

    def _save(self) -> None:
        state = {stage: {k: {"planned": n, "done": self.done[stage][k], "errored": self.errored[stage][k],
                             "best": self.best[stage].get(k)} for k, n in pairs.items()}
                 for stage, pairs in self.planned.items()}
        state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        state[RUNNING] = sorted(self.running.values(), key=lambda r: (r["pair"], r["stage"], r["first"]))
        self.saved = time.time()
        try:
            self.sweep.write_text("progress.json", json.dumps(state, indent=1))
        except OSError as err:
            if self.watch is None:
                raise
            self.watch.failed(err)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        """Keep the trial's last epoch for the live view; progress.json at most every ``LIVE_S`` seconds."""
        members = trial_members(trial.config)
        (run, meta), n = members[0], len(members)
        key = STAGE_METRIC[run["stage"]]
        scores = [m[key] for m in member_metrics(result, n) if m is not None and isinstance(m.get(key), float)]
        self.running[trial.trial_id] = {
            "pair": meta["pair"], "stage": run["stage"], "first": meta["trial_index"],
            "last": members[-1][1]["trial_index"], "epoch": result.get("epoch"), "epochs": run["epochs"],
            "metric": key, "best": max(scores) if scores else None}
        if time.time() - self.saved >= LIVE_S:
            self._save()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._record(trial, error=False)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._record(trial, error=True)


def status(directory: str, out: Callable[[str], None] = say) -> int:
    """Print a sweep's (or a reproduction's) progress per pair (from progress.json, the trials and the
    budget table); no Ray needed.

    Accuracies are in percent, as in the report: the best validation accuracy of the tuning trials so far,
    and the seed runs' final test accuracy as their mean with its 95% t interval (from the trials table,
    once written), never the maximum over seeds, which would favour the pair with the luckiest seed.
    """
    from lrresults.store import exists, normalise, read_table
    from lrstats.stats import t_interval
    from lrstats.studies import group_scores
    from reports.formatting import mean_ci
    from vocab.contracts import FINISHED

    sweep = SweepDir(normalise(directory))
    if sweep.read_text("spec.yaml") is None and sweep.read_text("reproduce.yaml") is not None:
        import yaml

        from sweeps.spec.reproduction import load_recorded

        spec = load_recorded(yaml.safe_load(sweep.read_text("reproduce.yaml")), sweep.path("reproduce.yaml"))
        spec = spec.as_sweep_spec()
    else:
        spec, sweep = load_sweep_spec(directory)
    progress = json.loads(sweep.read_text("progress.json") or "{}")
    runs = []
    if exists("trials", sweep.location):
        runs = [r for r in read_table("trials", sweep.location).to_pylist()
                if r["stage"] == SEED and r["status"] in FINISHED and r["test_accuracy_final"] is not None]
    # The report's replicates: seed runs, or with several studies each study's mean over its seeds.
    keys, accuracies = [Pair(r["workload"], r["strategy"]).key for r in runs], [r["test_accuracy_final"] for r in runs]
    if spec.budget.studies == 1:
        seed_runs: dict[str, list[float]] = {}
        for key, accuracy in zip(keys, accuracies, strict=True):
            seed_runs.setdefault(key, []).append(accuracy)
    else:
        by_study = group_scores(keys, [r.get("study") or 0 for r in runs], accuracies)
        seed_runs = {key: list(by.values()) for key, by in by_study.items()}
    unit = "seeds" if spec.budget.studies == 1 else "studies"
    out(f"sweep {spec.name} (spec hash {spec.hash}) at {sweep.root}; last update {progress.get('updated', '-')}")
    out(f"{'pair':40s} {'tune':>9s} {'best val %':>10s} {'seeds':>7s}  test % (mean [95% t interval] over {unit})")
    tune, seed = progress.get(TUNE, {}), progress.get(SEED, {})
    # The selection design gives every pair its first stage, and more only to those still in contention.
    # The selection over studies gives every pair its first-stage studies, and more only to contenders.
    studies, more = spec.budget.studies, "+" if spec.budget.adaptive_studies else ""
    seeds_planned = f"{spec.evaluation.first_stage}+" if spec.evaluation.adaptive else \
        f"{int(spec.evaluation.seeds) * studies}{more}"
    trials_planned = f"{spec.budget.total_trials}{more}"
    for w, s in spec.pairs():
        pair = Pair(w.name, s)
        keys = [pair.study_key(j, studies) for j in range(spec.budget.most_studies)]  # counted together
        done = sum(tune.get(k, {}).get("done", 0) for k in keys)
        bests = [tune[k]["best"] for k in keys if tune.get(k, {}).get("best") is not None]
        best_t = f"{100 * max(bests):.1f}" if bests else "-"
        seeds_done = sum(seed.get(k, {}).get("done", 0) for k in keys)
        key = pair.key
        values = seed_runs.get(key, [])
        test = mean_ci(sum(values) / len(values), *t_interval(values), missing="-") if values else "-"
        out(f"{key:40s} {done:>4d}/{trials_planned:<4s} {best_t:>10s} "
            f"{seeds_done:>3d}/{seeds_planned:<3s}  {test}")
    if not seed_runs and seed:
        out("(test accuracy appears once the results tables are written, at the end of the sweep)")
    for w in spec.workloads if spec.budget.adaptive_studies else ():  # where KN over studies stands, and why
        decided = json.loads(sweep.read_text(f"record/selection/{w.name}.json") or "{}").get("decision")
        out(f"selection over studies, {w.name}: {decided['reason'] if decided else 'first stage under way'}")
    if not exists("budget", sweep.location):
        out(f"state: running or interrupted (no results tables yet); `{command('resume', sweep.root)}` continues it")
        return 0
    rows = read_table("budget", sweep.location).to_pylist()
    if all(r["complete"] for r in rows):
        out("state: complete")
    else:
        out("state: finished with an unequal budget (budget table: complete=False)")
    return 0
