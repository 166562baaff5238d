"""Build the sweep report: tables (CSV), figures (PNG + SVG), `report.md` and a self-contained `report.html`.

`build_report` reads the results, computes the tables once (`reports.tables`), builds the sections
(`reports.sections`) in document order and writes them through the document model
(`reports.document`). Nothing random is unseeded and no timestamp is written: the same Parquet gives
byte-identical files. The command line is `reports.cli`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import pandas as pd

from lrresults.store import is_uri
from reports import sections
from reports.analysis import analyse, pair_tables, summary_tables
from reports.document import Section, write_pages
from reports.drawing import submit, writing
from reports.figures import Figures, curves_and_figures
from reports.load import load_results
from reports.options import DEFAULT_MARGIN, check_margin, check_thresholds
from reports.variance_report import variance_section


@dataclass(frozen=True)
class ReportPaths:
    """Where a report was written: `markdown`, `html`, and per name the `csv` and `plots` ({"png"}, and
    "svg" when asked for)."""

    out_dir: str
    markdown: str
    html: str
    csv: dict[str, str] = field(default_factory=dict)
    plots: dict[str, dict[str, str]] = field(default_factory=dict)


def build_report(sweep_dirs: list[str], out_dir: str | None = None, *, allow_mixed: bool = False,
                 thresholds: list[float] | None = None, seed: int = 0,
                 margin: float = DEFAULT_MARGIN, svg: bool = False) -> ReportPaths:
    """Read sweep results and write `report.md`, `report.html`, `csv/*.csv` and `plots/*.png` (and
    `plots/*.svg`, vector copies for a paper, when ``svg``).

    `out_dir` defaults to `<first sweep dir>/report` (`./report` for a URI). Raises
    `FileNotFoundError` for a directory without results, `MixedResultsError` (a ValueError) for
    different spec hashes or unequal budgets unless `allow_mixed`, and `ValueError` for bad thresholds
    or a bad equivalence `margin` (a fraction of accuracy, 0 < margin < 1). ``thresholds`` None
    (default): convergence to 90/95/99% of each workload's best mean; else absolute accuracies.
    """
    thresholds = None if thresholds is None else check_thresholds(thresholds)
    margin = check_margin(margin)
    # Figures are written by worker processes while the sections are built (forked first, before the
    # tables are read); leaving the block waits for every file, which the HTML then embeds.
    with writing(svg=svg, preload=("reports.plots",)):
        res = load_results(list(sweep_dirs), allow_mixed=allow_mixed)
        if res.seed_runs().empty:
            raise ValueError(f"no seed-stage results (status ok or diverged) in {', '.join(sweep_dirs)}")
        if out_dir is None:
            out_dir = "report" if is_uri(sweep_dirs[0]) else os.path.join(sweep_dirs[0], "report")
        out_dir = os.path.abspath(out_dir)
        csv_dir = os.path.join(out_dir, "csv")
        os.makedirs(csv_dir, exist_ok=True)

        variance = variance_section(out_dir, res, sorted(res.seed_runs()["workload"].unique()))
        first = summary_tables(res)
        figures = Figures(out_dir, res, first["summary"])
        # Each figure is handed out as soon as its tables exist, most of them before any paired test. The
        # budget and tuning curves need the trials and budget only: a figure worker computes and draws them.
        trials_only = dataclasses.replace(res, epochs=res.epochs.iloc[:0], layers=None, predictions=None)
        curves = submit(curves_and_figures, Figures(out_dir, trials_only, first["summary"]), margin)
        figures.from_runs()
        first = pair_tables(res, margin, first)
        figures.from_pairs(first, margin)

        def curve_frames() -> dict[str, pd.DataFrame]:
            frames, drawn = curves.result()
            figures.add_drawn(drawn)
            return frames

        data = analyse(res, margin=margin, seed=seed, thresholds=None if thresholds is None else tuple(thresholds),
                       first=first, curves=curve_frames)
        # The first screen: the verdict, then the protocol and the report's own warnings, each in a box.
        front = sections.header(out_dir, data)
        front.box("verdict", sections.verdict_section(out_dir, data))
        front.box("protocol", sections.protocol_section(out_dir, data))
        warnings = sections.warnings_section(out_dir, data)
        if warnings.blocks:
            front.box("warnings", warnings)
        else:
            front.csvs.update(warnings.csvs)
        across, ranks = sections.across_section(out_dir, data)
        # In document order: the figures are drawn as the sections are built.
        parts = [
            front,
            # ---- the figures slot: `Figures.finish(data) -> Section` (reports/figures.py) ----
            figures.finish(data),
            sections.workload_sections(out_dir, data),
            variance,
            across,
            sections.generation_section(out_dir, data.summary, ranks),
            sections.convergence_section(out_dir, data),
            sections.budget_section(out_dir, data),
            sections.tuning_curves_section(out_dir, data),
            sections.method_section(out_dir, data),
        ]
        csvs: dict[str, pd.DataFrame] = {"summary": data.summary, "pairwise_vs_best": data.vs_best,
                                         "pairwise_all": data.all_pairs, "learning_curves": data.curves,
                                         "final_lr": data.fractions}
        for sec in parts:
            csvs.update(sec.csvs)
        files = Section(out_dir)
        files.h(2, "Files")
        formats = "PNG and SVG" if svg else "PNG (`--svg` adds vector copies)"
        files.p("Tables as CSV (accuracies as fractions, full precision) in `csv/`: "
                + ", ".join(f"`{n}.csv`" for n in sorted(csvs)) + f". Figures as {formats} in `plots/`.")
        blocks = [b for sec in [*parts, files] for b in sec.blocks]

    csv_paths = {}
    for name, df in sorted(csvs.items()):
        path = os.path.join(csv_dir, f"{name}.csv")
        df.to_csv(path, index=False, lineterminator="\n")
        csv_paths[name] = path
    md_path, html_path = os.path.join(out_dir, "report.md"), os.path.join(out_dir, "report.html")
    write_pages(blocks, md_path, html_path, "lrsweep report")
    figures = {name: paths for sec in parts for name, paths in sec.figures.items()}
    return ReportPaths(out_dir, md_path, html_path, csv_paths, figures)
