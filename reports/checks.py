"""Warnings the report raises about its own protocol: what the budget, the search or the seeds could not show.

Pure functions over the results tables, each returning rows the report words; see
`reports.sections.warnings_section`. The searched bounds are the budget table's ``search_space``
(for results written before it, the ranges Optuna recorded in the sweep's ``optuna.journal``).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd

from lrresults.store import filesystem
from reports import edges
from reports.load import Results

#: Random start-up trials of each sampler before it models anything: Optuna 5.1's
#: ``TPESampler(n_startup_trials=10)`` default (lrsweep does not change it); random and QMC never model.
RANDOM_PHASE = {"tpe": 10}
#: A tune trial whose score ends within this many points (fraction) of chance has collapsed.
NEAR_CHANCE = 0.02


# ---- the searched bounds ----------------------------------------------------------------------

Bounds = dict[tuple[str, str], dict[str, dict]]
"""(workload, strategy) -> {hparam: {"low", "high", "scale"}}: each pair's searched ranges; scale is
log, linear or int."""


def search_bounds(res: Results) -> Bounds:
    """Each pair's searched ranges: the budget table's ``search_space`` (what the spec searched,
    overrides applied), and for pairs of results written before that column, the ranges Optuna
    recorded in the sweep's ``optuna.journal``. Pairs with neither are absent."""
    out: Bounds = {}
    if "search_space" in res.budget:
        for w, s, text in zip(res.budget["workload"], res.budget["strategy"], res.budget["search_space"],
                              strict=True):
            if isinstance(text, str) and text:
                out[(w, s)] = json.loads(text)
    missing = set(zip(res.budget["workload"], res.budget["strategy"], strict=True)) - set(out)
    if missing:
        journal = journal_bounds(res.sweep_dirs)
        out.update({pair: journal[pair] for pair in missing if pair in journal})
    return out


def journal_bounds(sweep_dirs: list[str]) -> Bounds:
    """The searched ranges Optuna wrote into each sweep's ``optuna.journal``: every suggested
    parameter's distribution (low, high, log; integer or float). Empty when no journal is found."""
    out: Bounds = {}
    for directory in sweep_dirs:
        fs, base = filesystem(directory)
        path = f"{base}/optuna.journal"
        if fs.get_file_info(path).type.name == "NotFound":
            continue
        studies: dict[int, str] = {}
        trial_study: dict[int, int] = {}
        with fs.open_input_stream(path) as f:
            text = f.read().decode("utf-8", errors="replace")
        for line in text.splitlines():
            try:
                op = json.loads(line)
            except ValueError:
                continue  # a torn last line of a journal being written
            code = op.get("op_code")
            if code == 0:
                studies[len(studies)] = op["study_name"]
            elif code == 4:
                trial_study[len(trial_study)] = op["study_id"]
            elif code == 5 and op.get("trial_id") in trial_study:
                name = studies.get(trial_study[op["trial_id"]], "")
                if "/" not in name:
                    continue
                workload, strategy = name.split("/", 1)
                dist = json.loads(op["distribution"])
                a = dist.get("attributes", {})
                if "low" not in a or not a["low"] < a["high"]:
                    continue
                scale = "log" if a.get("log") else ("int" if dist.get("name") == "IntDistribution" else "linear")
                out.setdefault((workload, strategy), {})[op["param_name"]] = {
                    "low": float(a["low"]), "high": float(a["high"]), "scale": scale}
    return out


def position(value: float, low: float, high: float, scale: str) -> float:
    """Where ``value`` lies in [low, high] on the hparam's scale: 0 at low, 1 at high (NaN for a
    value a log range cannot hold)."""
    if scale == "log":
        if value <= 0:
            return math.nan
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def edge_optima(res: Results, bounds: Bounds, level: float = edges.LEVEL) -> pd.DataFrame:
    """Edges toward which a pair's validation score still rises, per `reports.edges.toward_edge`
    (a trend test over the tune trials in the half of the range toward the edge; family level
    ``level`` per pair), not where the best trial merely landed.

    Columns: workload, strategy, hparam, value (the best tune trial's), low, high, scale, position
    (0..1), bound (lower or upper), tau, p, n_near, level (each test's), calibrated (the range came
    from the pair's LR range test, budget column ``calibration``).
    """
    tune = res.tune_runs()
    selection = dict(zip(zip(res.budget["workload"], res.budget["strategy"], strict=True),
                         res.budget["selection"], strict=True)) if "selection" in res.budget else {}
    calibrated = calibrated_pairs(res.budget)
    out = []
    for (workload, strategy), g in tune.groupby(["workload", "strategy"], sort=True):
        space = bounds.get((workload, strategy))
        if not space or g.empty:
            continue
        metric = f"val_accuracy_{selection.get((workload, strategy)) or 'final'}"
        configs = [json.loads(h) if isinstance(h, str) and h else {} for h in g["hparams"]]
        names = [h for h in space if all(_number(c.get(h)) for c in configs)]
        if not names:
            continue
        where = np.array([[position(float(c[h]), float(space[h]["low"]), float(space[h]["high"]),
                                    space[h]["scale"]) for h in names] for c in configs])
        scores = pd.to_numeric(g[metric], errors="coerce").to_numpy(dtype=float)
        best = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
        for e in edges.toward_edge(where, scores, level):
            h, b = names[e.index], space[names[e.index]]
            out.append({"workload": workload, "strategy": strategy, "hparam": h, "value": float(configs[best][h]),
                        "low": float(b["low"]), "high": float(b["high"]), "scale": b["scale"],
                        "position": where[best, e.index], "bound": e.bound, "tau": e.tau, "p": e.p,
                        "n_near": e.n_near, "level": e.level,
                        "calibrated": h == "lr" and (workload, strategy) in calibrated})
    return pd.DataFrame(out, columns=["workload", "strategy", "hparam", "value", "low", "high", "scale",
                                      "position", "bound", "tau", "p", "n_near", "level", "calibrated"])


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def calibrated_pairs(budget: pd.DataFrame) -> set[tuple[str, str]]:
    """The (workload, strategy) pairs whose lr range was calibrated (a ``calibration`` entry)."""
    if "calibration" not in budget:
        return set()
    return {(w, s) for w, s, c in zip(budget["workload"], budget["strategy"], budget["calibration"], strict=True)
            if isinstance(c, str) and c}


# ---- collapsed tune trials --------------------------------------------------------------------

def collapsed_trials(res: Results, near: float = NEAR_CHANCE) -> pd.DataFrame:
    """Tune trials that finished (status ok) without learning: a final validation score within ``near``
    of chance, or a last-epoch training loss no lower than the first epoch's. Diverged trials are
    counted apart (they are `status` diverged). Columns: workload, strategy, trial_index, score,
    chance, loss_first, loss_last, why."""
    tune = res.tune_runs()
    tune = tune[tune["status"] == "ok"]
    ep = res.epochs[res.epochs["trial_id"].isin(tune["trial_id"])].sort_values(["trial_id", "epoch"])
    first = ep.groupby("trial_id")["train_loss"].first()
    last = ep.groupby("trial_id")["train_loss"].last()
    out = []
    for r in tune.itertuples():
        score, chance = r.val_accuracy_final, r.chance_accuracy
        lf, ll = first.get(r.trial_id, np.nan), last.get(r.trial_id, np.nan)
        why = []
        if np.isfinite(score) and np.isfinite(chance) and score <= chance + near:
            why.append(f"validation accuracy {100 * score:.1f}% against chance {100 * chance:.1f}%")
        if np.isfinite(lf) and np.isfinite(ll) and ll >= lf and ep[ep["trial_id"] == r.trial_id].shape[0] > 1:
            why.append(f"training loss {ll:.3g} at the end, {lf:.3g} after the first epoch")
        if why:
            study = getattr(r, "study", 0)
            out.append({"workload": r.workload, "strategy": r.strategy, "study": int(study) if pd.notna(study) else 0,
                        "trial_index": int(r.trial_index), "score": score, "chance": chance, "loss_first": lf,
                        "loss_last": ll, "why": "; ".join(why)})
    return pd.DataFrame(out, columns=["workload", "strategy", "study", "trial_index", "score", "chance", "loss_first",
                                      "loss_last", "why"])


# ---- the budget, the seeds, the test split ----------------------------------------------------

def random_phase(budget: pd.DataFrame) -> list[tuple[str, int, int]]:
    """(sampler, trials per pair, its random start-up trials) for each sampler whose whole budget fell
    inside that random phase: TPE with at most 10 trials never modelled anything, it searched at random.
    With several tuning studies each study's sampler starts afresh, so the trials per study count."""
    out = []
    studies = budget["studies"].fillna(1) if "studies" in budget else 1
    if "seed_design" in budget and (budget["seed_design"] == "study_selection").any():
        # The selection over studies plans its first stage's trials: first_studies x trials.
        first = budget["selection_settings"].map(lambda s: json.loads(s).get("first_studies") if s else None)
        studies = first.where(budget["seed_design"] == "study_selection", studies)
    per_study = budget.assign(trials_planned=(budget["trials_planned"] / studies).astype(int))
    for (sampler, trials), _ in per_study.groupby(["sampler", "trials_planned"]):
        startup = RANDOM_PHASE.get(str(sampler))
        if startup is not None and 0 < int(trials) <= startup:
            out.append((str(sampler), int(trials), startup))
    return out


def test_rows(accuracies) -> int | None:
    """The test split's size, inferred as the least common denominator of the observed accuracies
    (each is correct / rows). None when nothing is recorded; a divisor of the true size is possible
    when every accuracy shares a factor with it, so the report says "at least"."""
    values = [float(a) for a in np.asarray(accuracies, dtype=float).ravel() if np.isfinite(a)]
    if not values:
        return None
    n = 1
    for v in values:
        n = math.lcm(n, Fraction(v).limit_denominator(1_000_000).denominator)
        if n > 10_000_000:
            return None
    return n


def binomial_se(accuracy: float, rows: int) -> float:
    """The binomial standard error of an accuracy measured on ``rows`` test rows."""
    return math.sqrt(accuracy * (1 - accuracy) / rows)


__all__ = ["NEAR_CHANCE", "RANDOM_PHASE", "binomial_se", "calibrated_pairs", "collapsed_trials", "edge_optima",
           "journal_bounds", "position", "random_phase", "search_bounds", "test_rows"]
