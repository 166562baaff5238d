"""How much of a sweep's wall time goes to training: a 36-trial synthetic sweep on a local 2-CPU Ray.

The sweep is all 18 strategies x 1 tune trial + 1 seed run, 10 epochs each (36 trials), run through
``sweeps.engine.run_sweep`` exactly as ``lrsweep run`` runs it. Ray is started first and not timed
(it starts once per sweep whatever the sweep's size). Printed ratio:

    wall seconds of the sweep / (sum of the trials' epoch seconds / 2 CPUs)

1.0 means the two CPUs did nothing but train; the target is at most 1.20. The remainder is trial
start-up (data, model), per-epoch reporting and checkpointing, Tune's bookkeeping, the Parquet
writes, and the gap between the two stages. On a machine shared with other work the ratio rises,
because the denominator is measured in the same contended conditions only while trials run.
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
TARGET = 1.20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the results directory")
    args = parser.parse_args()

    import pandas as pd
    import ray

    from sweeps.engine import run_sweep
    from sweeps.spec import parse_spec

    storage = tempfile.mkdtemp(prefix="lrsweep-bench-")
    spec = parse_spec({
        "name": "efficiency",
        "workloads": ["synthetic"],
        "strategies": "all",
        "budget": {"trials": 1, "epochs": args.epochs, "sampler": "random", "sampler_seed": 0},
        "evaluation": {"seeds": 1},
        "storage": storage,
    })
    from sweeps.engine import _init_ray

    _init_ray(None, CPUS)  # the engine's own embedded Ray, started before the clock
    try:
        t0 = time.perf_counter()
        status = run_sweep(spec, out=lambda line: None)
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    trials = pd.read_parquet(os.path.join(storage, "efficiency", "trials.parquet"))
    compute = float(trials.wall_seconds.sum())
    ratio = wall / (compute / CPUS)
    print(f"sweep_efficiency: {len(trials)} trials x {args.epochs} epochs, exit {status}")
    print(f"  wall {wall:.1f}s, trial compute {compute:.1f}s over {CPUS} CPUs = {compute / CPUS:.1f}s")
    print(f"  ratio wall / (compute / {CPUS}) = {ratio:.2f} (target <= {TARGET:.2f}: "
          f"{'met' if ratio <= TARGET else 'NOT met'}; load average now {os.getloadavg()[0]:.1f})")
    if not args.keep:
        import shutil

        shutil.rmtree(storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
