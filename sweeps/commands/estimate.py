"""``lrsweep plan SPEC``: the runs a spec will train and an estimate of its wall time, before paying for it.

The model: a sweep's Tune trials (a population of m runs is one trial) share ``slots`` (the CPUs or
GPUs over what one trial asks for); one trial of strategy s takes ``start + epochs * m * c_s`` seconds,
where ``c_s`` is s's seconds per run-epoch in a population of that size. ``c_s`` and ``start`` come from
a short calibration on this machine (two epochs of a population of every strategy, no Ray), or, with
``--from DIR``, from the wall seconds an earlier sweep recorded. Ray's own start is a constant
(``RAY_START_S``, measured on the 2-core development machine). Trials do not pack perfectly onto
slots, so the figure is an estimate, checked against measured sweeps in BENCHMARKS.md.

For the selection design the number of seed runs depends on the data: the plan prints the first
stage (the least), every pair up to its cap (the most), and with ``--from DIR`` the expected number
by simulating Kim & Nelson's procedure with that sweep's per-seed means and spreads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sweeps.spec import Spec, population_size
from sweeps.spec.model import MAX_EVAL_SEEDS

__all__ = ["RAY_START_S", "Estimate", "calibrate", "describe", "estimate", "from_sweep", "slots_of"]

RAY_START_S = 12.0
"""Seconds from `lrsweep run` to the first trial on the embedded Ray (measured: 10-14 s on 2 cores)."""


@dataclass(frozen=True)
class Cost:
    """One strategy's cost on one workload: seconds per run-epoch in a population, and per trial start."""

    per_run_epoch: float
    start: float


def calibrate(spec: Spec, out: Callable[[str], None]) -> dict[tuple[str, str], Cost]:
    """Time two epochs of a population of every (workload, strategy) pair on this machine, no Ray: the
    second epoch's wall (training and evaluation) is the epoch's cost, the rest before it the start."""
    import torch

    from trainables.population import run_population

    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    costs = {}
    for w, s in spec.pairs():
        m = min(population_size(spec, w), spec.budget.trials)
        configs = [{"workload": w.name, "workload_options": w.options_dict, "strategy": s, "seed": i, "epochs": 2,
                    "stage": "seed", "data_dir": spec.data_dir} for i in range(m)]
        ends = [time.perf_counter()]
        run_population(configs, on_epoch=lambda metrics, progress, ends=ends: ends.append(time.perf_counter()))
        epoch = ends[2] - ends[1]
        costs[(w.name, s)] = Cost(epoch / m, max(0.0, ends[1] - ends[0] - epoch))
        out(f"  calibrated {w.name}/{s}: {epoch / m:.3f} s per run-epoch, {costs[(w.name, s)].start:.2f} s to start")
    return costs


def from_sweep(directory: str) -> tuple[dict[tuple[str, str], Cost], dict[str, dict[str, list[float]]]]:
    """Costs from an earlier sweep's trials table (seconds per run-epoch, start taken as 1 s), and each
    workload's per-seed test accuracies in percent (a pilot for the selection design)."""
    from lrresults.store import read_table

    trials = read_table("trials", directory).to_pandas()
    costs = {}
    for (w, s), g in trials.groupby(["workload", "strategy"]):
        epochs = g["epochs_run"].clip(lower=1).sum()
        costs[(w, s)] = Cost(float(g["wall_seconds"].sum() / epochs), 1.0)
    pilot: dict[str, dict[str, list[float]]] = {}
    seeds = trials[(trials["stage"] == "seed") & trials["test_accuracy_final"].notna()].sort_values("seed")
    for (w, s), g in seeds.groupby(["workload", "strategy"]):
        pilot.setdefault(w, {})[s] = list(100.0 * g["test_accuracy_final"])
    return costs, pilot


def study_pilot(directory: str) -> dict[str, dict[str, dict[int, list[float]]]]:
    """An earlier sweep's seed runs as workload -> strategy -> study -> test accuracies (pp), in seed order:
    the pilot for what a study-level guarantee would cost (`study_guarantee_lines`)."""
    from lrresults.store import read_table
    from reports.tables import study_seed_scores

    trials = read_table("trials", directory).to_pandas()
    runs = trials[trials["stage"] == "seed"]
    return {w: study_seed_scores(g) for w, g in runs.groupby("workload")}


STUDY_CAP = 1000
"""Studies per strategy at which `study_guarantee_lines` stops a simulated KN (its cost is then 'more')."""


def study_guarantee_lines(spec: Spec, pilot: dict | None) -> list[str]:
    """What a guarantee over tuning studies (KN with the study as the replicate, docs/SELECTION.md) would
    cost for this spec's zone, from a pilot with 2+ studies (``study_pilot``); a one-study spec: none."""
    from lrstats.selection import SelectionSettings

    b, e = spec.budget, spec.evaluation
    if b.studies == 1:
        return []
    seeds = e.first_stage
    settings = SelectionSettings(e.indifference, e.confidence, b.studies, STUDY_CAP, 1)
    head = (f"a selection over studies (KN, the best chosen with {e.confidence:.0%} if it leads by >= "
            f"{e.indifference:g} pp over tuning and seeds, first stage the {b.studies} studies)")
    if b.adaptive_studies:  # the spec's own selection over studies, with its cap
        settings, z = b.study_selection.settings(), b.study_selection
        head = (f"this spec's selection over studies (KN, {z.confidence:.0%} if the best leads by >= "
                f"{z.indifference:g} pp over tuning and seeds, {z.first_studies} to {z.max_studies} studies each)")
    if not pilot:
        return [f"{head} would cost what the tuning's variance makes it: pass --from DIR, a sweep with 2+ studies "
                "of these pairs, to see it estimated (this spec's verdict is the subset that could be the best)"]
    from lrstats.studies import pilot_study_cost

    lines = []
    for w in spec.workloads:
        strategies = [s for ww, s in spec.pairs() if ww.name == w.name]
        found = pilot.get(w.name, {})
        usable = {s: found[s] for s in strategies if len(found.get(s, {})) >= 2}
        if len(usable) < 2:
            lines.append(f"{w.name}: {head}: the pilot has no 2+ studies of these strategies")
            continue
        try:
            cost = pilot_study_cost(usable, settings, seeds)
        except ValueError as err:
            lines.append(f"{w.name}: {head}: {err}")
            continue
        c = cost.studies
        capped = (f"; {c.capped_rate:.0%} of simulated sweeps reached {settings.max_seeds} studies"
                  if c.capped_rate else "")
        lines.append(f"{w.name}: {head} would take about {c.expected:,.0f} studies over the {len(usable)} strategies "
                     f"(95th percentile {c.q95:,.0f}; h^2 = {cost.h2:.1f}), i.e. about {c.expected * b.trials:,.0f} "
                     f"tune runs and {cost.seed_runs:,.0f} seed runs, against this spec's "
                     f"{b.studies * len(usable)} studies{capped} (simulated with the pilot's means, tuning and seed "
                     "SDs as the truth)")
    return lines


@dataclass(frozen=True)
class Estimate:
    """What a spec trains and how long it may take."""

    tune_runs: int
    seed_runs: tuple[int, int, float | None]  # least, most (None-free: a cap or a bound), expected (None: unknown)
    seconds: tuple[float, float, float | None]  # the same three, as wall time
    slots: int
    lines: tuple[str, ...]


def _trials(runs: int, m: int) -> list[int]:
    """The sizes of the Tune trials that train ``runs`` runs in populations of ``m``."""
    return [min(m, runs - start) for start in range(0, runs, m)]


def estimate(spec: Spec, costs: dict[tuple[str, str], Cost], slots: int,
             pilot: dict[str, dict[str, list[float]]] | None = None,
             studies_pilot: dict | None = None) -> Estimate:
    """The plan of ``spec`` on ``slots`` parallel trials with these ``costs`` (``calibrate`` or ``from_sweep``);
    ``pilot`` per-seed scores (``from_sweep``), ``studies_pilot`` per-study ones (``study_pilot``)."""
    if spec.budget.adaptive_studies:
        return _estimate_studies(spec, costs, slots, studies_pilot)
    e = spec.evaluation
    work = [0.0, 0.0, 0.0]  # trial-seconds: tune + least seeds, most seeds, expected seeds
    tune_runs, seeds = 0, [0, 0, 0.0]
    expected_known = True
    lines = []
    for w in spec.workloads:
        m, strategies, per_seed_run, own = _workload_costs(spec, costs, w)
        for s in strategies:
            c = own[s]
            # A pair's studies train together: its S x T tune runs fill populations of m.
            tune = sum(c.start + w.epochs * size * c.per_run_epoch for size in _trials(spec.budget.total_trials, m))
            work = [x + tune for x in work]
            tune_runs += spec.budget.total_trials
        least = e.first_stage * spec.budget.studies
        most = e.most_seeds * spec.budget.studies if e.most_seeds else MAX_EVAL_SEEDS  # no cap: the spec's bound
        expected = float(least) * len(strategies) if not e.adaptive else None
        if e.adaptive and pilot and set(strategies) <= set(pilot.get(w.name, {})):
            expected = _expected_selection(e, {s: pilot[w.name][s] for s in strategies})
        if expected is None:
            expected_known = False
        mean_run = sum(per_seed_run.values()) / len(per_seed_run)
        seeds[0] += least * len(strategies)
        seeds[1] += most * len(strategies)
        work[0] += least * sum(per_seed_run.values())
        work[1] += most * sum(per_seed_run.values())
        if expected is not None:
            seeds[2] += expected
            work[2] += expected * mean_run
        studies = f"{spec.budget.studies} studies x " if spec.budget.studies > 1 else ""
        lines.append(f"{w.name}: {len(strategies)} strategies x {studies}{spec.budget.trials} tune trials of "
                     f"{w.epochs} epochs in populations of {m}; seed runs "
                     + (f"{least} each" if not e.adaptive else
                        f"{least}-{most} each" + (f", about {expected:.0f} in all expected from the pilot"
                                                  if expected is not None else "")))
    wall = [RAY_START_S + x / slots for x in work]
    return Estimate(tune_runs, (int(seeds[0]), int(seeds[1]), seeds[2] if expected_known else None),
                    (wall[0], wall[1], wall[2] if expected_known else None), slots, tuple(lines))


def _estimate_studies(spec: Spec, costs: dict[tuple[str, str], Cost], slots: int,
                      pilot: dict | None) -> Estimate:
    """``estimate`` for the selection over studies: the unit of cost is a study (its T tune runs and its N seed
    runs, in populations); least = the first stage, most = every pair to the cap, expected = KN over studies
    simulated with a pilot's means, tuning and seed SDs (``lrstats.studies.pilot_study_cost``)."""
    from lrstats.studies import pilot_study_cost

    b, z, n = spec.budget, spec.budget.study_selection, int(spec.evaluation.seeds)
    work, studies, lines, known = [0.0, 0.0, 0.0], [0, 0, 0.0], [], True
    for w in spec.workloads:
        m, strategies, per_run, _ = _workload_costs(spec, costs, w)
        per_study = {s: (b.trials + n) * x for s, x in per_run.items()}
        found = (pilot or {}).get(w.name, {})
        expected = None
        if all(len(found.get(s, {})) >= 2 for s in strategies) and len(strategies) > 1:
            try:
                expected = pilot_study_cost({s: found[s] for s in strategies}, z.settings(), n).studies.expected
            except ValueError:  # a pilot whose studies have a single seed each: no tuning SD to simulate
                expected = None
        known = known and expected is not None
        mean = sum(per_study.values()) / len(per_study)
        for i, count in enumerate((z.first_studies * len(strategies), z.max_studies * len(strategies), expected)):
            if count is not None:
                studies[i] += count
                work[i] += count * mean
        lines.append(f"{w.name}: {len(strategies)} strategies; each study {b.trials} tune trials and {n} seed runs "
                     f"of {w.epochs} epochs in populations of {m}; {z.first_studies}-{z.max_studies} studies per "
                     "strategy" + (f", about {expected:.0f} in all expected from the pilot" if expected is not None
                                   else ""))
    wall = [RAY_START_S + x / slots for x in work]
    tune = z.first_studies * b.trials * len(spec.pairs())
    lines.append(f"studies: {studies[0]} to {studies[1]} in all" + (f", about {studies[2]:.0f} expected"
                                                                    if known else ""))
    return Estimate(tune, (studies[0] * n, studies[1] * n, studies[2] * n if known else None),
                    (wall[0], wall[1], wall[2] if known else None), slots, tuple(lines))


def _workload_costs(spec: Spec, costs: dict[tuple[str, str], Cost], w) -> tuple[int, list[str], dict, dict]:
    """One workload's population size, strategies, seconds per run in a population (its share of the start
    plus its epochs) and each strategy's ``Cost``."""
    m = population_size(spec, w)
    strategies = [s for ww, s in spec.pairs() if ww.name == w.name]
    own = {s: costs.get((w.name, s)) or _mean_cost(costs, w.name) for s in strategies}
    return m, strategies, {s: c.start / m + w.epochs * c.per_run_epoch for s, c in own.items()}, own


def _mean_cost(costs: dict[tuple[str, str], Cost], workload: str) -> Cost:
    """A strategy the earlier sweep did not run costs what that workload's strategies cost on average."""
    mine = [c for (w, _), c in costs.items() if w == workload]
    if not mine:
        raise KeyError(f"no cost for workload {workload!r}: the --from sweep did not run it")
    return Cost(sum(c.per_run_epoch for c in mine) / len(mine), sum(c.start for c in mine) / len(mine))


def _expected_selection(e, scores: dict[str, list[float]]) -> float:
    """Expected total seed runs of the workload under KN, were the pilot's means and spreads the truth."""
    from lrstats.selection import expected_seeds, pilot_covariance

    _, means, cov, _ = pilot_covariance(scores)
    return expected_seeds(means, cov, e.settings(), reps=400).expected


def describe(spec: Spec, est: Estimate, source: str) -> list[str]:
    """The plan in words."""
    def mins(s: float) -> str:
        return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"

    least, most, expected = est.seed_runs
    stage = spec.evaluation.describe() if spec.budget.studies == 1 else \
        f"{spec.evaluation.seeds} seed runs of each of the {spec.budget.studies} studies' best"
    if spec.budget.adaptive_studies:
        stage = f"{spec.evaluation.seeds} seed runs of each study's best; {spec.budget.study_selection.describe()}"
    out = [f"sweep {spec.name}: {len(spec.pairs())} pairs; seed stage: {stage}", *est.lines,
           f"runs: {est.tune_runs}{'+' if spec.budget.adaptive_studies else ''} tune runs, then "
           + (f"{least} seed runs" if least == most else
                                                       f"{least} to {most} seed runs")
           + (f" (about {expected:.0f} expected)" if expected is not None and least != most else ""),
           f"wall time on {est.slots} parallel trial slot(s), {source}: "
           + (mins(est.seconds[0]) if least == most else
              f"{mins(est.seconds[0])} (first stage only) to {mins(est.seconds[1])} (every pair to its cap)"
              + (f", about {mins(est.seconds[2])} expected" if est.seconds[2] is not None else
                 "; pass --from DIR (an earlier sweep of these pairs) for the expected figure"))]
    return out


def slots_of(spec: Spec, num_cpus: int | None, gpus: float | None) -> int:
    """How many trials run at once: the CPUs (or GPUs) over what one trial asks for."""
    import os

    if gpus and spec.resources.gpu:
        return max(1, math.floor(gpus / spec.resources.gpu))
    return max(1, math.floor((num_cpus or os.cpu_count() or 1) / spec.resources.cpu))
