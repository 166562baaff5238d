"""How long `lrsweep report` takes on a real sweep, figures included, against two baselines in the same run.

The command is timed as a user runs it (a fresh process: imports, analysis, figures, HTML), three ways,
each ``--repeats`` times, alternating, the fastest of each printed (the least disturbed by other work on
the machine), with the CPU seconds of the whole process tree (the figure workers included), which other
work on a shared machine disturbs less than the wall time:

- **now**: the report as it is;
- **statistics before**: the same command with the two statistics the report spent its time in put
  back as they were (issue 40): the Wilcoxon signed-rank p from ``scipy.stats.wilcoxon``, whose default
  falls back to enumerating all 2^n sign patterns when differences tie or are zero (79 of the `make run`
  sweep's 153 pairs), and the seeds needed for the margin searched one n at a time;
- **figures in turn**: the command pinned to one CPU, where `plots.writing` draws every figure in turn,
  as the report did before it had workers;
- **at REV** (with ``--before REV``): the same command run from the code of git revision REV (extracted
  with ``git archive`` into a temporary directory), for the speed of a change against the code before it.

``--modes`` times only the modes named (comma-separated), e.g. ``--modes now,at`` with ``--before``.

    python benchmarks/report_speed.py results/quick      # after `make run`; the target is 5 s
    python benchmarks/report_speed.py results/quick --before 49d22a1 --modes now,at --repeats 3
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 5.0
MODES = ("now", "statistics before", "figures in turn")


def _before() -> None:
    """Put back the report's statistics as they were before issue 40 (the baseline; same results)."""
    import numpy as np
    import scipy.stats

    from lrstats import stats

    def wilcoxon(d):
        r = scipy.stats.wilcoxon(np.asarray(d, dtype=float), zero_method="wilcox")
        return float(r.statistic), float(r.pvalue)

    def seeds_needed(difference, sd, alpha=stats.ALPHA, power=stats.POWER):
        if not (np.isfinite(sd) and sd > 0 and difference > 0):
            return None
        effect = difference / sd
        z = scipy.stats.norm.ppf(1 - alpha / 2) + scipy.stats.norm.ppf(power)
        n = max(2, math.floor((z / effect) ** 2))
        if n > stats.MAX_SEEDS or stats.paired_t_power(effect, stats.MAX_SEEDS, alpha) < power:
            return stats.MAX_SEEDS + 1
        while n > 2 and stats.paired_t_power(effect, n - 1, alpha) >= power:
            n -= 1
        while stats.paired_t_power(effect, n, alpha) < power:
            n += 1
        return n

    stats.signed_rank_test, stats.seeds_needed = wilcoxon, seeds_needed


def child(mode: str, directory: str, out: str) -> int:
    """One `lrsweep report` in this process (the benchmark runs itself as a child so the baseline can
    patch the statistics before the command runs)."""
    if mode == "statistics before":
        _before()
    from sweeps.commands.cli import main

    return main(["report", directory, "--out", out])


def timed_report(mode: str, directory: str, out: str, code: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process tree) of one report in a fresh process, run from the
    code under ``code`` (this checkout, or a revision's tree for the mode "at REV")."""
    argv = [sys.executable, __file__, "--child", "now" if mode.startswith("at ") else mode, directory, out]
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if mode == "figures in turn" else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=code, check=True, capture_output=True, preexec_fn=pin,
                   env={**os.environ, "PYTHONPATH": str(code)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", default=str(ROOT / "results" / "quick"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also time the report as the code of git revision REV runs it")
    parser.add_argument("--modes", default=None,
                        help="comma-separated modes to time (now, statistics, figures, at); default: all")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DIR", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    if not (Path(args.sweep_dir) / "trials.parquet").exists():
        print(f"{args.sweep_dir}: no trials.parquet; run `make run` first (it writes results/quick)", file=sys.stderr)
        return 2
    cpus = len(os.sched_getaffinity(0))
    modes = [*MODES, *([f"at {args.before}"] if args.before else [])]
    if args.modes:
        wanted = {m.strip() for m in args.modes.split(",")}
        modes = [m for m in modes if m.split()[0] in wanted]
        if "now" not in modes:
            parser.error("--modes must include now (the ratios are against it)")
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as old:
        if args.before:
            archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        for _ in range(args.repeats):
            for mode in modes:
                code = Path(old) if mode.startswith("at ") else ROOT
                times[mode].append(timed_report(mode, args.sweep_dir, out, code))
    wall = {m: min(w for w, _ in t) for m, t in times.items()}
    cpu = {m: min(c for _, c in t) for m, t in times.items()}
    now = wall["now"]
    print(f"lrsweep report {args.sweep_dir}, fastest of {args.repeats} ({cpus} CPUs):")
    print(f"  {'':34s} {'wall':>8s} {'CPU':>8s}   now is faster by (wall, CPU)")
    for mode in modes:
        ratio = "" if mode == "now" else f"   {wall[mode] / now:.2f}x, {cpu[mode] / cpu['now']:.2f}x"
        print(f"  {mode:34s} {wall[mode]:7.2f}s {cpu[mode]:7.2f}s{ratio}")
    print(f"  target {TARGET_S:g} s: {'met' if now <= TARGET_S else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
