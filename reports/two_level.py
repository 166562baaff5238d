"""The two-level tables of a sweep, from its ``predictions`` table (pandas), and the verdict's words for them.

The interval itself, over seeds and test rows, is `lrstats.two_level` (numpy and scipy); this module
unpacks the ``predictions`` table into per-run correctness vectors, pairs them by seed and row, builds
each workload's table of every pair with Holm over the pairs, and says whether a verdict's claim
survives the test sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from lrstats import stats
from lrstats.distributions import t_ppf
from lrstats.two_level import TwoLevel, two_level
from vocab.predictions import correct_vector

if TYPE_CHECKING:
    import pandas as pd

HOLDS = "holds over seeds and test rows"
FAILS = "does not survive the test sample's variance"


def correct_matrices(predictions: pd.DataFrame, workload: str) -> dict[str, pd.Series]:
    """Per strategy of ``workload``, its seed runs' correctness vectors indexed by seed (one per seed;
    the ``predictions`` table's rows unpacked). A workload whose runs scored different numbers of test
    rows cannot be paired by row: ValueError naming the counts."""
    import pandas as pd

    p = predictions[predictions["workload"] == workload]
    counts = sorted(set(p["n_rows"].astype(int)))
    if len(counts) > 1:
        raise ValueError(f"predictions of workload {workload!r} cover different test rows ({counts}); "
                         "runs can be paired by row only on the same test split")
    out = {}
    for strategy, runs in p.groupby("strategy", sort=True):
        runs = runs.drop_duplicates("seed").sort_values("seed")
        out[strategy] = pd.Series([correct_vector(bytes(b), int(n)) for b, n in zip(runs["correct"], runs["n_rows"],
                                                                                      strict=True)],
                                  index=runs["seed"].astype(int).to_numpy())
    return out


def replicate_matrices(predictions: pd.DataFrame, workload: str) -> dict[str, pd.Series]:
    """`correct_matrices`, by replicate: with several tuning studies one vector per study, the mean
    correctness of its seed runs on each row, indexed by study (the study is then the replicate, as in
    ``Results.replicates``); otherwise the seed runs' vectors as they are."""
    import pandas as pd

    runs = correct_matrices(predictions, workload)
    p = predictions[predictions["workload"] == workload]
    if "study" not in p or not (p["study"].fillna(0) > 0).any():
        return runs
    study_of = {(r.strategy, int(r.seed)): int(r.study) if pd.notna(r.study) else 0 for r in p.itertuples()}
    out = {}
    for strategy, by_seed in runs.items():
        studies = np.array([study_of[(strategy, int(seed))] for seed in by_seed.index])
        out[strategy] = pd.Series({int(j): np.mean(np.stack(list(by_seed[studies == j])), axis=0)
                                   for j in sorted(set(studies))})
    return out


def _paired(a: pd.Series, b: pd.Series) -> np.ndarray:
    """``a - b`` as a ``(common seeds, rows)`` array: the seeds (or studies) both ran, in order."""
    seeds = sorted(set(a.index) & set(b.index))
    return np.array([a[s].astype(float) - b[s].astype(float) for s in seeds], dtype=float).reshape(len(seeds), -1)


def workload_table(predictions: pd.DataFrame, workload: str, leader: str, *, margin: float,
                   confidence: float = 0.95) -> pd.DataFrame:
    """One workload's two-level rows: the leader's accuracy (``b`` empty) and every pair's difference
    ``a - b`` (all pairs, so the Holm family is the verdict's; the leader's comparisons come first, with
    ``a`` the leader). Columns: workload, a, b, seeds, rows, mean, seed_ci_low/high (rows fixed), ci_low/high
    (seeds and rows), df, rows_share, p, p_holm (all pairs), p_tost, p_tost_holm. Empty without the leader's
    predictions."""
    import pandas as pd

    runs = replicate_matrices(predictions, workload)
    if leader not in runs:
        return pd.DataFrame()
    rows = []

    def row(a: str, b: str, result: TwoLevel) -> dict:
        t = t_ppf(0.5 + confidence / 2, result.seeds - 1) if result.seeds > 1 else math.nan
        return {"workload": workload, "a": a, "b": b, "seeds": result.seeds, "rows": result.rows,
                "mean": result.mean, "seed_ci_low": result.mean - t * result.seed_se,
                "seed_ci_high": result.mean + t * result.seed_se, "ci_low": result.ci_low, "ci_high": result.ci_high,
                "df": result.df, "rows_share": result.rows_share, "p": result.p, "p_tost": result.p_tost}

    lead = runs[leader]
    rows.append(row(leader, "", two_level(np.stack(list(lead)), confidence=confidence)))
    others = sorted(set(runs) - {leader})
    for a, b in [(leader, other) for other in others] + list(combinations(others, 2)):  # the leader's first
        rows.append(row(a, b, two_level(_paired(runs[a], runs[b]), confidence=confidence, margin=margin)))
    out = pd.DataFrame(rows)
    pairs = out["b"] != ""
    out["p_holm"] = math.nan
    out["p_tost_holm"] = math.nan
    out.loc[pairs, "p_holm"] = stats.holm(out.loc[pairs, "p"])
    out.loc[pairs, "p_tost_holm"] = stats.holm(out.loc[pairs, "p_tost"])
    return out


def sweep_table(predictions: pd.DataFrame | None, leaders: dict[str, str], *, margin: float) -> pd.DataFrame:
    """`workload_table` of every workload in ``leaders`` (workload -> its leader) that has predictions;
    empty for a sweep written before the ``predictions`` table, and without a workload whose runs
    scored different test rows."""
    import pandas as pd

    if predictions is None or predictions.empty:
        return pd.DataFrame()
    parts = []
    for workload, leader in sorted(leaders.items()):
        try:
            parts.append(workload_table(predictions, workload, leader, margin=margin))
        except ValueError:
            continue  # runs on different test rows cannot be paired by row: the seed statistics stand alone
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def claim_words(kind: str, p_holm: float, alpha: float = stats.ALPHA) -> str:
    """Whether a claim the seeds support (``kind``: "worse", a paired t-test; "equivalent", a TOST)
    survives the test sample: its two-level test, Holm over the same family, is still below ``alpha``."""
    if kind not in ("worse", "equivalent"):
        raise ValueError(f"claim kind must be 'worse' or 'equivalent', got {kind!r}")
    return HOLDS if np.isfinite(p_holm) and p_holm < alpha else FAILS


def _pair(table: pd.DataFrame, x: str, y: str) -> pd.Series | None:
    hit = table[((table["a"] == x) & (table["b"] == y)) | ((table["a"] == y) & (table["b"] == x))]
    return hit.iloc[0] if len(hit) else None


@dataclass(frozen=True)
class Claim:
    """One claim of a workload's verdict checked against the test sample's variance: ``strategy`` below
    ``other`` (``kind`` "worse": the paired t-test) or within the margin of the leader ``other`` ("equivalent":
    the TOST), on ``seeds`` seeds both ran; ``p_holm``: that test over seeds and test rows, Holm over all
    pairs of the workload (`workload_table`)."""

    kind: str
    strategy: str
    other: str
    seeds: int
    p_holm: float

    @property
    def words(self) -> str:
        """`claim_words` of the claim: whether it survives the test sample."""
        return claim_words(self.kind, self.p_holm)

    @property
    def holds(self) -> bool:
        return self.words == HOLDS


def verdict_claim_rows(worse: dict[str, tuple[str, ...]], equivalent: tuple[str, ...], leader: str,
                       table: pd.DataFrame) -> list[Claim]:
    """Each claim of a workload's verdict (``worse``: loser -> the strategies shown better; ``equivalent``:
    shown equivalent to ``leader``) with its two-level test, from `workload_table`; the claims of
    strategies without predictions are left out."""
    out = []
    for loser, winners in worse.items():
        for winner in winners:
            r = _pair(table, loser, winner)
            if r is not None:
                out.append(Claim("worse", loser, winner, int(r.seeds), float(r.p_holm)))
    for other in equivalent:
        r = _pair(table, leader, other)
        if r is not None:
            out.append(Claim("equivalent", other, leader, int(r.seeds), float(r.p_tost_holm)))
    return out
