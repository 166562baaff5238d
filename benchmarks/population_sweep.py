"""A whole sweep with populations on and off: wall time of ``lrsweep run`` for the same spec, twice.

Runs the spec (default ``sweeps/synthetic.yaml``, the paper's synthetic benchmark tuned fairly) as
it is with ``resources.population: auto``, then with ``resources.population: 1``, each as its own
``lrsweep run`` process on an embedded local Ray with ``--num-cpus`` CPUs, and prints both wall
times (process start to exit) and their ratio:

    wall seconds with population 1 / wall seconds with population auto   (target: auto <= 20 min)

The full spec takes about 45 minutes for both runs on the 2-core machine; ``--strategies`` and
``--trials`` / ``--epochs`` shrink it for a quick look. Run it on an idle machine: the two runs are
sequential, so a busy moment hits one of them only.

    python benchmarks/population_sweep.py                                  # as in BENCHMARKS.md
    python benchmarks/population_sweep.py --strategies fixed_sgd,adam --trials 4 --epochs 5
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
TARGET_SECONDS = 20 * 60


def timed_run(spec: dict, population: int | str, storage: Path, cpus: int) -> tuple[float, int, str]:
    """``lrsweep run`` of ``spec`` with the given population; (wall seconds, exit status, last line)."""
    spec = {**spec, "name": f"{spec['name']}-population-{population}",
            "resources": {**spec.get("resources", {}), "population": population}}
    path = storage / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sweeps.cli", "run", str(path), "--storage", str(storage),
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
    args = parser.parse_args()

    spec = yaml.safe_load(Path(args.spec).read_text())
    if args.strategies:
        spec["strategies"] = args.strategies.split(",")
    for key in ("trials", "epochs"):
        if getattr(args, key) is not None:
            spec["budget"][key] = getattr(args, key)
    with tempfile.TemporaryDirectory(prefix="lrsweep-population-sweep-") as tmp:
        times = {}
        for population in ("auto", 1):
            seconds, code, last = timed_run(spec, population, Path(tmp), args.num_cpus)
            print(f"population {population!s:>4}: {seconds:7.0f} s wall, exit {code} ({last})", flush=True)
            if code != 0:
                raise SystemExit(f"the sweep with population {population} failed (exit {code})")
            times[population] = seconds
    print(f"population 1 / population auto: {times[1] / times['auto']:.2f}x")
    if not (args.strategies or args.trials or args.epochs):  # the target is the full spec's
        verdict = "met" if times["auto"] <= TARGET_SECONDS else "not met"
        print(f"target: population auto within {TARGET_SECONDS // 60} min: {verdict}")


if __name__ == "__main__":
    main()
