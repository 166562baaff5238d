"""`lrsweep report` / `python -m reports`: the command line of the sweep report.

The parser imports nothing heavy, so `lrsweep report --help` lists every option at once; the report
itself (`reports.render.build_report`) loads only when it runs.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import math
import os
import sys

from reports.options import DEFAULT_MARGIN, DEFAULT_THRESHOLDS, check_thresholds

DESCRIPTION = ("Statistics, figures and report.md / report.html (self-contained) from sweep Parquet tables: "
               "a verdict per workload first, then the protocol, warnings, figures and the full tables.")


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
        return check_thresholds([float(t) for t in text.split(",") if t.strip()])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the report's arguments (sweep_dirs, --out, --allow-mixed, --thresholds, --margin, --svg, --seed)."""
    parser.add_argument("sweep_dirs", nargs="+", metavar="DIR", help="sweep results directory, <storage>/<name>, "
                        "or a URI (one or more)")
    parser.add_argument("--out", default=None, help="output directory (default: DIR/report)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="combine results with different spec hashes or budgets (named in the report)")
    parser.add_argument("--thresholds", type=_thresholds_arg, default=None,
                        help="comma-separated absolute test-accuracy fractions for the convergence table, e.g. "
                             + ",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS) + " (the paper's Table 2); default: "
                             "90%%, 95%% and 99%% of each workload's best mean final accuracy")
    parser.add_argument("--margin", type=_margin_arg, default=DEFAULT_MARGIN,
                        help="equivalence margin of the TOST, in percentage points "
                             f"(default {100 * DEFAULT_MARGIN:g})")
    parser.add_argument("--svg", action="store_true",
                        help="also write every figure as SVG (vector, with editable text, for a paper)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the bootstrap resampling of the cross-workload aggregates (default 0)")


def cli_report(args: argparse.Namespace) -> int:
    """Run the report for parsed `add_arguments` args; print the paths; 2 on bad input with a message."""
    from reports.load import MixedResultsError
    from reports.render import build_report

    # At exit, the interpreter's last garbage collection walks every object the report made and imported,
    # 0.24-0.29 s after the last file is written; frozen, it skips them (0.05-0.07 s), and the OS frees the
    # memory. Atexit handlers and module teardown still run: only cyclic garbage is left uncollected.
    atexit.register(gc.freeze)

    try:
        paths = build_report(args.sweep_dirs, args.out, allow_mixed=args.allow_mixed,
                             thresholds=args.thresholds, seed=args.seed, margin=args.margin, svg=args.svg)
    except (FileNotFoundError, ValueError) as e:  # MixedResultsError is a ValueError
        kind = "mixed results" if isinstance(e, MixedResultsError) else "error"
        print(f"lrsweep report: {kind}: {e}", file=sys.stderr)
        return 2
    print(f"report: {paths.markdown}\nreport: {paths.html}\ntables: {os.path.dirname(next(iter(paths.csv.values())))}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m reports") -> int:
    """`python -m reports DIR [DIR ...] [--out OUT] [--allow-mixed] [--thresholds 0.9,0.95] [--margin 0.5]
    [--svg] [--seed 0]`."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad usage after printing the message
        return int(e.code or 0)
    return cli_report(args)
