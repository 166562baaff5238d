"""The verdict's words for what the seed stage's design guarantees: the selection design's choice
(Kim & Nelson's procedure) or, for a fixed design, the subset that could be the best (MCB).

Each sentence claims exactly what its method proves (docs/SELECTION.md, docs/REPORT.md).
"""

from __future__ import annotations

from lrstats.selection import guarantee
from reports.formatting import pp
from reports.verdict import SelectionVerdict

__all__ = ["mcb_line", "selection_lines", "selection_rows", "selection_warnings", "study_selection_lines",
           "study_selection_rows", "study_selection_warnings"]


def _pp(x: float) -> str:
    return pp(x / 100.0)  # the procedure works in percentage points; pp() takes a fraction


def selection_lines(v: SelectionVerdict) -> list[str]:
    """The selection design's claims on one workload."""
    d, s = v.decision, v.settings
    if d is None:
        return ["**No selection**: no strategy has a seed run to compare."]
    k = len(d.contenders) + len(d.eliminated)
    if not d.stopped:
        lines = [f"**No selection yet**: the procedure has not stopped ({d.reason}); `lrsweep resume` continues it."]
    elif d.capped:
        lines = [f"**Selected: {d.selected}, without a guarantee.** The cap of {s.max_seeds} seeds per strategy "
                 f"stopped Kim & Nelson's procedure before it ended, with {len(d.contenders)} strategies still in "
                 f"contention; {d.selected} has the best mean of them after {d.r} seeds, and nothing more is claimed. "
                 "A higher max_seeds or a wider indifference zone lets the procedure finish."]
    else:
        how = "the only one left" if len(d.contenders) == 1 else \
            f"the best mean when its boundary closed at {d.r} seeds"
        lines = [f"**Selected: {d.selected}** ({how}). Guarantee: {guarantee(k, s)} (in expected final test "
                 "accuracy). It assumes a seed run's score is roughly normal and the same seeds for every strategy; "
                 "the tuning's own chance (which configuration each study found) is not covered (docs/SELECTION.md)."]
    if len(d.contenders) > 1:
        lines.append(f"Still in contention when it {'stopped' if d.stopped else 'paused'} ({d.r} seeds each): "
                     + ", ".join(d.contenders) + ".")
    if d.eliminated:
        behind = {name: by for r in d.rounds for name, by in r.eliminated.items()}
        out = sorted(d.eliminated.items(), key=lambda item: (-item[1], item[0]))
        lines.append("Eliminated (seeds each had when its mean fell out of reach of the leaders): "
                     + "; ".join(f"{name} at {n} (behind {behind.get(name, '?')})" for name, n in out) + ".")
    if v.errored:
        lines.append("Left out of the procedure, a seed run errored: "
                     + "; ".join(f"{name} (seed {seed})" for name, seed in sorted(v.errored.items())) + ".")
    if v.not_run:
        lines.append("No seed runs (no tune trial scored): " + ", ".join(v.not_run) + ".")
    lines.append("The per-strategy means and 95% t intervals in this report are over the seeds each strategy got; "
                 "after adaptive stopping they describe those runs and carry no coverage guarantee "
                 "(docs/REPORT.md).")
    return lines


def selection_warnings(v: SelectionVerdict) -> list[str]:
    """The warnings section's words on one selection workload: whether the procedure ended with its
    guarantee. A selection that stopped on its own makes no claim a number of seeds could fall short of
    (KN takes as many as the data need), so it gets no warning; one the cap stopped, or one not yet
    finished, is said to carry no guarantee, with what would let it finish."""
    d, s = v.decision, v.settings
    if d is None or (d.stopped and not d.capped):
        return []
    contenders = f"{len(d.contenders)} strategies in contention ({', '.join(d.contenders)})"
    if d.capped:
        return [f"{v.workload}: the cap of {s.max_seeds} seeds per strategy stopped the selection with {contenders}: "
                f"the strategy it names carries no guarantee. A higher max_seeds or a wider indifference zone "
                f"(now {s.indifference:g} pp) lets Kim & Nelson's procedure finish."]
    by = f"; it ends by {d.closes_at} seeds per strategy at the latest" if d.closes_at else ""
    return [f"{v.workload}: the selection has not finished ({d.reason}): nothing is selected and no guarantee "
            f"holds yet{by}. `lrsweep resume` continues it."]


def selection_rows(v: SelectionVerdict) -> list[dict]:
    """The verdict CSV's rows for one selection workload."""
    d = v.decision
    if d is None:
        return []
    rows = [{"workload": v.workload, "strategy": name,
             "verdict": "selected" if name == d.selected and d.stopped else "in contention",
             "detail": f"{d.r} seeds" + (", capped: no guarantee" if d.capped else "")} for name in d.contenders]
    rows += [{"workload": v.workload, "strategy": name, "verdict": "eliminated", "detail": f"at {n} seeds"}
             for name, n in sorted(d.eliminated.items())]
    return rows


def study_selection_lines(claims) -> list[str]:
    """The selection design over studies on one workload (``lrstats.studies.study_claims`` with settings): KN's
    selection with its study-level guarantee (or why there is none), the subset that could be the best over
    the first-stage studies, and who was eliminated at how many studies. Nothing the design cannot back."""
    d = claims.decision
    lines = [f"**{claims.lines[0]}**", *claims.lines[1:]]
    if d is not None and d.eliminated:
        behind = {name: by for r in d.rounds for name, by in r.eliminated.items()}
        out = sorted(d.eliminated.items(), key=lambda item: (-item[1], item[0]))
        lines.append("Eliminated by KN over studies (the tuning studies each had when its mean fell out of reach of "
                     "the leaders): " + "; ".join(f"{name} at {n} (behind {behind.get(name, '?')})"
                                                  for name, n in out) + ".")
    lines.append("The per-strategy means and 95% t intervals in this report are over the studies each strategy got; "
                 "after adaptive stopping they describe those studies and carry no coverage guarantee.")
    return lines


def study_selection_rows(workload: str, claims) -> list[dict]:
    """The verdict CSV's rows for one workload under the selection design over studies."""
    d = claims.decision
    if d is None:
        return []
    rows = [{"workload": workload, "strategy": name,
             "verdict": "selected" if name == d.selected and d.stopped and not d.capped else "in contention",
             "detail": f"{d.r} studies" + (", capped: no guarantee" if d.capped else "")} for name in d.contenders]
    rows += [{"workload": workload, "strategy": name, "verdict": "eliminated", "detail": f"at {n} studies"}
             for name, n in sorted(d.eliminated.items())]
    return rows


def study_selection_warnings(workload: str, claims, max_studies: int) -> list[str]:
    """Whether the selection over studies ended with its guarantee (a capped or unfinished one did not)."""
    d = claims.decision
    if d is None or (d.stopped and not d.capped):
        return []
    if d.capped:
        return [f"{workload}: the cap of {max_studies} tuning studies stopped the selection over studies with "
                f"{len(d.contenders)} strategies in contention ({', '.join(d.contenders)}): none is selected with a "
                "guarantee. A higher max_studies or a wider indifference zone lets the procedure finish."]
    return [f"{workload}: the selection over studies has not finished ({d.reason}): no guarantee holds yet. "
            "`lrsweep resume` continues it."]


def mcb_line(rows: list, confidence: float = 0.95, unit: str = "seeds") -> str | None:
    """The fixed design's subset that could be the best, from `reports.verdict.mcb_rows` (None: too few seeds);
    ``unit`` what the rows replicate: seeds, or tuning studies (the claim then covers the tuning)."""
    if len(rows) < 2:
        return None
    could = [r for r in rows if r.could_be_best]
    shown = ", ".join(f"{r.name} ({_pp(r.lower)} to +{_pp(r.upper)} pp)" for r in could)
    return (f"**Could be the best at {confidence:.0%}** (multiple comparisons with the best, Hsu 1984, with "
            f"Bonferroni-paired widths for common {unit}; {rows[0].n} {unit}"
            + (", over tuning and seeds" if unit == "studies" else "") + f"): {len(could)} of {len(rows)}: {shown} "
            "(interval for its mean minus the best of the others). Every other strategy is shown below the best "
            "at that confidence; a strategy in this subset is not shown to be the best.")
