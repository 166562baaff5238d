"""Seconds per population of canonical synthetic members, and a digest of their histories.

Times ``run_population`` of K members (seeds 0..K-1, the strategy's canonical settings) for a few
epochs, best of ``--repeats``, one thread. The digest hashes every member's per-epoch loss and
score, so two trees whose histories agree to the bit print the same digest. To compare a change
against the commit before it, run this once in each tree on the same machine, one after the other:

    python benchmarks/population_step.py --epochs 10 fixed_sgd:5:seed adam:16:tune
    git worktree add /tmp/before HEAD~1 && PYTHONPATH=/tmp/before python benchmarks/population_step.py ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="strategy:K:stage, e.g. dals:16:tune")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sweeps.spec import catalog
    from trainables.population import run_population

    for run in args.runs:
        strategy, k, stage = run.split(":")
        point = catalog.canonical_point("synthetic", {}, strategy, {})
        configs = [{"workload": "synthetic", "strategy": strategy, "seed": seed, "epochs": args.epochs,
                    "stage": stage, "hparams": dict(point)} for seed in range(int(k))]
        run_population(configs[:2])  # imports and first-touch out of the timing
        best, histories = float("inf"), []
        for _ in range(args.repeats):
            start = time.perf_counter()
            histories = run_population(configs)
            best = min(best, time.perf_counter() - start)
        rows = [[(e["train_loss"], e.get("val_acc", e.get("test_acc"))) for e in h] for h in histories]
        digest = hashlib.md5(json.dumps(rows).encode())
        print(f"{strategy:>20} K={k:<3} {stage:5} {best:8.3f} s  {digest.hexdigest()[:8]}", flush=True)


if __name__ == "__main__":
    main()
