"""Time one optimizer step of DALS (3 variants), LARS and SAM against torch SGD in the same run.

    .venv/bin/python benchmarks/optimizer_step.py [--steps 300] [--device auto|cpu|cuda]

Parameter sets: the synthetic MLP (64-128-128-128-10) and the CIFAR-10 ConvNet (3 x conv3x3
32/64/128 + FC 2048-256-10), as layer groups. Gradients are pre-filled once; each strategy runs
through its registry Stepper with a closure that only returns a fixed loss tensor, so what is
timed is the whole per-step cost a strategy adds to forward/backward: the LR schedule, DALS's
phase and filter, the trust ratios, the update. For SAM this counts the perturbation, the
restore and the SGD step, but NOT its second forward/backward pass (the closure is a no-op).
The baseline is ``torch.optim.SGD(momentum=0.9, foreach=True)`` called directly. One thread,
steps interleaved round-robin so background load hits every optimizer alike; medians reported.
Target: a DALS step at most 2.0x an SGD step on both parameter sets.
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from strategies import get_strategy

STRATEGIES = ("dals", "dals_fast", "dals_acc", "lars", "sam")
TARGET = 2.0


def mlp_groups() -> list[list[nn.Parameter]]:
    """Synthetic workload: one group per Linear."""
    sizes = [64, 128, 128, 128, 10]
    return [list(nn.Linear(a, b).parameters()) for a, b in zip(sizes, sizes[1:], strict=False)]


def convnet_groups() -> list[list[nn.Parameter]]:
    """CIFAR-10 workload: one group per conv block, then the two-layer head as the top group."""
    convs = [nn.Conv2d(a, b, 3, padding=1) for a, b in ((3, 32), (32, 64), (64, 128))]
    head = [nn.Linear(2048, 256), nn.Linear(256, 10)]
    return [list(conv.parameters()) for conv in convs] + [[p for layer in head for p in layer.parameters()]]


def fill_grads(groups: list[list[nn.Parameter]], device: torch.device) -> list[list[nn.Parameter]]:
    generator = torch.Generator().manual_seed(0)
    moved = []
    for group in groups:
        moved.append([])
        for p in group:
            q = nn.Parameter(p.detach().to(device))
            q.grad = (1e-2 * torch.randn(p.shape, generator=generator)).to(device)
            moved[-1].append(q)
    return moved


def make_steps(make_groups: Callable, device: torch.device) -> dict[str, Callable[[], None]]:
    """One zero-argument step function per timed optimizer, each on its own copy of the parameters."""
    loss = torch.tensor(1.0, device=device)
    steps = {}
    groups = fill_grads(make_groups(), device)
    sgd = torch.optim.SGD([p for g in groups for p in g], lr=0.01, momentum=0.9, foreach=True)
    steps["sgd"] = sgd.step
    for name in STRATEGIES + ("dals (per-tensor)",):
        groups = fill_grads(make_groups(), device)
        stepper = get_strategy(name.split()[0]).build(groups, None, total_steps=10**6, steps_per_epoch=1000)
        if name.endswith("(per-tensor)"):
            stepper.update.foreach = False
        # SAM's library zeroes grads after its first pass; the no-op closure puts them back.
        grads = [p.grad for g in groups for p in g]
        params = [p for g in groups for p in g]

        def closure(params=params, grads=grads) -> torch.Tensor:
            for p, grad in zip(params, grads, strict=True):
                p.grad = grad
            return loss

        steps[name] = lambda stepper=stepper, closure=closure: stepper.step(closure)
    return steps


def time_steps(steps: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per step, steps interleaved round-robin after a warmup."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(20):
        for step in steps.values():
            step()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            sync()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per optimizer (median taken)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: CPU, plus CUDA when a GPU is present")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]

    print(f"torch {torch.__version__}, 1 thread, median of {args.steps} steps; SAM's second "
          "forward/backward not counted")
    print(f"{'device':6} {'params':8} {'optimizer':18} {'median us':>10} {'x SGD':>7}")
    verdicts = []
    for device_name in devices:
        device = torch.device(device_name)
        for label, make_groups in (("mlp", mlp_groups), ("convnet", convnet_groups)):
            medians = time_steps(make_steps(make_groups, device), args.steps, device)
            for name, seconds in medians.items():
                print(f"{device_name:6} {label:8} {name:18} {seconds * 1e6:10.1f} {seconds / medians['sgd']:7.2f}")
            ratio = medians["dals"] / medians["sgd"]
            verdicts.append(f"{device_name}/{label}: dals = {ratio:.2f}x SGD "
                            f"({'meets' if ratio <= TARGET else 'MISSES'} the {TARGET}x target)")
    print("\n".join(["", *verdicts]))


if __name__ == "__main__":
    main()
