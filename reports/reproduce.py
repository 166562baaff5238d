"""The reproduction report: from a published number to an honest one, per workload and strategy.

Built from Parquet only (the ``trials`` and ``ceilings`` tables of ``lrsweep reproduce`` directories,
and optionally the ``trials`` table of a fair sweep), like ``lrsweep report``; needs neither Ray nor
torch. Side by side per (workload, strategy), accuracies in percent:

- ``paper table``: the paper's published figure (``reports/data/paper_results.yaml``, with source);
- ``ref. code``: the reference code's own committed result (seed 42), where one exists;
- ``paper code s42``: the ``<strategy>@paper_code`` run with the paper's protocol and seed 42;
- ``paper code``: the same over all seeds, mean [95% t interval], best test accuracy over epochs
  (the paper's metric) and, after the slash, final-epoch test accuracy;
- ``corrected``: the corrected strategy with the same protocol, same two numbers;
- ``fair``: the fair sweep's tuned, seed-averaged verdict (final-epoch test accuracy), when given;
- the workload's Bayes ceiling (``ceilings.parquet``: computed from the generated data).

Each gap is labelled with its cause: ``above ceiling`` (impossible), ``table vs code`` (the
published figure is not what the code produces), ``RNG/library`` (seed-42 rerun vs the committed
result), ``seed`` (seed 42 vs the seed mean), ``defect`` (paper code vs corrected), ``selection on
test`` (best over epochs vs final epoch), ``tuning`` (fair verdict vs corrected untuned).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from lrresults.store import filesystem, read_table, write_parquet
from lrstats import stats
from reports.document import Section, write_pages
from reports.formatting import mean_ci, num
from vocab.contracts import FINISHED, SEED

__all__ = ["CEILINGS", "PAPER_RESULTS", "Row", "build_reproduction_report", "load_paper_results",
           "read_ceilings", "reproduction_document", "reproduction_rows", "write_ceilings"]

PAPER_RESULTS = Path(__file__).parent / "data" / "paper_results.yaml"
VARIANT = "@paper_code"
REPRODUCED_WITHIN = 1.5  # points: a seed-42 rerun this close to the committed result reproduces it
CEILINGS = pa.schema([
    pa.field("workload", pa.string(), nullable=False),
    pa.field("ceiling", pa.float64(), nullable=False),  # accuracy in [0, 1]
    pa.field("rule", pa.string(), nullable=False),  # how it was computed
])


def load_paper_results(path: Path = PAPER_RESULTS) -> dict:
    """``{"published": {...}, "reference_code": {...}}``, each with ``source``, ``metric``, ``table``."""
    return yaml.safe_load(path.read_text())


def write_ceilings(rows: list[dict], directory: str) -> str:
    """``ceilings.parquet``: one row per workload with a computable Bayes ceiling."""
    table = pa.Table.from_pylist(rows, schema=CEILINGS)
    return write_parquet(table, "ceilings", directory)


def read_ceilings(directory: str) -> dict[str, float]:
    """``{workload: ceiling}`` from ``<directory>/ceilings.parquet`` (empty when there is none)."""
    fs, base = filesystem(directory)
    path = f"{base}/ceilings.parquet"
    if fs.get_file_info(path).type.name == "NotFound":
        return {}
    table = pq.read_table(path, filesystem=fs, schema=CEILINGS)
    return dict(zip(table["workload"].to_pylist(), table["ceiling"].to_pylist(), strict=True))


@dataclass(frozen=True)
class Summary:
    """Seed runs of one (workload, strategy) in percent: seed-42 value and mean + t interval."""

    n: int
    best: float
    best_ci: tuple[float, float]
    final: float
    final_ci: tuple[float, float]
    first_seed_best: float | None

    @classmethod
    def of(cls, rows: list[dict], first_seed: int | None) -> Summary:
        best = np.array([100 * r["test_accuracy_best"] for r in rows if r["test_accuracy_best"] is not None])
        final = np.array([100 * r["test_accuracy_final"] for r in rows if r["test_accuracy_final"] is not None])
        first = [100 * r["test_accuracy_best"] for r in rows if r["seed"] == first_seed]
        return cls(len(rows), float(np.mean(best)) if best.size else math.nan, stats.t_interval(best),
                   float(np.mean(final)) if final.size else math.nan, stats.t_interval(final),
                   first[0] if first else None)


@dataclass(frozen=True)
class Row:
    """One line of the report: every number of one (workload, strategy) and its labelled gaps."""

    workload: str
    strategy: str
    paper_table: float | None
    reference_code: float | None
    paper_code: Summary | None
    corrected: Summary | None
    fair: Summary | None
    ceiling: float | None
    gaps: tuple[str, ...]


def _seed_rows(directories: Sequence[str]) -> list[dict]:
    rows = []
    for directory in directories:
        rows += [r for r in read_table("trials", directory).to_pylist()
                 if r["stage"] == SEED and r["status"] in FINISHED]
    return rows


def _by_pair(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    pairs: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        pairs.setdefault((r["workload"], r["strategy"]), []).append(r)
    return pairs


def _gaps(table: float | None, ref: float | None, paper: Summary | None, corrected: Summary | None,
          fair: Summary | None, ceiling: float | None, defect: bool) -> tuple[str, ...]:
    """The labelled differences between the columns of one row (percentage points)."""
    gaps = []
    if table is not None and ceiling is not None and table > ceiling:
        gaps.append(f"above ceiling: table {table:.1f} > Bayes ceiling {ceiling:.1f} (impossible on this data)")
    if table is not None and ref is not None:
        gaps.append(f"table vs code: {table - ref:+.1f} (the published figure is not what the code produced)")
    if paper is not None and ref is not None and paper.first_seed_best is not None:
        d = paper.first_seed_best - ref
        what = "reproduced" if abs(d) <= REPRODUCED_WITHIN else "RNG order / library version"
        gaps.append(f"RNG/library: seed-42 rerun {d:+.2f} vs committed ({what})")
    if paper is not None and paper.first_seed_best is not None and paper.n > 1:
        gaps.append(f"seed: seed 42 {paper.first_seed_best - paper.best:+.2f} vs the {paper.n}-seed mean")
    if paper is not None and corrected is not None and defect:
        gaps.append(f"defect: corrected {corrected.best - paper.best:+.2f} vs paper code (same protocol)")
    ours = paper or corrected
    if ours is not None:
        gaps.append(f"selection on test: best-over-epochs {ours.best - ours.final:+.2f} vs final epoch")
    if fair is not None and (corrected or paper) is not None:
        base = corrected or paper
        gaps.append(f"tuning: fair tuned final {fair.final - base.final:+.2f} vs untuned final")
    return tuple(gaps)


def reproduction_rows(reproductions: Sequence[str], fair: Sequence[str] = ()) -> list[Row]:
    """Rows for every (workload, strategy) the reproduction directories ran, in their order.

    ``<name>@paper_code`` runs and corrected ``<name>`` runs fill one row per ``<name>``; the
    first (lowest) seed of each pair is the reference code's seed 42 in a shipped spec.
    """
    published = load_paper_results()
    ceilings: dict[str, float] = {}
    for directory in reproductions:
        ceilings.update({w: 100 * c for w, c in read_ceilings(directory).items()})
    runs = _by_pair(_seed_rows(reproductions))
    fair_runs = _by_pair(_seed_rows(fair)) if fair else {}
    order: list[tuple[str, str]] = []
    for workload, strategy in runs:
        key = (workload, strategy.removesuffix(VARIANT))
        if key not in order:
            order.append(key)

    def summary(pairs: dict, key: tuple[str, str]) -> Summary | None:
        rows = pairs.get(key)
        return Summary.of(rows, min(r["seed"] for r in rows)) if rows else None

    rank = {name: i for i, name in enumerate(published["published"]["table"])}  # the paper's row order
    order.sort(key=lambda key: (key[0], rank.get(key[1], len(rank)), key[1]))
    out = []
    for workload, base in order:
        table = published["published"]["table"].get(base, {}).get(workload)
        ref = published["reference_code"]["table"].get(base, {}).get(workload)
        paper = summary(runs, (workload, base + VARIANT))
        corrected = summary(runs, (workload, base))
        fair_summary = summary(fair_runs, (workload, base))
        ceiling = ceilings.get(workload)
        gaps = _gaps(table, ref, paper, corrected, fair_summary, ceiling, defect=paper is not None)
        out.append(Row(workload, base, table, ref, paper, corrected, fair_summary, ceiling, gaps))
    return out


# --- rendering ----------------------------------------------------------------------------------

HEADER = ("strategy", "paper table", "ref. code (s42)", "paper code s42", "paper code: best / final",
          "corrected: best / final", "fair tuned: final", "gaps and their causes")


def _num(x: float | None, digits: int = 1) -> str:
    return num(x, digits, missing="-")


def _interval(mean: float, ci: tuple[float, float]) -> str:
    """Mean [95% t interval] of values already in percent, two decimals."""
    return mean_ci(mean, ci[0], ci[1], digits=2, scale=1, missing="-")


def _summary_cell(s: Summary | None, final_only: bool = False) -> str:
    if s is None:
        return "-"
    if final_only:
        return f"{_interval(s.final, s.final_ci)} (n={s.n})"
    return f"{_interval(s.best, s.best_ci)} / {_interval(s.final, s.final_ci)} (n={s.n})"


def _cells(row: Row) -> list[str]:
    return [row.strategy, _num(row.paper_table), _num(row.reference_code, 2),
            _num(row.paper_code.first_seed_best if row.paper_code else None, 2),
            _summary_cell(row.paper_code), _summary_cell(row.corrected), _summary_cell(row.fair, final_only=True),
            "; ".join(row.gaps)]


def headlines(rows: list[Row]) -> list[str]:
    """One-line findings per workload: the table against the ceiling, and STLR's collapse."""
    lines = []
    for workload in dict.fromkeys(r.workload for r in rows):
        mine = [r for r in rows if r.workload == workload]
        ceiling = next((r.ceiling for r in mine if r.ceiling is not None), None)
        tables = [r.paper_table for r in mine if r.paper_table is not None]
        if ceiling is not None and tables:
            above = sum(t > ceiling for t in tables)
            lines.append(f"{workload}: the Bayes ceiling computed from the generated data is {ceiling:.2f}%; "
                         f"{above} of {len(tables)} published figures ({min(tables):.1f}-{max(tables):.1f}%) lie "
                         "above it, so the paper's table cannot come from this data.")
        stlr = next((r for r in mine if r.strategy == "stlr_discriminative"), None)
        if stlr is not None and stlr.paper_code is not None and stlr.corrected is not None:
            lines.append(f"{workload}: STLR's paper code collapses to {stlr.paper_code.best:.1f}% (double "
                         f"discriminative decay, stepped per epoch); the corrected STLR reaches "
                         f"{stlr.corrected.best:.1f}% with the same protocol.")
    return lines


def reproduction_document(rows: list[Row], out_dir: str) -> Section:
    """The reproduction report as document blocks (`reports.document`), the same model as the sweep report."""
    published = load_paper_results()
    doc = Section(out_dir)
    doc.h(1, "Reproducing the paper")
    doc.p("Accuracies in percent. \"best\" is the best test accuracy over epochs (the paper's metric, chosen on "
          "the test split); \"final\" the last epoch's. Intervals: mean [95% Student t interval] over seeds. "
          "\"corrected\" is empty where the reproduction ran no separate corrected strategy.")
    doc.ul(headlines(rows))
    for workload in dict.fromkeys(r.workload for r in rows):
        doc.h(2, workload)
        doc.table(pd.DataFrame([_cells(r) for r in rows if r.workload == workload], columns=list(HEADER)))
    doc.h(2, "Sources")
    doc.ul([f"paper table: {published['published']['source']}",
            f"ref. code: {published['reference_code']['source']}"])
    return doc


def build_reproduction_report(reproductions: Sequence[str], fair: Sequence[str] = (),
                              out_dir: str | None = None) -> tuple[str, str]:
    """Write ``reproduction.md`` and ``reproduction.html`` (default: ``<first dir>/report/``); return
    their paths. Reads only the directories' Parquet tables."""
    rows = reproduction_rows(reproductions, fair)
    out = Path(out_dir or Path(reproductions[0]) / "report")
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "reproduction.md", out / "reproduction.html"
    write_pages(reproduction_document(rows, str(out)).blocks, str(md), str(page), "Reproducing the paper")
    return str(md), str(page)
