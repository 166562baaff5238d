"""Build the report: tables (CSV), figures (PNG + SVG), `report.md` and a self-contained `report.html`.

The document is assembled once as a list of blocks (headings, paragraphs, tables, figures; each
renders itself as Markdown and as HTML) and written twice, as Markdown (figures linked) and as HTML
(figures embedded as base64 PNG), so the two never disagree. Each section returns its blocks, CSV
tables and figures. Nothing random is unseeded and no timestamp is written: the same Parquet gives
byte-identical files.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports import plots, stats, tables
from reports.load import MixedResultsError, Results, load_results
from reports.store import is_uri

#: The paper's Table 2 thresholds (fractions of test accuracy).
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class ReportPaths:
    """Where a report was written: `markdown`, `html`, and per name the `csv` and `plots` ({"png", "svg"})."""

    out_dir: str
    markdown: str
    html: str
    csv: dict[str, str] = field(default_factory=dict)
    plots: dict[str, dict[str, str]] = field(default_factory=dict)


# ---- formatting -------------------------------------------------------------------------------

def pct(x: float) -> str:
    """A fraction as percent with one decimal; n/a when undefined."""
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def pval(p: float) -> str:
    """A p-value to three significant digits, '<0.001' below that, 'n/a' when no test was possible."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def num(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def ci(lo: float, hi: float) -> str:
    return "n/a" if not (np.isfinite(lo) and np.isfinite(hi)) else f"[{pct(lo)}, {pct(hi)}]"


# ---- document model ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Heading:
    level: int
    text: str

    def markdown(self) -> str:
        return "#" * self.level + " " + self.text

    def html(self) -> str:
        return f"<h{self.level}>{html.escape(self.text)}</h{self.level}>"


@dataclass(frozen=True)
class Paragraph:
    """Text with Markdown **bold** and `code` spans (rendered as such in HTML)."""

    text: str

    def markdown(self) -> str:
        return self.text

    def html(self) -> str:
        return f"<p>{_inline(self.text)}</p>"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]

    def markdown(self) -> str:
        return "\n".join(f"- {i}" for i in self.items)

    def html(self) -> str:
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in self.items) + "</ul>"


@dataclass(frozen=True, eq=False)
class Table:
    """A table of formatted cells: every cell of ``frame`` is a string (``Section.table`` makes it so)."""

    frame: pd.DataFrame

    def markdown(self) -> str:
        df = self.frame
        cell = lambda s: str(s).replace("|", "\\|")
        rows = ["| " + " | ".join(cell(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
        rows += ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
        return "\n".join(rows)

    def html(self) -> str:
        df = self.frame
        head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
        rows = "".join("<tr>" + "".join(f"<td>{_inline(v)}</td>" for v in r) + "</tr>"
                       for r in df.itertuples(index=False))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


@dataclass(frozen=True)
class Figure:
    """A saved figure: linked from Markdown by its path relative to the report, embedded in HTML as base64 PNG."""

    png: str
    src: str
    alt: str

    def markdown(self) -> str:
        return f"![{self.alt}]({self.src})"

    def html(self) -> str:
        with open(self.png, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        alt = html.escape(self.alt)
        return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


Block = Heading | Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    """What one part of the report produced: its blocks in order, its CSV tables and its figures by name."""

    out_dir: str
    blocks: list[Block] = field(default_factory=list)
    csvs: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, dict[str, str]] = field(default_factory=dict)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def p(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def ul(self, items: Sequence[str]) -> None:
        if items:  # an empty list is no block at all
            self.blocks.append(Bullets(tuple(items)))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(Table(frame.astype(str)))

    def figure(self, fig, name: str, alt: str) -> None:
        """Save ``fig`` as ``plots/<name>.{png,svg}`` and show it here."""
        saved = plots.save(fig, os.path.join(self.out_dir, "plots"), name)
        self.figures[name] = saved
        self.blocks.append(Figure(saved["png"], os.path.relpath(saved["png"], self.out_dir), alt))


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4}"
         "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#f0f0f0}"
         "img{max-width:100%}figure{margin:1em 0}")


def markdown_page(blocks: Sequence[Block]) -> str:
    return "\n\n".join(b.markdown() for b in blocks) + "\n"


def html_page(blocks: Sequence[Block]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lrsweep report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(b.html() for b in blocks) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """HTML-escape a cell or paragraph, rendering Markdown **bold** and `code` spans."""
    out, bold, code = [], False, False
    for i, part in enumerate(html.escape(str(text)).split("**")):
        if i:
            out.append("</b>" if bold else "<b>")
            bold = not bold
        pieces = part.split("`")
        for j, piece in enumerate(pieces):
            if j:
                out.append("</code>" if code else "<code>")
                code = not code
            out.append(piece)
    return "".join(out)


# ---- sections ---------------------------------------------------------------------------------

def _selection_words(res: Results) -> str:
    """How the sweep(s) picked each pair's configuration, from the budget table's ``selection``."""
    rules = sorted(set(res.budget["selection"]))
    return "; ".join(f"selection `{r}`: by `{tables.TUNE_METRICS[r]}`" for r in rules)


def _header(out_dir: str, res: Results, thresholds: Sequence[float], seed: int, margin: float) -> Section:
    sec = Section(out_dir)
    sec.h(1, "lrsweep report")
    sweeps = ", ".join(f"`{d}`" for d in res.sweep_dirs)
    ids = ", ".join(f"`{s}`" for s in sorted(set(res.trials["sweep_id"])))
    sec.p(f"Sweep directories: {sweeps}. Sweep ids: {ids}. Spec hash(es): "
          + ", ".join(f"`{h}`" for h in res.spec_hashes) + ".")
    sec.p("**Primary metric**: final-epoch test accuracy of the seed-stage runs (the tuned configuration "
          "retrained on the full training split, one run per seed), in percent with one decimal. "
          "Runs with status ok or diverged count (a diverged run counts with its measured accuracy and is "
          "also listed under *diverged*); errored runs do not. The paper's optimistic metric, the best "
          "test accuracy over epochs, is shown in its own labelled column and is never used to rank. "
          f"Tuning chose configurations on the validation split only ({_selection_words(res)}).")
    sec.p("**Statistics**: per strategy, the mean and SD over seeds and the 95% Student t interval of the mean "
          "(mean +- t(n-1) SD / sqrt(n)), the honest interval for a handful of seeds. Within a workload, strategies "
          "are compared paired by seed (runs with the same `seed` value): a paired t-test with its paired t "
          "interval of the mean difference (they agree: the interval excludes 0 exactly when p < 0.05), a "
          "Wilcoxon signed-rank test, and the two one-sided tests (TOST) of equivalence within "
          f"+-{100 * margin:g} pp (`--margin`). Each family of comparisons is Holm-corrected; effect sizes are "
          f"Cohen's d_z and Cliff's delta. Significance level {stats.ALPHA}, two-sided. Against the workload's best, "
          "a strategy is **worse** when the Holm-corrected paired t-test is significant, **equivalent** when the "
          "Holm-corrected TOST is (the difference is shown to lie within the margin), and **inconclusive** when "
          "neither is: the seeds cannot tell whether it is worse or as good. *Inconclusive* is not *the same*. "
          "The best is picked after the fact from the same runs, so the comparisons with it are post hoc; the "
          "Holm p over all pairs of the workload (`csv/pairwise_all.csv`, and the last p column of each comparison "
          "table) does not depend on that choice. The minimal detectable difference (MDD) is the true difference "
          f"the paired t-test would detect with {stats.POWER:.0%} power at the strictest level Holm applies in its "
          "family (0.05 / number of comparisons), given the observed SD of the differences; *seeds for margin* is "
          "the number of seeds that would detect a difference of the margin. Cross-workload aggregates use "
          "normalised scores (0 = chance, the majority-class rate of the test split; 1 = the workload's best mean) "
          f"with stratified bootstrap CIs (2000 resamples, seed {seed}). Convergence thresholds: "
          + ", ".join(f"{100 * t:g}%" for t in thresholds) + ".")
    if res.mixed:
        sec.h(2, "Warning: mixed results (--allow-mixed)")
        sec.p("These results were combined although they differ; comparisons across the differing parts "
              "are not fair-budget comparisons:")
        sec.ul(res.mixed)
    if res.warnings:
        sec.h(2, "Warnings")
        sec.ul(res.warnings)
    return sec


def _lr_fraction(lo: float, hi: float) -> str:
    """The final-LR / peak fraction of a pair's seed runs: one number, or the range when runs differ."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"


def _seeds(n: float) -> str:
    if n is None or not np.isfinite(n):
        return "n/a"
    return f">{stats.MAX_SEEDS}" if n > stats.MAX_SEEDS else str(int(n))


def _workload_sections(out_dir: str, res: Results, summary: pd.DataFrame, vs_best: pd.DataFrame,
                       curves: pd.DataFrame, margin: float) -> Section:
    sec = Section(out_dir)
    sec.h(2, "Results per workload")
    sec.p("Ranked by mean final test accuracy. **best** marks the highest mean. Against the best: *worse* = "
          "Holm-corrected paired t-test significant; *equivalent* = Holm-corrected TOST significant, the "
          f"difference lies within +-{100 * margin:g} pp; *inconclusive* = neither, these seeds cannot tell; "
          "*untested* = fewer than two paired seeds or identical differences, so no test was possible. MDD = "
          "minimal detectable difference against the best (pp, see the header). Final LR / peak = the top layer "
          "group's LR after the last epoch over its peak LR, per seed run (a cyclic schedule far above 0 ended "
          "mid-cycle). Trials = tuning trials run / planned; diverged = diverged seed runs / seed runs.")
    for workload, s in summary.groupby("workload", sort=True):
        sec.h(3, f"{workload} ({s['regime'].iloc[0]})")
        if s["n"].max() < 2:
            sec.p(f"**Only one seed per strategy on {workload}**: no standard deviation, confidence interval "
                  "or significance test is possible; the numbers below are single runs and the ranking is "
                  "not evidence of a difference.")
        rows = []
        for r in s.itertuples():
            name = f"**{r.strategy}**" if r.outcome == "best" else r.strategy
            rows.append({
                "rank": r.rank, "strategy": name, "gen": r.generation, "n": r.n, "mean %": pct(r.mean),
                "SD": pct(r.sd), "95% CI (t)": ci(r.ci_low, r.ci_high),
                "best-epoch % (paper, optimistic)": pct(r.best_epoch_mean),
                "vs best": r.outcome, "Holm p (t)": pval(r.p_t_holm_vs_best),
                "Holm p (TOST)": pval(r.p_tost_holm_vs_best), "MDD (pp)": num(100 * r.mdd_vs_best, 2),
                f"seeds for {100 * margin:g} pp": _seeds(r.seeds_for_margin),
                "final LR / peak": _lr_fraction(r.lr_fraction_min, r.lr_fraction_max),
                "trials": f"{r.trials_run}/{r.trials_planned}", "diverged": f"{r.diverged}/{r.n}",
                "tuned configuration": tables.config_text(r.tuned_config),
            })
        sec.table(pd.DataFrame(rows))
        v = vs_best[vs_best["workload"] == workload] if not vs_best.empty else vs_best
        if not v.empty:
            sec.p(tables.power_statement(v, margin))
        seeds = tables.seed_matrix(res, workload)
        sec.figure(plots.workload_bars(s, seeds, workload), f"bars_{workload}",
                   f"{workload}: mean final test accuracy with 95% t interval")
        sec.figure(plots.learning_curves(curves, workload), f"curves_{workload}",
                   f"{workload}: test accuracy per epoch, mean and min-max band over seeds")

        if v.empty:
            continue
        sec.h(4, f"{workload}: paired comparisons with the best ({s.iloc[0]['strategy']})")
        sec.p(f"Differences are best minus other, in percentage points, over the n seeds both ran; the interval "
              f"is the paired t interval. Holm correction over these {len(v)} comparisons, separately for each "
              "test; *Holm p (t), all pairs* is the same t-test within all pairs of the workload. d_z = mean "
              "difference / SD of the differences. The exact two-sided Wilcoxon test cannot give p below 2/2^n "
              "(0.0625 for n = 5); such rows say so.")
        rows = []
        for r in v.itertuples():
            rows.append({
                "comparison": f"{r.a} - {r.b}", "n": r.n, "diff (pp)": num(100 * r.mean_diff, 2),
                "95% CI (pp)": "n/a" if not np.isfinite(r.diff_ci_low)
                else f"[{100 * r.diff_ci_low:.2f}, {100 * r.diff_ci_high:.2f}]",
                "t": num(r.t), "p (t)": pval(r.p_t), "Holm p (t)": pval(r.p_t_holm),
                "W": num(r.w, 1), "p (W)": pval(r.p_w), "Holm p (W)": pval(r.p_w_holm),
                "Holm p (TOST)": pval(r.p_tost_holm), "outcome": r.outcome,
                "MDD (pp)": num(100 * r.mdd, 2), f"seeds for {100 * margin:g} pp": _seeds(r.seeds_for_margin),
                "d_z": num(r.cohen_d), "Cliff's delta": num(r.cliffs_delta),
                "Holm p (t), all pairs": pval(r.p_t_holm_all), "note": r.note,
            })
        sec.table(pd.DataFrame(rows))
    sec.p("All pairs within each workload (Holm over that workload's pairs) are in `csv/pairwise_all.csv`; each "
          "seed run's final LR fraction is in `csv/final_lr.csv`.")
    return sec


def _across_section(out_dir: str, res: Results, summary: pd.DataFrame, gen: dict,
                    seed: int) -> tuple[Section, pd.DataFrame]:
    """The cross-workload section, and the average ranks the generations section reads."""
    sec = Section(out_dir)
    sec.h(2, "Across workloads")
    ranks, fr, nemenyi, dropped = tables.across_workloads(summary, gen)
    by_regime = tables.friedman_by_regime(summary)
    sec.csvs.update(ranks=ranks, nemenyi=nemenyi.reset_index(names="strategy"), friedman=by_regime)
    if dropped:
        sec.p("Left out of the cross-workload analysis for missing a workload: " + ", ".join(dropped) + ".")
    table = ranks.rename(columns={"avg_rank": "average rank", "generation": "gen"})
    sec.table(table.assign(**{c: table[c].map(lambda x: num(x, 2)) for c in table.columns[2:]}))
    if np.isfinite(fr.p):
        sec.p(f"Friedman test (scipy.stats.friedmanchisquare) over {fr.n_workloads} workloads and "
              f"{fr.n_strategies} strategies: chi2 = {fr.statistic:.2f}, df = {fr.n_strategies - 1}, "
              f"p = {pval(fr.p)}. Nemenyi post-hoc (scikit-posthocs) critical difference at 0.05: "
              f"**{fr.cd:.2f} ranks for {fr.n_strategies} strategies on {fr.n_workloads} workloads** (average ranks "
              f"run from 1 to {fr.n_strategies}); strategies whose average ranks differ by less are joined in the "
              "diagram, which means not separated, not equal. " + (fr.note + "." if fr.note else ""))
        sec.figure(plots.cd_diagram(ranks, nemenyi, fr.cd, fr.n_workloads), "cd_diagram",
                   "critical-difference diagram (Nemenyi, alpha 0.05)")
    else:
        sec.p(f"No Friedman test: {fr.note}. The average ranks above only order the means; they are no "
              "evidence that one strategy is better than another.")
    sec.p("The same test over all workloads and within each regime (scratch: trained from scratch; finetune: "
          "a pretrained model fine-tuned):")
    sec.table(pd.DataFrame({"group": by_regime["group"], "workloads": by_regime["workloads"],
                            "strategies": by_regime["n_strategies"], "chi2": by_regime["chi2"].map(num),
                            "p": by_regime["p"].map(pval), "Nemenyi CD (ranks)": by_regime["nemenyi_cd"].map(num),
                            "note": by_regime["note"]}))
    runs, skipped = tables.normalised_scores(res, summary)
    workloads = sorted(set(summary["workload"]) - set(skipped))
    if skipped:
        sec.p("Not normalisable (no chance level recorded, or no strategy above it), so left out of the "
              "aggregates below: " + ", ".join(skipped) + ".")
    if len(workloads) >= 3 and len(ranks):
        iqm, profiles = tables.iqm_and_profiles(runs, list(ranks["strategy"]), workloads, seed=seed)
        sec.csvs["iqm"], sec.csvs["performance_profiles"] = iqm, profiles
        sec.csvs["normalised"] = runs[["workload", "strategy", "seed", "trial_id", tables.PRIMARY, "chance_accuracy",
                                   "normalised"]].sort_values(["workload", "strategy", "seed"])
        sec.h(3, "Normalised IQM and performance profiles")
        sec.p("Scores are normalised per workload: (accuracy - chance) / (best mean - chance), chance being the "
              "majority-class rate of the test split, so 0 = chance and 1 = the workload's best strategy mean, "
              "and every workload counts the same. Normalised IQM = per workload, the interquartile mean of the "
              "strategy's seed runs (25% trimmed each side; nothing is trimmed from 3 runs), then the mean over "
              "workloads. Unlike rliable's IQM of all runs pooled, it cannot trim a whole workload away, so a "
              "drop on any one workload lowers it. 95% percentile CI from 2000 stratified bootstrap resamples "
              "(runs resampled within each workload).")
        sec.table(pd.DataFrame({"strategy": iqm["strategy"], "normalised IQM": iqm["iqm"].map(lambda x: num(x, 3)),
                                "95% CI": [f"[{num(a, 3)}, {num(b, 3)}]"
                                           for a, b in zip(iqm["ci_low"], iqm["ci_high"], strict=True)],
                                "runs": iqm["runs"]}))
        sec.figure(plots.performance_profiles(profiles), "performance_profiles",
                   "performance profiles of normalised scores")
    else:
        sec.p(f"Normalised IQM and performance profiles need at least 3 normalisable workloads "
              f"(have {len(workloads)}).")
    return sec, ranks


def _generation_section(out_dir: str, summary: pd.DataFrame, ranks: pd.DataFrame) -> Section:
    sec = Section(out_dir)
    sec.h(2, "Generations")
    g = tables.by_generation(summary, ranks)
    sec.csvs["generations"] = g
    sec.p("The paper's generations (1 to 5, and SOTA). Per workload, the generation's best strategy and its "
          "mean final test accuracy; mean average rank over the generation's strategies.")
    out = pd.DataFrame({"generation": g["generation"], "strategies": g["strategies"],
                        "mean average rank": g["mean_avg_rank"].map(num)})
    for w in sorted(summary["workload"].unique()):
        out[w] = [f"{b} {pct(m)}" if isinstance(b, str) else "n/a"
                  for b, m in zip(g.get(f"{w}_best", []), g.get(f"{w}_mean", []), strict=True)]
    sec.table(out)
    return sec


def _convergence_section(out_dir: str, res: Results, thresholds: Sequence[float]) -> Section:
    sec = Section(out_dir)
    sec.h(2, "Convergence")
    conv = tables.convergence(res, list(thresholds))
    sec.csvs["convergence"] = conv
    sec.p("Epochs and seconds until a seed run's test accuracy first reaches each threshold, mean over the "
          "seeds that reached it (k/n shown when not all did); total = mean wall time of a whole run. "
          "The form of the paper's Table 2.")
    for workload, c in conv.groupby("workload", sort=True):
        sec.h(3, workload)
        rows = []
        for strategy, g in c.groupby("strategy", sort=True):
            row = {"strategy": strategy}
            for r in g.itertuples():
                cell = "not reached" if r.reached == 0 else f"{r.epochs_mean:.1f} ep, {r.seconds_mean:.1f} s"
                if 0 < r.reached < r.n:
                    cell += f" ({r.reached}/{r.n})"
                row[f"{100 * r.threshold:g}%"] = cell
            row["total (s)"] = f"{g['total_seconds_mean'].iloc[0]:.1f}"
            rows.append(row)
        sec.table(pd.DataFrame(rows))
    return sec


def _budget_section(out_dir: str, res: Results) -> Section:
    sec = Section(out_dir)
    sec.h(2, "Tuning budget")
    curves, summary = tables.budget_curves(res)
    sec.csvs["budget_curves"], sec.csvs["budget_summary"] = curves, summary
    metrics = ", ".join(f"`{m}`" for m in sorted(summary["metric"].unique())) if not summary.empty else "-"
    sec.p(f"Best validation accuracy so far ({metrics}, the score the sweep selected by) against tuning trials, "
          "in trial order, "
          "and the expected best of k trials drawn at random without replacement from the trials run "
          "(after Dodge et al. 2019). A best found only in the last trials, or an expected-max curve still "
          "rising at the end, suggests the budget was not enough.")
    for workload, s in summary.groupby("workload", sort=True):
        sec.h(3, workload)
        c = curves[curves["workload"] == workload]
        planned = res.budget.set_index(["workload", "strategy"])["trials_planned"]
        rows = []
        for r in s.itertuples():
            em = c[c["strategy"] == r.strategy].set_index("trials")["expected_max"]
            half = max(1, r.trials // 2)
            rows.append({"strategy": r.strategy,
                         "trials run / planned": f"{r.trials}/{planned.get((workload, r.strategy), '?')}",
                         "best val %": pct(r.best_val), "best at trial": r.best_at_trial,
                         "E[max] 1 trial %": pct(em.get(1, math.nan)),
                         f"E[max] {half} trials %": pct(em.get(half, math.nan)),
                         "diverged": r.diverged, "errored": r.errored})
        sec.table(pd.DataFrame(rows))
        sec.figure(plots.budget_curves(curves, workload), f"budget_{workload}", f"{workload}: tuning budget curves")
    return sec


# ---- entry points -----------------------------------------------------------------------------

def _check_thresholds(thresholds: Sequence[float] | None) -> list[float]:
    values = list(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    bad = [t for t in values if not (isinstance(t, int | float) and 0 < t <= 1)]
    if bad or not values:
        raise ValueError(f"thresholds are test-accuracy fractions in (0, 1], e.g. 0.9,0.95; got {values}")
    return sorted(values)


def build_report(sweep_dirs: list[str], out_dir: str | None = None, *, allow_mixed: bool = False,
                 thresholds: list[float] | None = None, seed: int = 0,
                 margin: float = tables.DEFAULT_MARGIN) -> ReportPaths:
    """Read sweep results and write `report.md`, `report.html`, `csv/*.csv` and `plots/*.{png,svg}`.

    `out_dir` defaults to `<first sweep dir>/report` (`./report` for a URI). Raises
    `FileNotFoundError` for a directory without results, `MixedResultsError` (a ValueError) for
    different spec hashes or unequal budgets unless `allow_mixed`, and `ValueError` for bad thresholds
    or a bad equivalence `margin` (a fraction of accuracy, 0 < margin < 1).
    """
    thresholds = _check_thresholds(thresholds)
    margin = _check_margin(margin)
    res = load_results(list(sweep_dirs), allow_mixed=allow_mixed)
    if res.seed_runs().empty:
        raise ValueError(f"no seed-stage results (status ok or diverged) in {', '.join(sweep_dirs)}")
    if out_dir is None:
        out_dir = "report" if is_uri(sweep_dirs[0]) else os.path.join(sweep_dirs[0], "report")
    out_dir = os.path.abspath(out_dir)
    csv_dir = os.path.join(out_dir, "csv")
    os.makedirs(csv_dir, exist_ok=True)

    all_pairs, fractions = tables.pairwise_all(res, margin=margin), tables.final_lr_fractions(res)
    summary, vs_best = tables.summary_and_vs_best(res, margin=margin, all_pairs=all_pairs, fractions=fractions)
    curves = tables.learning_curves(res)
    # In document order: the figures are drawn (and saved) as the sections are built.
    header = _header(out_dir, res, thresholds, seed, margin)
    workloads = _workload_sections(out_dir, res, summary, vs_best, curves, margin)
    across, ranks = _across_section(out_dir, res, summary, tables.generations(res), seed)
    sections = [
        header,
        workloads,
        across,
        _generation_section(out_dir, summary, ranks),
        _convergence_section(out_dir, res, thresholds),
        _budget_section(out_dir, res),
    ]
    csvs: dict[str, pd.DataFrame] = {"summary": summary, "pairwise_vs_best": vs_best, "pairwise_all": all_pairs,
                                     "learning_curves": curves, "final_lr": fractions}
    for sec in sections:
        csvs.update(sec.csvs)
    files = Section(out_dir)
    files.h(2, "Files")
    files.p("Tables as CSV (accuracies as fractions, full precision) in `csv/`: "
            + ", ".join(f"`{n}.csv`" for n in sorted(csvs)) + ". Figures as PNG and SVG in `plots/`.")
    blocks = [b for sec in [*sections, files] for b in sec.blocks]

    csv_paths = {}
    for name, df in sorted(csvs.items()):
        path = os.path.join(csv_dir, f"{name}.csv")
        df.to_csv(path, index=False, lineterminator="\n")
        csv_paths[name] = path
    md_path, html_path = os.path.join(out_dir, "report.md"), os.path.join(out_dir, "report.html")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(markdown_page(blocks))
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(html_page(blocks))
    figures = {name: paths for sec in sections for name, paths in sec.figures.items()}
    return ReportPaths(out_dir, md_path, html_path, csv_paths, figures)


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin < 1:
        raise ValueError(f"margin is an accuracy fraction in (0, 1), e.g. 0.005 for 0.5 pp; got {margin!r}")
    return float(margin)


def _margin_arg(text: str) -> float:
    """``--margin`` in percentage points, returned as a fraction."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"--margin is in percentage points, a number in (0, 100); got {text!r}")
    return value / 100


def _thresholds_arg(text: str) -> list[float]:
    try:
        return _check_thresholds([float(t) for t in text.split(",") if t.strip()])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the report's arguments (sweep_dirs, --out, --allow-mixed, --thresholds, --margin, --seed) to a parser."""
    parser.add_argument("sweep_dirs", nargs="+", metavar="DIR", help="sweep results directory (or URI)")
    parser.add_argument("--out", default=None, help="output directory (default: DIR/report)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="combine results with different spec hashes or budgets (named in the report)")
    parser.add_argument("--thresholds", type=_thresholds_arg, default=list(DEFAULT_THRESHOLDS),
                        help="comma-separated test-accuracy fractions for the convergence table "
                             "(default 0.6,0.7,0.8,0.9)")
    parser.add_argument("--margin", type=_margin_arg, default=tables.DEFAULT_MARGIN,
                        help="equivalence margin against the best, in percentage points (default 0.5)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the bootstrap resampling of the cross-workload aggregates (default 0)")


def cli_report(args: argparse.Namespace) -> int:
    """Run the report for parsed `add_arguments` args; print the paths; 2 on bad input with a message."""
    try:
        paths = build_report(args.sweep_dirs, args.out, allow_mixed=args.allow_mixed,
                             thresholds=args.thresholds, seed=args.seed, margin=args.margin)
    except (FileNotFoundError, ValueError) as e:  # MixedResultsError is a ValueError
        kind = "mixed results" if isinstance(e, MixedResultsError) else "error"
        print(f"lrsweep report: {kind}: {e}", file=sys.stderr)
        return 2
    print(f"report: {paths.markdown}\nreport: {paths.html}\ntables: {os.path.dirname(next(iter(paths.csv.values())))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m reports DIR [DIR ...] [--out OUT] [--allow-mixed] [--thresholds 0.9,0.95] [--margin 0.5]
    [--seed 0]`."""
    parser = argparse.ArgumentParser(prog="python -m reports", description="Write the report of lrsweep results.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad usage after printing the message
        return int(e.code or 0)
    return cli_report(args)
