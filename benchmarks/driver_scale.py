"""Whether the driver's cost per trial stays flat as a sweep grows: sweeps of tiny trials, timed per trial.

A plugin workload shipped beside this file (``benchmarks/tiny_workload.py``) trains in milliseconds,
so a sweep of it measures the driver: Ray Tune's controller, the searcher, the record writer and
the progress callback. The sweep is every strategy (``all``) x T tune trials of 1 epoch + 3 seed
runs, populations off, on a local Ray of 2 CPUs, run through ``sweeps.commands.launch.run_sweep`` exactly as
``lrsweep run`` runs it; ``--trials`` sets the total (``all`` x (T + 3)), so 1,032 is the issue's
sweep (T = 40), 3,000 (T = 122) and 10,008 (T = 414) the larger ones.

Printed per sweep: the driver's wall and CPU (this process's, which runs Tune) per trial over
windows of finished trials early (100-200) and late (the last full window before the last 100), the
ratio late/early, the sustained rate (trials per second over the late window) and, from it, how
many GPUs one driver keeps busy when each trial holds one GPU for ``L`` seconds (GPUs = rate x L).
``L`` is measured here on the CPU for a paper-length synthetic trial (``--trial-epochs``, 80 as in
``sweeps/paper.yaml``); a GPU trial's length is not measured on this machine, so the GPU figure at
a given ``L`` is an estimate that holds for any workload whose trials are that long.

``--track NAME`` runs the sweep again with that tracker (a local store) and prints the ratio of the
two wall times to the sweep's return, which waits for the tracker to take every run.

``--baseline`` runs the same sweep first with the driver's earlier checkpoint setting (Tune keeps
one checkpoint per trial, ``CheckpointConfig(num_to_keep=1)``, which makes Tune snapshot the whole
experiment after every trial checkpoint, and the default snapshot period), so both lines come
from the same machine and the same hour.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CPUS = 2
WINDOW = 100
TRACKERS = {  # --track: a local store of each tracker, under the benchmark's storage
    "tensorboard": lambda storage: {"logdir": os.path.join(storage, "tb")},
    "mlflow": lambda storage: {"tracking_uri": f"sqlite:///{storage}/mlflow.db"},
    "wandb": lambda storage: {"mode": "offline", "dir": storage},
}


def old_setting() -> None:
    """Restore the driver's setting before issue 35: Tune keeps one checkpoint per trial (and so
    snapshots the experiment after each), at Tune's own snapshot period."""
    from ray import tune

    from sweeps.engine import experiment, ray_setup

    def run_config(sweep, progress, writer):
        config = ray_setup.run_config(sweep, progress, writer)
        config.checkpoint_config = tune.CheckpointConfig(num_to_keep=1)
        config.callbacks = [c for c in config.callbacks if not isinstance(c, ray_setup.LatestCheckpointOnly)]
        return config

    experiment.run_config = run_config
    ray_setup.SNAPSHOT_PERIOD_S = None
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"  # as the driver set it then


def timed_sweep(name: str, trials: int, sampler: str, storage: str,
                tracking: dict | None = None) -> list[tuple[float, float]]:
    """Run the sweep; return (wall, driver CPU) seconds at each finished trial, from the start, and
    last at the sweep's return (its tables written and its trackers closed)."""
    from strategies import list_strategies
    from sweeps.commands.launch import run_sweep
    from sweeps.spec import parse_spec

    per_pair = max(1, round(trials / len(list_strategies())) - 3)
    spec = parse_spec({
        "name": name, "plugins": [str(HERE / "tiny_workload.py")], "workloads": ["tiny"], "strategies": "all",
        "budget": {"trials": per_pair, "epochs": 1, "sampler": sampler, "sampler_seed": 0},
        "evaluation": {"seeds": 3}, "resources": {"cpu": 1, "gpu": 0, "population": 1}, "storage": storage,
        "tracking": tracking or {},
    })
    marks: list[tuple[float, float]] = []
    t0, c0 = time.perf_counter(), time.process_time()

    def out(line: str) -> None:
        if line.startswith(("[tune ", "[seed ")):
            marks.append((time.perf_counter() - t0, time.process_time() - c0))

    status = run_sweep(spec, num_cpus=CPUS, out=out)
    if status != 0:
        raise SystemExit(f"the sweep {name} did not complete (exit status {status})")
    return [*marks, (time.perf_counter() - t0, time.process_time() - c0)]


def window(marks: list[tuple[float, float]], start: int) -> tuple[float, float]:
    """Wall and CPU ms per trial over finished trials ``start`` .. ``start + WINDOW``."""
    (w0, c0), (w1, c1) = marks[start], marks[start + WINDOW]
    return 1000 * (w1 - w0) / WINDOW, 1000 * (c1 - c0) / WINDOW


def du(path: str) -> str:
    """The sweep directory's size after the sweep, in MB, and that of its largest parts."""
    sizes: dict[str, int] = {}
    for f in Path(path).rglob("*"):
        if f.is_file():
            part = f.relative_to(path).parts[0]
            sizes[part] = sizes.get(part, 0) + f.stat().st_size
    parts = sorted(sizes.items(), key=lambda kv: -kv[1])[:4]
    return f"{sum(sizes.values()) / 1e6:.1f} MB ({', '.join(f'{k} {v / 1e6:.1f}' for k, v in parts)})"


def trial_seconds(epochs: int) -> float:
    """Wall seconds of one synthetic trial of ``epochs`` epochs on one CPU thread, as a sweep runs it."""
    import torch

    from trainables import run_trial

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run_trial({"workload": "synthetic", "strategy": "adam", "epochs": epochs, "seed": 0, "device": "cpu"})
    return time.perf_counter() - t0


def report(label: str, marks: list[tuple[float, float]], directory: str, lengths: dict[str, float]) -> None:
    marks, end = marks[:-1], marks[-1]
    n = len(marks)
    late_start = max(WINDOW, n - 2 * WINDOW)
    early, late = window(marks, WINDOW), window(marks, late_start)
    rate = 1000 / late[0]
    print(f"{label}: {n} trials in {marks[-1][0]:.0f} s wall, driver CPU {marks[-1][1]:.0f} s; returned at "
          f"{end[0]:.0f} s; disk after: {du(directory)}")
    print(f"  per trial, trials {WINDOW}-{2 * WINDOW}: wall {early[0]:.1f} ms, driver CPU {early[1]:.1f} ms")
    print(f"  per trial, trials {late_start}-{late_start + WINDOW}: wall {late[0]:.1f} ms, "
          f"driver CPU {late[1]:.1f} ms")
    print(f"  late / early: wall {late[0] / early[0]:.2f}x, CPU {late[1] / early[1]:.2f}x; "
          f"sustained {rate:.1f} trials/s")
    for what, seconds in lengths.items():
        print(f"  GPUs one driver keeps busy at {what} ({seconds:.0f} s per trial): {rate * seconds:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1032, help="Tune trials in the sweep (about)")
    parser.add_argument("--sampler", default="tpe", help="the studies' sampler (tpe, random, qmc)")
    parser.add_argument("--baseline", action="store_true", help="first run the sweep with the old setting")
    parser.add_argument("--track", choices=["tensorboard", "mlflow", "wandb"],
                        help="then run the sweep again with this tracker (local store; W&B offline)")
    parser.add_argument("--trial-epochs", type=int, default=80, help="epochs of the measured synthetic trial")
    parser.add_argument("--gpu-trial-seconds", type=float, nargs="*", default=[60.0, 300.0],
                        help="GPU trial lengths to size the GPU estimate at (assumed, not measured)")
    args = parser.parse_args()

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    lengths = {f"a CPU synthetic trial of {args.trial_epochs} epochs (measured)": trial_seconds(args.trial_epochs)}
    lengths.update({f"an assumed GPU trial of {s:.0f} s (estimate)": s for s in args.gpu_trial_seconds})
    storage = tempfile.mkdtemp(prefix="driver_scale_")
    try:
        runs = [("baseline", True, None)] if args.baseline else []
        runs.append(("now", False, None))
        if args.track:
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            runs.append((f"tracked-{args.track}", False, {args.track: TRACKERS[args.track](storage)}))
        walls = {}
        for label, old, tracking in runs:
            from sweeps.engine import experiment, ray_setup

            saved = (experiment.run_config, ray_setup.SNAPSHOT_PERIOD_S)
            if old:
                old_setting()
            marks = timed_sweep(label, args.trials, args.sampler, storage, tracking)
            experiment.run_config, ray_setup.SNAPSHOT_PERIOD_S = saved
            walls[label] = marks[-1][0]
            what = ("num_to_keep=1, Tune snapshot per trial checkpoint" if old else
                    f"this checkout, tracked by {args.track}" if tracking else "this checkout")
            report(f"{label} ({what})", marks, os.path.join(storage, label), lengths)
        if args.track:
            print(f"tracked by {args.track} / untracked, wall to the return: "
                  f"{walls[f'tracked-{args.track}'] / walls['now']:.3f}")
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
