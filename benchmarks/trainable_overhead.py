"""Overhead of the trial loop against a minimal hand-written PyTorch loop, in the same run.

Both train the synthetic workload (seed stage: 6400 rows, batch 64, 1600 test rows scored once per
epoch) with the same MLP, data and SGD settings (fixed_sgd: lr 0.01, momentum 0.9, weight decay
1e-4), in one process on one thread. Printed: the time of each and the ratios

    run_trial / minimal loop            (target <= 1.10)
    run_trial / run_trial without the per-layer diagnostics (``layers=False``; target <= 1.03)
    run_trial / run_trial without the test predictions (``predictions=False``; target <= 1.01)
    Ray Tune trial / minimal loop       (start-up included: ray.init, Tuner.fit; target <= 1.25)

Each in-process timing is the best of ``--repeats`` interleaved runs (a shared machine is noisy); the ratio of
process CPU times is printed too, being steadier than wall time when other jobs share the cores.

    python benchmarks/trainable_overhead.py            # 80 epochs, as in the paper
    python benchmarks/trainable_overhead.py --epochs 5 # quick check
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.nn import functional as F

from trainables import run_trial, trainable
from trainables.workloads.synthetic import MLP, N_TRAIN, generate
from vocab import contracts

BATCH = 64
SEED = 0


def minimal_loop(epochs: int) -> float:
    """The baseline: tensors sliced by hand, torch.optim.SGD, one evaluation per epoch. Returns the
    final test accuracy."""
    x, y = generate()
    train_x, train_y, test_x, test_y = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]
    torch.manual_seed(SEED)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(SEED)
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        loss_sum = torch.zeros(())
        order = torch.randperm(N_TRAIN, generator=generator)
        for start in range(0, N_TRAIN, BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
        model.eval()
        with torch.no_grad():
            accuracy = (model(test_x).argmax(dim=1) == test_y).float().mean().item()
        loss_sum.item()
    return accuracy


def config(epochs: int) -> dict:
    return {"workload": "synthetic", "strategy": "fixed_sgd", "stage": contracts.SEED, "seed": SEED, "epochs": epochs}


def ray_trial(epochs: int) -> float:
    """Start a local Ray, run the same trial through tune.Tuner, shut down; returns the final test
    accuracy."""
    import ray
    from ray import tune

    from sweeps.engine.experiment import checkpoint_every

    # Checkpoint as a sweep does (a few times per trial, the latest kept), not after every epoch.
    # "local": a Ray of its own, never a `ray start` cluster that /tmp/ray/ray_current_cluster still names
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as storage:
            tuner = tune.Tuner(
                trainable, param_space={**config(epochs), "checkpoint_every": checkpoint_every(epochs)},
                run_config=tune.RunConfig(storage_path=storage, name="overhead", verbose=0,
                                          checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
            )
            result = tuner.fit()[0]
            if result.error is not None:
                raise result.error
            return result.metrics["test_accuracy"]
    finally:
        ray.shutdown()


def predictions_work(epochs: int, epoch_seconds: float) -> None:
    """The work the test predictions add to a seed run, timed alone: one ``torch.cat`` of the eval
    batches' argmax per epoch and one ``vocab.predictions.pack`` at the last. On a loaded machine the
    whole-run ratio cannot resolve it; this can."""
    import timeit

    import numpy as np

    from vocab.predictions import pack

    rows = torch.randint(0, 10, (1600,))
    cat = min(timeit.repeat(lambda: torch.cat([rows]), number=2000, repeat=5)) / 2000
    packed = min(timeit.repeat(lambda: pack(rows.numpy(), np.asarray(rows), 10), number=200, repeat=5)) / 200
    added = epochs * cat + packed
    print(f"test predictions' own work: {1e6 * cat:.1f} us per epoch + {1e6 * packed:.1f} us at the end = "
          f"{1e3 * added:.3f} ms per run; ratio {1 + added / (epochs * epoch_seconds):.6f} to the run")


def timed(fn) -> tuple[float, float, object]:
    """Wall time, process CPU time and result of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - start_cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=2, help="in-process timings: best of this many")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Tune timing")
    args = parser.parse_args()
    torch.set_num_threads(1)

    # Interleaved, best of each: load from other jobs drifts over minutes.
    runs = [(timed(lambda: minimal_loop(args.epochs)), timed(lambda: run_trial(config(args.epochs))),
             timed(lambda: run_trial(config(args.epochs), layers=False)),
             timed(lambda: run_trial(config(args.epochs), predictions=False)))
            for _ in range(args.repeats)]
    base, base_cpu = min(r[0][0] for r in runs), min(r[0][1] for r in runs)
    ours, ours_cpu = min(r[1][0] for r in runs), min(r[1][1] for r in runs)
    base_acc, history = runs[-1][0][2], runs[-1][1][2]
    print(f"synthetic, fixed_sgd, {args.epochs} epochs, 1 thread")
    print(f"minimal loop      {base:7.2f} s   final test accuracy {base_acc:.4f}")
    print(f"run_trial         {ours:7.2f} s   final test accuracy {history[-1]['test_accuracy']:.4f}")
    print(f"ratio run_trial / minimal loop: {ours / base:.3f}   (target <= 1.10)")
    # CPU time is the steadier number on a shared machine (other processes do not inflate it).
    print(f"ratio of process CPU time:      {ours_cpu / base_cpu:.3f}")
    bare, bare_cpu = min(r[2][0] for r in runs), min(r[2][1] for r in runs)
    print(f"run_trial without layers {bare:7.2f} s")
    print(f"ratio run_trial / without the per-layer diagnostics: {ours / bare:.3f} "
          f"(CPU time {ours_cpu / bare_cpu:.3f}; target <= 1.03)")
    blind, blind_cpu = min(r[3][0] for r in runs), min(r[3][1] for r in runs)
    print(f"run_trial without test predictions {blind:7.2f} s")
    print(f"ratio run_trial / without the test predictions: {ours / blind:.3f} "
          f"(CPU time {ours_cpu / blind_cpu:.3f}; target <= 1.01)")
    predictions_work(args.epochs, ours / args.epochs)
    if not args.no_ray:
        start = time.perf_counter()
        ray_acc = ray_trial(args.epochs)
        through_ray = time.perf_counter() - start
        print(f"Ray Tune trial    {through_ray:7.2f} s   final test accuracy {ray_acc:.4f} (start-up included)")
        print(f"ratio Ray Tune / minimal loop: {through_ray / base:.3f}   (target <= 1.25)")


if __name__ == "__main__":
    main()
