"""``lrsweep status DIR --watch``: a running sweep's per-pair table, its trials in flight and the
verdict so far, refreshed from storage alone (no Ray is started, so it works on a URI while the
sweep runs on a cluster).

The per-pair table is ``sweeps.observers.progress.status``'s; the trials in flight are ``progress.json``'s
``running`` list (the driver rewrites it every ``LIVE_S`` seconds); the verdict so far is the
report's own verdict (``reports.sections.verdict_section``) computed on the seed runs the record
holds, marked provisional: seeds still to come can change it. On a terminal the view is redrawn in
place with rich's ``Live``; otherwise each changed view is printed as plain lines.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable

from lrresults.store import exists
from sweeps.observers.progress import RUNNING, status
from sweeps.record.durable import Record
from sweeps.record.storage import SweepDir, load_sweep_spec, storage_fault
from vocab.contracts import SEED

__all__ = ["provisional_verdict", "view_lines", "watch"]

PROVISIONAL = "PROVISIONAL verdict on the seed runs finished so far (seeds still to come can change it)"


def provisional_verdict(directory: str) -> tuple[int, list[str]]:
    """``(seed runs finished, the report's verdict lines on them)``; no lines while no pair has two."""
    from reports.analysis import analyse
    from reports.document import markdown_page
    from reports.load import load_results
    from reports.options import DEFAULT_MARGIN
    from reports.sections import verdict_section
    from sweeps.record.results import (
        records,  # plain functions: no Ray is started
        write_results,
    )

    spec, sweep = load_sweep_spec(directory)
    runs = [r for r in records(Record(sweep).runs().values()) if r.stage == SEED]
    done = [r for r in runs if r.status != "error"]
    per_pair = {}
    for r in done:
        per_pair[r.pair] = per_pair.get(r.pair, 0) + 1
    if sum(n >= 2 for n in per_pair.values()) < 2:
        return len(done), []
    with tempfile.TemporaryDirectory(prefix="lrsweep-watch-") as tmp:
        write_results(spec, runs, tmp)
        data = analyse(load_results([tmp], allow_mixed=True), margin=DEFAULT_MARGIN, seed=0, thresholds=None)
        page = markdown_page(verdict_section(tmp, data).blocks)
    lines = [line for line in page.splitlines() if line.strip() and not line.startswith("## ")]
    return len(done), lines


class Verdicts:
    """The provisional verdict, recomputed only when the record holds more finished trials."""

    def __init__(self, directory: str) -> None:
        self.directory, self.count, self.lines = directory, -1, []

    def __call__(self) -> list[str]:
        runs = len(Record(SweepDir(self.directory)).runs())
        if runs != self.count:
            self.count = runs
            try:
                _, self.lines = provisional_verdict(self.directory)
            except Exception as err:  # noqa: BLE001 - the view goes on without a verdict
                self.lines = [f"(no provisional verdict: {type(err).__name__}: {err})"]
        return self.lines


def view_lines(directory: str, verdict: Callable[[], list[str]]) -> tuple[list[str], bool]:
    """The view as plain lines, and whether the sweep is over (its tables written)."""
    lines: list[str] = []
    status(directory, lines.append)
    _, sweep = load_sweep_spec(directory)
    running = json.loads(sweep.read_text("progress.json") or "{}").get(RUNNING, [])
    over = exists("budget", sweep.location)  # the tables are written last, budget last
    lines.append(f"in flight: {len(running)} trial(s)" if not over else "in flight: none (the sweep has ended)")
    if not over:
        for r in running:
            runs = f"#{r['first']}" if r["first"] == r["last"] else f"#{r['first']}-{r['last']}"
            best = "-" if r.get("best") is None else f"{100 * r['best']:.1f}"
            lines.append(f"  {r['pair']:38s} {r['stage']:4s} {runs:8s} epoch {r['epoch']}/{r['epochs']}  "
                         f"{r['metric']} % {best}")
    found = verdict()
    if found:
        lines.append(PROVISIONAL if not over else "verdict (all seed runs; `lrsweep report DIR` has the report)")
        lines.extend(f"  {line}" for line in found)
    return lines, over


class PatientView:
    """``view_lines`` that rides out a storage that cannot be read for a while (an object store out of
    reach): the last view under a line saying since when and why, until a read works again."""

    def __init__(self, directory: str, verdict: Callable[[], list[str]]) -> None:
        self.directory, self.verdict = directory, verdict
        self.last: list[str] = []
        self.since: str | None = None

    def __call__(self) -> tuple[list[str], bool]:
        try:
            self.last, over = view_lines(self.directory, self.verdict)
            self.since = None
            return self.last, over
        except OSError as err:
            if storage_fault(err) is None:
                raise
            self.since = self.since or time.strftime("%H:%M:%S")
            why = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            return [f"the storage cannot be read since {self.since} ({why}); retrying", *self.last], False


def watch(directory: str, interval: float = 2.0, out: Callable[[str], None] = print) -> int:
    """Refresh the view every ``interval`` seconds until the sweep's tables are written (or Ctrl-C);
    a storage that stops answering mid-watch is said so and read again at each refresh."""
    load_sweep_spec(directory)  # not a sweep: SweepError before anything is drawn
    view = PatientView(directory, Verdicts(directory))
    try:
        if sys.stdout.isatty():
            return _live(interval, view)
        last: list[str] = []
        while True:
            lines, over = view()
            if lines != last:
                out(f"--- {time.strftime('%H:%M:%S')}")
                for line in lines:
                    out(line)
                sys.stdout.flush()
                last = lines
            if over:
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def _live(interval: float, view: Callable[[], tuple[list[str], bool]]) -> int:
    from rich.console import Group
    from rich.live import Live
    from rich.panel import Panel
    from rich.text import Text

    def frame() -> tuple[Group, bool]:
        lines, over = view()
        cut = next((i for i, line in enumerate(lines) if line.startswith(("PROVISIONAL", "verdict ("))), len(lines))
        parts = [Text("\n".join(lines[:cut]))]
        if cut < len(lines):
            parts.append(Panel(Text("\n".join(line[2:] for line in lines[cut + 1:])), title=lines[cut][:60],
                               border_style="yellow" if lines[cut].startswith("PROVISIONAL") else "green"))
        parts.append(Text(f"refreshed {time.strftime('%H:%M:%S')} every {interval:g}s; Ctrl-C leaves",
                          style="dim"))
        return Group(*parts), over

    drawn, over = frame()
    with Live(drawn, auto_refresh=False, screen=False) as live:
        while not over:
            time.sleep(interval)
            drawn, over = frame()
            live.update(drawn, refresh=True)
    return 0
