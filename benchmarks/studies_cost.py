"""What several tuning studies cost: `make run`'s spec with S studies against the same spec with one.

Both sweeps run in this process, one after the other, through ``sweeps.commands.launch.run_sweep`` as
``lrsweep run`` runs them (each starts its own local Ray, which is timed: a user pays for it too). The
seed stage is held fixed: the one-study sweep retrains its best configuration with S x N seeds, the
S-study sweep each study's best with N, so both train the same seed runs and differ only in the
tuning. Printed: each sweep's wall seconds and runs, and the ratio S-study / one-study (target at
most 2.0 for S = 3, issue 40). On a machine shared with other work both times rise.

    python benchmarks/studies_cost.py                  # sweeps/quick.yaml, S = 3
    python benchmarks/studies_cost.py --studies 8 --strategies fixed_sgd adam
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET = 2.0


def timed(raw: dict, storage: str, cpus: int) -> tuple[float, int]:
    """Run the spec ``raw`` under ``storage``; return (wall seconds, runs trained)."""
    import pandas as pd

    from sweeps.commands.launch import run_sweep
    from sweeps.spec import parse_spec

    spec = parse_spec({**raw, "storage": storage})
    t0 = time.perf_counter()
    status = run_sweep(spec, num_cpus=cpus, out=lambda line: None)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"sweep {spec.name} ended with status {status}")
    return wall, len(pd.read_parquet(Path(storage) / spec.name / "trials.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "sweeps" / "quick.yaml"))
    parser.add_argument("--studies", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2, help="seeds per study (N)")
    parser.add_argument("--strategies", nargs="*", help="a subset of the spec's strategies")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    raw = yaml.safe_load(Path(args.spec).read_text())
    raw["evaluation"] = {"seeds": args.seeds, "selection": raw.get("evaluation", {}).get("selection", "final")}
    if args.strategies:
        raw["strategies"] = args.strategies
    one = {**raw, "name": "one", "budget": {**raw["budget"], "studies": 1},
           "evaluation": {**raw["evaluation"], "seeds": args.studies * args.seeds}}
    many = {**raw, "name": "many", "budget": {**raw["budget"], "studies": args.studies}}
    with tempfile.TemporaryDirectory(prefix="lrsweep-studies-cost-") as storage:
        wall_one, runs_one = timed(one, storage, args.cpus)
        wall_many, runs_many = timed(many, storage, args.cpus)
    ratio = wall_many / wall_one
    print(f"one study:  {wall_one:7.1f} s, {runs_one} runs ({raw['budget']['trials']} trials, "
          f"{args.studies * args.seeds} seeds per pair)")
    print(f"{args.studies} studies: {wall_many:7.1f} s, {runs_many} runs ({args.studies} x {raw['budget']['trials']} "
          f"trials, {args.studies} x {args.seeds} seeds per pair)")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"ratio {args.studies} studies / one study: {ratio:.2f}x (target <= {TARGET:.1f}x: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
