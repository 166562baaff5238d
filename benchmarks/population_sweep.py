"""A whole sweep with populations on and off: wall time of ``lrsweep run`` for the same spec, twice.

Runs the spec (default ``sweeps/synthetic.yaml``, the paper's synthetic benchmark tuned fairly) with
``resources.population: --population`` (default auto), then with ``resources.population: 1``, each
as its own ``lrsweep run`` process on an embedded local Ray with ``--num-cpus`` CPUs, and prints both
wall times (process start to exit) and their ratio:

    wall seconds with population 1 / wall seconds with populations   (targets: synthetic.yaml within
                                                                      12 min; population 16 >= 1.8x)

then compares each run with its twin (same pair, stage and trial index, same hyperparameters): the
largest difference of their final accuracies, and the mean difference with its 95% t interval
(populations are bit-identical to solo runs on the CPU, so both should be 0).

The full spec takes about 45 minutes for both runs on the 2-core machine; ``--strategies`` and
``--trials`` / ``--epochs`` shrink it for a quick look. Run it on an idle machine: the two runs are
sequential, so a busy moment hits one of them only.

    python benchmarks/population_sweep.py                                  # as in BENCHMARKS.md
    python benchmarks/population_sweep.py --strategies fixed_sgd,adam --trials 4 --epochs 5
    python benchmarks/population_sweep.py --strategies fixed_sgd,adam,dals,sam --trials 16 --epochs 10 \
        --population 16 --sampler qmc --seeds 4
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 12 * 60


def timed_run(spec: dict, population: int | str, storage: Path, cpus: int) -> tuple[float, int, str]:
    """``lrsweep run`` of ``spec`` with the given population; (wall seconds, exit status, last line)."""
    spec = {**spec, "name": f"{spec['name']}-population-{population}",
            "resources": {**spec.get("resources", {}), "population": population}}
    path = storage / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sweeps.commands.cli", "run", str(path), "--storage", str(storage),
                           "--num-cpus", str(cpus)], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()  # stdout: the sweep's own lines
    return seconds, done.returncode, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "sweeps" / "synthetic.yaml"))
    parser.add_argument("--strategies", default=None, help="comma-separated subset (default: the spec's)")
    parser.add_argument("--trials", type=int, default=None, help="override budget.trials")
    parser.add_argument("--epochs", type=int, default=None, help="override budget.epochs")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--population", default="auto", help="runs per trial of the first run: K or auto")
    parser.add_argument("--sampler", default=None, help="override budget.sampler")
    parser.add_argument("--seeds", type=int, default=None, help="override evaluation.seeds")
    args = parser.parse_args()
    population = args.population if args.population == "auto" else int(args.population)

    spec = yaml.safe_load(Path(args.spec).read_text())
    if args.strategies:
        spec["strategies"] = args.strategies.split(",")
    for key in ("trials", "epochs", "sampler"):
        if getattr(args, key) is not None:
            spec["budget"][key] = getattr(args, key)
    if args.seeds is not None:
        spec.setdefault("evaluation", {})["seeds"] = args.seeds
    with tempfile.TemporaryDirectory(prefix="lrsweep-population-sweep-") as tmp:
        times = {}
        for k in (population, 1):
            seconds, code, last = timed_run(spec, k, Path(tmp), args.num_cpus)
            print(f"population {k!s:>4}: {seconds:7.0f} s wall, exit {code} ({last})", flush=True)
            if code != 0:
                raise SystemExit(f"the sweep with population {k} failed (exit {code})")
            times[k] = seconds
        twins(Path(tmp) / f"{spec['name']}-population-{population}", Path(tmp) / f"{spec['name']}-population-1")
    print(f"population 1 / population {population}: {times[1] / times[population]:.2f}x")
    if not (args.strategies or args.trials or args.epochs):  # the target is the full spec's
        verdict = "met" if times[population] <= TARGET_SECONDS else "not met"
        print(f"target: population {population} within {TARGET_SECONDS // 60} min: {verdict}")


def twins(with_populations: Path, alone: Path) -> None:
    """Each run against its twin of the other sweep: same pair, stage, trial index and hyperparameters."""
    import pandas as pd
    import scipy.stats

    keys = ["workload", "strategy", "stage", "trial_index"]
    a, b = (pd.read_parquet(d / "trials.parquet") for d in (with_populations, alone))
    both = a.merge(b, on=keys, suffixes=("_pop", "_solo"))
    both = both[both["hparams_pop"] == both["hparams_solo"]]
    score = lambda side: both[f"test_accuracy_final_{side}"].fillna(both[f"val_accuracy_final_{side}"])  # noqa: E731
    diff = score("pop") - score("solo")
    lo, hi = scipy.stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=scipy.stats.sem(diff)) \
        if len(diff) > 1 and diff.std() > 0 else (diff.mean(), diff.mean())
    print(f"twins: {len(both)} of {len(a)} runs with the same hyperparameters in both sweeps; final accuracy "
          f"population - alone: max |difference| {diff.abs().max():.4g}, mean {diff.mean():.4g} "
          f"[{lo:.4g}, {hi:.4g}] (95% t interval)")


if __name__ == "__main__":
    main()
