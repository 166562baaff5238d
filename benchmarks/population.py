"""Per-run throughput of population trials against single trials, measured in the same run.

For each workload (the synthetic MLP; the CIFAR-10 ConvNet on generated CIFAR-format images, since
this machine reaches no dataset hub) and each K, trains K members of one pair (fixed_sgd, members
differing in seed) with ``run_population`` and, as the baseline, one member with ``run_trial``.
Printed per K: seconds per run-epoch and the throughput ratio

    (run_trial seconds per epoch) / (population seconds per epoch / K)     (target >= 2.5 at K = 16, MLP)

One torch thread (``--threads``), as a trial in a sweep has. Each timing is the best of
``--repeats``, solo and population runs alternating. ``--device cuda`` runs the same on a GPU,
with K = 1, 4, 16, 64, 256 by default.

    python benchmarks/population.py                        # both workloads, K = 1, 4, 16, 64
    python benchmarks/population.py --workloads synthetic --ks 1,16
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch

from trainables import run_trial
from trainables.population import run_population
from vocab import contracts

STRATEGY = "fixed_sgd"


def configs(workload: str, k: int, epochs: int, device: str, data_dir: str | None) -> list[dict]:
    options = {"verify_checksums": False, "val_size": 256} if workload == "cifar10" else {}
    return [{"workload": workload, "workload_options": options, "strategy": STRATEGY, "seed": seed,
             "epochs": epochs, "stage": contracts.SEED, "data_dir": data_dir, "device": device} for seed in range(k)]


def interleaved(repeats: int, solo, population) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of ``solo()`` and ``population()``, run alternately so that a busy
    moment of a shared machine hits both alike."""
    best = [math.inf, math.inf]
    for _ in range(repeats):
        for j, fn in enumerate((solo, population)):
            start = time.perf_counter()
            fn()
            best[j] = min(best[j], time.perf_counter() - start)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="synthetic,cifar10")
    parser.add_argument("--ks", default=None, help="comma-separated population sizes (default 1,4,16,64[,256 on cuda])")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cifar-images", type=int, default=1024, help="generated CIFAR-10 training images")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in (args.ks or ("1,4,16,64,256" if args.device == "cuda" else "1,4,16,64")).split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = None
        if "cifar10" in args.workloads:
            import sys
            from pathlib import Path

            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from offline_data import write_cifar10

            data_dir = str(write_cifar10(tmp, per_batch=args.cifar_images // 5, n_test=1000))
        for workload in args.workloads.split(","):
            one = configs(workload, 1, args.epochs, args.device, data_dir)[0]
            run_trial(one)  # warm-up: imports, data cache, allocator
            print(f"{workload} ({args.device}, {args.threads} thread(s), {STRATEGY}, {args.epochs} epoch(s)):")
            for k in ks:
                cfgs = configs(workload, k, args.epochs, args.device, data_dir)
                solo, pop = interleaved(args.repeats, lambda one=one: run_trial(one),
                                        lambda cfgs=cfgs: run_population(cfgs))
                solo, pop = solo / args.epochs, pop / args.epochs
                print(f"  K={k:<4d} run_trial {solo * 1e3:8.1f} ms per epoch | population {pop * 1e3:9.1f} ms per "
                      f"epoch, {pop / k * 1e3:8.2f} ms per run-epoch | throughput x{solo / (pop / k):.2f}")

if __name__ == "__main__":
    main()
