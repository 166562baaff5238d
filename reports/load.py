"""Load one or more sweep directories into pandas and refuse to mix what is not comparable.

Two sweeps are comparable when they ran the same protocol and every (workload, strategy) pair of a
workload got the same budget. The protocol is the ``protocol_hash`` column when every row has one
(equal first halves across all rows, one hash per workload: strategy lists and workload sets may
differ, as in an extended sweep), else, for results written before it, the spec hash. Anything else is refused with
`MixedResultsError` naming the difference, unless the caller passes `allow_mixed=True`, in which
case the differences are kept in `Results.mixed` and printed at the top of the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from lrresults.store import exists, filesystem, read_table, to_table
from vocab.contracts import FINISHED, SEED, TUNE

#: Budget columns that must be equal across the strategies of a workload for a fair comparison.
BUDGET_KEYS = ("trials_planned", "epochs", "sampler", "sampler_seed", "early_stopping", "selection",
               "seeds_planned", "seed_design", "selection_settings")
#: Run statuses that are results (a diverged run counts with its measured accuracy).
RESULT_STATUSES = FINISHED


class MixedResultsError(ValueError):
    """The sweep results differ in spec hash or budget (or repeat a pair) and cannot be compared."""


@dataclass
class Results:
    """The three results tables of one or more sweeps, as DataFrames, plus what was mixed or missing."""

    sweep_dirs: list[str]
    trials: pd.DataFrame
    epochs: pd.DataFrame
    budget: pd.DataFrame
    mixed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    layers: pd.DataFrame | None = None
    """Per-layer diagnostics (``layers`` table); empty for sweeps written before it existed."""
    predictions: pd.DataFrame | None = None
    """Seed runs' packed test predictions (``predictions`` table); empty for sweeps written before it existed."""
    extensions: list[str] = field(default_factory=list)
    """One sentence per extension of a loaded sweep (``extensions.json``, ``lrsweep extend``)."""

    @property
    def spec_hashes(self) -> list[str]:
        return sorted(set(self.trials["spec_hash"]) | set(self.budget["spec_hash"]))

    def seed_runs(self) -> pd.DataFrame:
        """Seed-stage runs that are results (status ok or diverged)."""
        t = self.trials
        return t[(t["stage"] == SEED) & t["status"].isin(RESULT_STATUSES)]

    @property
    def studies(self) -> bool:
        """Whether a pair was tuned in several independent studies (``budget.studies`` > 1): the study,
        not the seed, is then the unit of replication of every comparison."""
        t = self.trials
        return "study" in t and bool((t["study"].fillna(0) > 0).any())

    def replicates(self) -> pd.DataFrame:
        """The rows every comparison is made over: the seed runs, or with several tuning studies one row
        per (workload, strategy, study) whose accuracies are the means of that study's seed runs and whose
        ``seed`` is the study index, so replicates pair across strategies by study (common random numbers:
        study j has the same sampler seed, split and seeds for every strategy) and an interval over them
        covers the tuning as well as the seeds. ``n_seeds`` counts the runs averaged."""
        runs = self.seed_runs()
        if not self.studies:
            return runs.assign(n_seeds=1)
        runs = runs.assign(study=runs["study"].fillna(0).astype(int))
        keys = ["workload", "strategy", "study"]
        means = runs.groupby(keys, sort=True)[["test_accuracy_final", "test_accuracy_best"]].mean()
        first = runs.groupby(keys, sort=True).first().drop(columns=["test_accuracy_final", "test_accuracy_best",
                                                                    "seed"])
        out = means.join(first).assign(n_seeds=runs.groupby(keys, sort=True).size()).reset_index()
        return out.assign(seed=out["study"])

    def tune_runs(self) -> pd.DataFrame:
        """Tune-stage trials that are results (status ok or diverged)."""
        t = self.trials
        return t[(t["stage"] == TUNE) & t["status"].isin(RESULT_STATUSES)]


def _differences(budget: pd.DataFrame) -> list[str]:
    """Budget columns that differ between the pairs of a workload, one sentence each."""
    out = []
    for workload, group in budget.groupby("workload", sort=True):
        for key in BUDGET_KEYS:
            values = group[key].astype(object).where(group[key].notna(), None)
            if values.nunique(dropna=False) > 1:
                by_value: dict[str, list[str]] = {}
                for strategy, value in zip(group["strategy"], values, strict=True):
                    by_value.setdefault(repr(value), []).append(strategy)
                detail = "; ".join(f"{v}: {', '.join(sorted(s))}" for v, s in sorted(by_value.items()))
                out.append(f"unequal budget on workload {workload!r}: {key} differs ({detail})")
    return out


def _protocol_differences(trials: pd.DataFrame, budget: pd.DataFrame) -> list[str] | None:
    """How the rows' protocol hashes differ, one sentence each (None: some row has none, an older table)."""
    rows = pd.concat([trials[["workload", "protocol_hash"]], budget[["workload", "protocol_hash"]]])
    if rows["protocol_hash"].isna().any():
        return None
    out = []
    common = sorted(set(rows["protocol_hash"].str[:8]))
    if len(common) > 1:
        out.append(f"different protocols (budget, evaluation or seed rule): protocol hashes begin {', '.join(common)}")
    for workload, group in rows.groupby("workload", sort=True):
        found = sorted(set(group["protocol_hash"]))
        if len(found) > 1:
            out.append(f"different protocol hashes on workload {workload!r} (its options or epochs, or the budget): "
                       + ", ".join(found))
    return out


def load_results(sweep_dirs: list[str], *, allow_mixed: bool = False) -> Results:
    """Read `trials`, `epochs` and `budget` from every directory and check they may be combined.

    Raises `FileNotFoundError` for a directory without the tables, and `MixedResultsError` for
    different spec hashes or unequal budgets (unless `allow_mixed`) and, always, for a
    (workload, strategy) pair found in two directories, since its seeds could not be paired.
    """
    if not sweep_dirs:
        raise ValueError("no sweep directory given")
    parts: dict[str, list[pd.DataFrame]] = {"trials": [], "epochs": [], "budget": []}
    optional: dict[str, list[pd.DataFrame]] = {"layers": [], "predictions": []}  # results written before them have none
    owner: dict[tuple[str, str], str] = {}
    hashes: dict[str, set[str]] = {}
    for directory in sweep_dirs:
        tables = {name: read_table(name, directory).to_pandas() for name in parts}
        for name, df in tables.items():
            parts[name].append(df)
        for name, found in optional.items():
            found.append((read_table(name, directory) if exists(name, directory) else to_table(name, [])).to_pandas())
        pairs = set(zip(tables["budget"]["workload"], tables["budget"]["strategy"], strict=True))
        pairs |= set(zip(tables["trials"]["workload"], tables["trials"]["strategy"], strict=True))
        for pair in sorted(pairs):
            if pair in owner:
                raise MixedResultsError(
                    f"workload {pair[0]!r}, strategy {pair[1]!r} appears in both {owner[pair]} and "
                    f"{directory}; its seeds cannot be paired twice: pass each sweep once")
            owner[pair] = directory
        for h in set(tables["trials"]["spec_hash"]) | set(tables["budget"]["spec_hash"]):
            hashes.setdefault(h, set()).add(directory)
    trials, epochs, budget = (pd.concat(parts[n], ignore_index=True) for n in ("trials", "epochs", "budget"))

    mixed = []
    protocols = _protocol_differences(trials, budget)
    if protocols is not None:
        mixed += protocols
    elif len(hashes) > 1:
        listing = "; ".join(f"{h} in {', '.join(sorted(d))}" for h, d in sorted(hashes.items()))
        mixed.append(f"different spec hashes: {listing}")
    mixed += _differences(budget)
    if mixed and not allow_mixed:
        raise MixedResultsError("refusing to combine results: " + " | ".join(mixed)
                                + " (pass --allow-mixed to report them anyway)")

    warn = []
    incomplete = budget[~budget["complete"].astype(bool)]
    for row in incomplete.sort_values(["workload", "strategy"]).itertuples():
        warn.append(f"{row.workload}/{row.strategy} is incomplete: {row.trials_run}/{row.trials_planned} "
                    f"tuning trials and {row.seeds_run}/{row.seeds_planned} seeds finished")
    extended = [line for d in sweep_dirs for line in extensions(d)]
    return Results(list(sweep_dirs), trials, epochs, budget, mixed, warn,
                   **{name: pd.concat(found, ignore_index=True) for name, found in optional.items()},
                   extensions=extended)


def extensions(directory: str) -> list[str]:
    """``X added on DATE under the same protocol``, one per step of ``extensions.json`` after the first."""
    fs, base = filesystem(directory)
    try:
        with fs.open_input_stream(f"{base}/extensions.json") as f:
            steps = json.loads(f.read().decode())["steps"]
    except (FileNotFoundError, OSError):
        return []
    out = []
    for step in steps[1:]:
        what = step.get("added", {})
        parts = [*what.get("strategies", []), *(f"workload {w}" for w in what.get("workloads", []))]
        if what.get("seeds"):
            parts.append(f"seeds {what['seeds'][0]} -> {what['seeds'][1]}")
        out.append(f"{', '.join(parts)} added on {str(step.get('when'))[:10]} under the same protocol "
                   f"(spec hash {step.get('previous_spec_hash')} -> {step['spec_hash']})")
    return out
