"""What a tracker costs a sweep: the wall time of one 4-pair synthetic sweep with each tracker of the
spec's ``tracking`` section against the same sweep with none, all in one run on one local Ray.

Each sweep is run through ``sweeps.launch.run_sweep`` as ``lrsweep run`` runs it (Ray started once
first and not timed, so every sweep finds it warm). The untracked sweep runs first and last; the
baseline is the mean of the two, so a drift of the machine's load shows as their difference. Printed
per tracker: the wall time to the tables (training, with the tracker logging beside it on its
thread), the end (the report rendered for the tracker and the queue drained), the total, the CPU
seconds of the driver's tracking thread (a figure the load of a shared machine does not move) as a
share of the sweep's CPU time, and the total's ratio to the baseline. Target: at most 1.05 with
TensorBoard or a local MLflow store.

    python benchmarks/tracking_cost.py [--epochs 10] [--trials 3] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CPUS = 2
TARGET = 1.05
STRATEGIES = ["fixed_sgd", "adam", "cosine_sgd", "dals"]


def timed_sweep(name: str, tracking: dict, storage: str, args) -> tuple[float, float, float, int]:
    """Run one sweep; return (seconds to the tables, seconds in all, CPU seconds of the driver's
    tracking thread, exit status)."""
    from sweeps.launch import run_sweep
    from sweeps.spec import parse_spec

    spec = parse_spec({
        "name": name, "workloads": ["synthetic"], "strategies": STRATEGIES, "storage": storage,
        "budget": {"trials": args.trials, "epochs": args.epochs, "sampler": "random", "sampler_seed": 0},
        "evaluation": {"seeds": args.seeds}, "tracking": tracking,
    })
    marks = {}

    def out(line: str) -> None:
        if line.startswith("done in"):
            marks["tables"] = time.perf_counter()
        if line.startswith("tracking thread:"):
            marks["cpu"] = float(line.split()[2])
        if line.startswith("warning"):
            print(f"  {name}: {line}", flush=True)

    t0 = time.perf_counter()
    status = run_sweep(spec, out=out)
    end = time.perf_counter()
    return marks.get("tables", end) - t0, end - t0, marks.get("cpu", 0.0), status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    import ray

    from sweeps.ray_setup import init_ray

    storage = tempfile.mkdtemp(prefix="lrsweep-tracking-cost-")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    local = os.path.join(storage, "trackers")
    runs = [("none", {}),
            ("tensorboard", {"tensorboard": {"logdir": os.path.join(local, "tb")}}),
            ("mlflow", {"mlflow": {"tracking_uri": f"sqlite:///{local}/mlflow.db"}}),
            ("wandb", {"wandb": {"mode": "offline", "dir": local}}),
            ("none-again", {})]
    os.makedirs(local, exist_ok=True)
    init_ray(None, CPUS)
    print(f"4 pairs (synthetic x {', '.join(STRATEGIES)}), {args.trials} tune trials + {args.seeds} seeds of "
          f"{args.epochs} epochs each, local Ray with {CPUS} CPUs; storage {storage}", flush=True)
    times = {}
    try:
        for name, tracking in runs:
            tables, total, cpu, status = timed_sweep(name, tracking, storage, args)
            times[name] = (tables, total)
            print(f"{name:12s} to the tables {tables:6.1f}s  end {total - tables:5.1f}s  total {total:6.1f}s  "
                  f"tracking thread {cpu:5.1f} CPU s = {cpu / (total * CPUS):.3f} of the {CPUS} CPUs' time "
                  f"(exit {status})", flush=True)
    finally:
        ray.shutdown()
    baseline = (times["none"][1] + times["none-again"][1]) / 2
    print(f"baseline (none, first and last): {baseline:.1f}s (the two differ by "
          f"{abs(times['none'][1] - times['none-again'][1]):.1f}s)")
    for name in ("tensorboard", "mlflow", "wandb"):
        tables, total = times[name]
        print(f"{name:12s} total / baseline {total / baseline:.3f}  (to the tables alone: "
              f"{tables / ((times['none'][0] + times['none-again'][0]) / 2):.3f})")
    met = all(times[n][1] / baseline <= TARGET for n in ("tensorboard", "mlflow"))
    print(f"target <= {TARGET:.2f} with tensorboard and a local mlflow store: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
