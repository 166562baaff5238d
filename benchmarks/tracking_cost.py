"""What a tracker costs a sweep: the wall time of one 4-pair synthetic sweep with each tracker of the
spec's ``tracking`` section against the same sweep with none, in rounds on one local Ray.

Each sweep is run through ``sweeps.commands.launch.run_sweep`` as ``lrsweep run`` runs it (Ray started once
first and not timed, so every sweep finds it warm). A round runs the untracked sweep first and last
and the three tracked ones between, in an order rotated each round; a tracker's ratio in a round is
its total over the mean of that round's two untracked sweeps, so a drift of the machine's load shows
as their difference. Each MLflow sweep gets its own new sqlite store (the default, in the sweep
directory), so each pays the store's creation. Printed per sweep: the wall time to the tables
(training, with the tracker logging beside it), the end (the report rendered for the tracker and
the trackers closed), the total and the CPU seconds of the tracking process; then each tracker's
median ratio over the rounds and their range. Target: at most 1.05 with TensorBoard or a local
MLflow store.

With the default ``--cpus 2`` on a 2-core machine the trials take every core, so every CPU second
the tracking process spends is taken from them; ``--cpus 1`` leaves the driver and its tracking
process a core of their own, as a cluster's head node does when the trials run on the workers.

    python benchmarks/tracking_cost.py [--rounds 3] [--epochs 10] [--cpus 2] [--trials 3] [--seeds 3]
        [--trackers tensorboard mlflow wandb]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 1.05
STRATEGIES = ["fixed_sgd", "adam", "cosine_sgd", "dals"]


def timed_sweep(name: str, tracking: dict, storage: str, args) -> tuple[float, float, float, int]:
    """Run one sweep; return (seconds to the tables, seconds in all, CPU seconds of the tracking
    process, exit status)."""
    from sweeps.commands.launch import run_sweep
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
        if line.startswith("tracking process:"):
            marks["cpu"] = float(line.split()[2])
        if line.startswith("warning"):
            print(f"  {name}: {line}", flush=True)

    t0 = time.perf_counter()
    status = run_sweep(spec, out=out)
    end = time.perf_counter()
    return marks.get("tables", end) - t0, end - t0, marks.get("cpu", 0.0), status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2,
                        help="Ray's CPUs for the trials; fewer than the machine has leaves the driver and its "
                             "tracking process a core of their own, as on a cluster's head node")
    parser.add_argument("--trackers", nargs="+", choices=["tensorboard", "mlflow", "wandb"],
                        default=["tensorboard", "mlflow", "wandb"])
    args = parser.parse_args()
    import ray

    from sweeps.engine.ray_setup import init_ray

    storage = tempfile.mkdtemp(prefix="lrsweep-tracking-cost-")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    local = os.path.join(storage, "trackers")
    trackers = {"tensorboard": {"tensorboard": {"logdir": os.path.join(local, "tb")}},
                "mlflow": {"mlflow": True},  # a new sqlite store in each sweep's directory
                "wandb": {"wandb": {"mode": "offline", "dir": local}}}
    os.makedirs(local, exist_ok=True)
    init_ray(None, args.cpus)
    print(f"4 pairs (synthetic x {', '.join(STRATEGIES)}), {args.trials} tune trials + {args.seeds} seeds of "
          f"{args.epochs} epochs each, local Ray with {args.cpus} CPUs (the machine has {os.cpu_count()}), "
          f"{args.rounds} rounds; storage {storage}", flush=True)
    names = args.trackers
    ratios: dict[str, list[float]] = {n: [] for n in names}
    try:
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            totals = {}
            for name in ["none", *order, "none-again"]:
                tables, total, cpu, status = timed_sweep(f"{name}-{r}", trackers.get(name, {}), storage, args)
                totals[name] = total
                print(f"round {r + 1} {name:12s} to the tables {tables:6.1f}s  end {total - tables:5.1f}s  "
                      f"total {total:6.1f}s  tracking process {cpu:5.1f} CPU s (exit {status})", flush=True)
            baseline = (totals["none"] + totals["none-again"]) / 2
            for name in names:
                ratios[name].append(totals[name] / baseline)
            print(f"round {r + 1}: baseline {baseline:.1f}s (its two sweeps differ by "
                  f"{abs(totals['none'] - totals['none-again']):.1f}s); "
                  + ", ".join(f"{n} {ratios[n][-1]:.3f}" for n in names), flush=True)
    finally:
        ray.shutdown()
    for name in names:
        print(f"{name:12s} total / baseline: median {statistics.median(ratios[name]):.3f} over {args.rounds} "
              f"rounds (range {min(ratios[name]):.3f}-{max(ratios[name]):.3f})")
    met = all(statistics.median(ratios[n]) <= TARGET for n in ("tensorboard", "mlflow") if n in names)
    print(f"target <= {TARGET:.2f} with tensorboard and a local mlflow store (medians): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
