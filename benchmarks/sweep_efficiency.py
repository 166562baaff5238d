"""How much of a sweep's wall time goes to training: a 36-trial synthetic sweep on a local 2-CPU Ray.

The sweep is all 18 strategies x 1 tune trial + 1 seed run, 10 epochs each (36 trials), run through
``sweeps.commands.launch.run_sweep`` exactly as ``lrsweep run`` runs it. Ray is started first and not timed
(it starts once per sweep whatever the sweep's size). Printed ratio:

    wall seconds of the sweep / (sum of the trials' epoch seconds / 2 CPUs)

1.0 means the two CPUs did nothing but train; the target is at most 1.20. The remainder is the
sweep's fixed start-up (Tune's set-up, starting one trial actor per CPU, and each actor importing
torch and the strategies inside its first trial), per-trial set-up, reporting and checkpointing,
Tune's bookkeeping, the tail where one CPU waits for the last trial, and the Parquet writes.

The fixed start-up does not grow with the sweep, so it is measured in the same run as a baseline:
the wall time minus the compute of a 1-pair sweep (one tune trial and one seed run of one epoch).
The second ratio subtracts it from the big sweep's wall time: what the engine costs per trial once
its actors are up. On a machine shared with other work both ratios rise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CPUS = 2
TARGET = 1.20


def timed_sweep(name: str, strategies, epochs: int, storage: str) -> tuple[float, float, int, int]:
    """Run one sweep; return (wall seconds, summed trial epoch seconds, trials, exit status)."""
    import pandas as pd

    from sweeps.commands.launch import run_sweep
    from sweeps.spec import parse_spec

    spec = parse_spec({
        "name": name,
        "workloads": ["synthetic"],
        "strategies": strategies,
        "budget": {"trials": 1, "epochs": epochs, "sampler": "random", "sampler_seed": 0},
        "evaluation": {"seeds": 1},
        "storage": storage,
    })
    t0 = time.perf_counter()
    status = run_sweep(spec, out=lambda line: None)
    wall = time.perf_counter() - t0
    trials = pd.read_parquet(os.path.join(storage, name, "trials.parquet"))
    return wall, float(trials.wall_seconds.sum()), len(trials), status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the results directory")
    args = parser.parse_args()

    import ray

    from sweeps.engine.ray_setup import init_ray

    storage = tempfile.mkdtemp(prefix="lrsweep-bench-")
    init_ray(None, CPUS)  # the engine's own embedded Ray, started before the clock
    try:
        base_wall, base_compute, _, _ = timed_sweep("startup", ["fixed_sgd"], 1, storage)
        wall, compute, n, status = timed_sweep("efficiency", "all", args.epochs, storage)
    finally:
        ray.shutdown()
    startup = base_wall - base_compute
    ideal = compute / CPUS
    ratio = wall / ideal
    print(f"sweep_efficiency: {n} trials x {args.epochs} epochs, exit {status}")
    print(f"  wall {wall:.1f}s, trial compute {compute:.1f}s over {CPUS} CPUs = {ideal:.1f}s")
    print(f"  ratio wall / (compute / {CPUS}) = {ratio:.2f} (target <= {TARGET:.2f}: "
          f"{'met' if ratio <= TARGET else 'NOT met'}; load average now {os.getloadavg()[0]:.1f})")
    print(f"  fixed start-up, from a 1-pair sweep in the same run: {startup:.1f}s "
          f"(wall {base_wall:.1f}s, compute {base_compute:.1f}s)")
    print(f"  ratio without it (wall - start-up) / (compute / {CPUS}) = {(wall - startup) / ideal:.2f}")
    if args.keep:
        print(f"  results kept in {storage}")
    else:
        shutil.rmtree(storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
