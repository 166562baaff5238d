"""How long `lrsweep report` takes on a real sweep, figures included, and what rendering the figures in
worker processes buys.

The command is timed as a user runs it (a fresh process: imports, analysis, figures, HTML). The
baseline in the same run is that command with the process pinned to one CPU, where `plots.writing`
draws every figure in turn, as the report did before it had workers. Each is run ``--repeats`` times,
alternating, and the fastest of each is printed (the least disturbed by other work on the machine):

    python benchmarks/report_speed.py results/quick      # after `make run`; the target is 5 s
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 5.0


def timed_report(directory: str, out: str, one_cpu: bool, svg: bool) -> float:
    argv = [sys.executable, "-m", "sweeps.cli", "report", directory, "--out", out, *(["--svg"] if svg else [])]
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_cpu else None
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, preexec_fn=pin,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", default=str(ROOT / "results" / "quick"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--svg", action="store_true", help="time `lrsweep report --svg`")
    args = parser.parse_args()
    if not (Path(args.sweep_dir) / "trials.parquet").exists():
        print(f"{args.sweep_dir}: no trials.parquet; run `make run` first (it writes results/quick)", file=sys.stderr)
        return 2
    cpus = len(os.sched_getaffinity(0))
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            for one_cpu in (True, False):
                times[one_cpu].append(timed_report(args.sweep_dir, out, one_cpu, args.svg))
    serial, parallel = min(times[True]), min(times[False])
    label = "lrsweep report" + (" --svg" if args.svg else "")
    print(f"{label} {args.sweep_dir}, fastest of {args.repeats}:")
    print(f"  figures in turn (one CPU):        {serial:6.2f} s")
    print(f"  figures in workers ({cpus} CPUs):    {parallel:6.2f} s   ratio {serial / parallel:.2f}")
    print(f"  target {TARGET_S:g} s: {'met' if parallel <= TARGET_S else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
