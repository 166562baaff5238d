"""Per-run throughput of population trials against single trials, measured in the same run.

For each workload (the synthetic MLP; the CIFAR-10 ConvNet on generated CIFAR-format images, since
this machine reaches no dataset hub), each strategy (``--strategies``, default fixed_sgd; ``all``:
the 18 built-in ones) and each K, trains K members of one pair (members differing in seed) with
``run_population`` on each update path (``--paths``: ``stacked``, one stacked update of all members,
``strategies/stacked.py``; ``members``, each member's own Stepper) and, as the baseline, one member
with ``run_trial`` (K solo runs take K times as long). Printed per K: seconds per epoch and the
per-run throughput ratio

    (run_trial seconds per epoch) / (population seconds per epoch / K)     (target >= 2.5 at K = 16, MLP)

and, per path, the torch operators dispatched per member per training step (counted with a
``TorchDispatchMode`` over one epoch at that K, evaluation included: on a GPU each is a kernel
launch, so this count carries to CUDA where the seconds do not); then, with several strategies,
each one's ratio at the largest K per path. One torch thread
(``--threads``), as a trial in a sweep has. Each timing is the best of ``--repeats``, solo and
population runs alternating. ``--device cuda`` runs the same on a GPU, with K = 1, 4, 16, 64, 256
by default.

    python benchmarks/population.py                        # both workloads, K = 1, 4, 16, 64
    python benchmarks/population.py --workloads synthetic --ks 1,16
    python benchmarks/population.py --workloads synthetic --strategies all --ks 1,4,16 --repeats 1
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from strategies import list_strategies
from trainables import run_trial
from trainables.population import run_population
from vocab import contracts

STRATEGY = "fixed_sgd"
PATHS = {"stacked": None, "members": False}  # run_population(stacked=...)


def configs(workload: str, strategy: str, k: int, epochs: int, device: str, data_dir: str | None) -> list[dict]:
    options = {"verify_checksums": False, "val_size": 256} if workload == "cifar10" else {}
    return [{"workload": workload, "workload_options": options, "strategy": strategy, "seed": seed,
             "epochs": epochs, "stage": contracts.SEED, "data_dir": data_dir, "device": device} for seed in range(k)]


class _Counting(TorchDispatchMode):
    """Counts every torch operator dispatched below autograd (forward, backward, optimizer math)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def ops_per_member_step(cfgs: list[dict], stacked: bool | None) -> float:
    """Operators dispatched per member per training step over one epoch of ``cfgs`` as a population
    (K = 1: ``run_trial``'s loop, the same code)."""
    counting = _Counting()
    with counting:
        history = run_population([{**c, "epochs": 1} for c in cfgs], stacked=stacked)
    steps = sum(h[0]["steps"] for h in history)
    return counting.ops / steps


def interleaved(repeats: int, *fns) -> list[float]:
    """Best-of-``repeats`` seconds of each of ``fns``, run alternately so that a busy moment of a
    shared machine hits all alike."""
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for j, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[j] = min(best[j], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="synthetic,cifar10")
    parser.add_argument("--ks", default=None, help="comma-separated population sizes (default 1,4,16,64[,256 on cuda])")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cifar-images", type=int, default=1024, help="generated CIFAR-10 training images")
    parser.add_argument("--strategies", default=STRATEGY, help="comma-separated names, or 'all' (the built-in 18)")
    parser.add_argument("--paths", default="stacked,members", help=f"population update paths among {list(PATHS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in (args.ks or ("1,4,16,64,256" if args.device == "cuda" else "1,4,16,64")).split(",")]
    names = ([s.name for s in list_strategies(selection="paper")] if args.strategies == "all"
             else args.strategies.split(","))
    paths = args.paths.split(",")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {unknown}; allowed: {list(PATHS)}")
    summary: dict[tuple[str, str], dict[str, float]] = {}

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = None
        if "cifar10" in args.workloads:
            import sys
            from pathlib import Path

            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from offline_data import write_cifar10

            data_dir = str(write_cifar10(tmp, per_batch=args.cifar_images // 5, n_test=1000))
        for workload in args.workloads.split(","):
            for name in names:
                one = configs(workload, name, 1, args.epochs, args.device, data_dir)[0]
                run_trial(one)  # warm-up: imports, data cache, allocator
                print(f"{workload} ({args.device}, {args.threads} thread(s), {name}, {args.epochs} epoch(s)):")
                for k in ks:
                    cfgs = configs(workload, name, k, args.epochs, args.device, data_dir)
                    runs = [lambda one=one: run_trial(one)]
                    runs += [lambda cfgs=cfgs, path=path: run_population(cfgs, stacked=PATHS[path]) for path in paths]
                    solo, *pops = (t / args.epochs for t in interleaved(args.repeats, *runs))
                    cells = []
                    for path, pop in zip(paths, pops, strict=True):
                        ratio = solo / (pop / k)
                        summary.setdefault((workload, name), {})[path] = ratio
                        ops = ops_per_member_step(cfgs, PATHS[path])
                        cells.append(f"{path} {pop * 1e3:8.1f} ms per epoch, {pop / k * 1e3:7.2f} per run, "
                                     f"x{ratio:5.2f}, {ops:6.1f} ops per member-step")
                    solo_ops = ops_per_member_step([one], None)
                    print(f"  K={k:<4d} run_trial {solo * 1e3:7.1f} ms per epoch, {solo_ops:6.1f} ops per step | "
                          + " | ".join(cells))
        if len(names) > 1:
            print(f"per-run throughput against run_trial at K={ks[-1]} ({', '.join(paths)}):")
            for (workload, name), ratios in summary.items():
                print(f"  {workload:10s} {name:22s} " + "  ".join(f"{path} x{ratios[path]:5.2f}" for path in paths))

if __name__ == "__main__":
    main()
