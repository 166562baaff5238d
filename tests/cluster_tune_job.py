"""Ray Job entrypoint for the node-failure test: a plain Ray Tune run that checkpoints every step.

Each trial counts to --iters, sleeping --step-s per step, checkpointing after every step and
resuming from its last checkpoint after a failure. Before each report it touches
<progress>/<trial_id>.<iter>.<node> so that the test can see which node runs what and choose
its moment to kill a node. At the end it writes a JSON summary of every trial to --out.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import ray
from ray import tune


def count(config: dict) -> None:
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            start = json.loads((Path(d) / "state.json").read_text())["iter"]
    node = os.environ.get("LRSWEEP_CLUSTER_NODE", "unknown")
    trial_id = tune.get_context().get_trial_id()
    progress = Path(config["progress"])
    for it in range(start + 1, config["iters"] + 1):
        time.sleep(config["step_s"])
        (progress / f"{trial_id}.{it}.{node}").touch()
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "state.json").write_text(json.dumps({"iter": it}))
            tune.report(
                {"iter": it, "resumed_from": start, "node": node},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--progress", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--step-s", type=float, default=1.0)
    args = parser.parse_args()

    ray.init()
    Path(args.progress).mkdir(parents=True, exist_ok=True)
    tuner = tune.Tuner(
        tune.with_resources(count, {"cpu": 1}),
        param_space={
            "progress": args.progress,
            "iters": args.iters,
            "step_s": args.step_s,
            "k": tune.grid_search(list(range(args.trials))),
        },
        run_config=tune.RunConfig(
            name=args.name,
            storage_path=args.storage,
            failure_config=tune.FailureConfig(max_failures=3),
            verbose=0,
        ),
    )
    grid = tuner.fit()
    trials = []
    for result in grid:
        history = result.metrics_dataframe
        trials.append(
            {
                "trial_id": result.metrics.get("trial_id"),
                "k": result.config["k"],
                "error": repr(result.error) if result.error else None,
                "final_iter": result.metrics.get("iter"),
                "iters_reported": sorted(history["iter"].tolist()) if history is not None else [],
                "resumed_from": sorted(set(history["resumed_from"].tolist())) if history is not None else [],
                "nodes": sorted(set(history["node"].tolist())) if history is not None else [],
            }
        )
    Path(args.out).write_text(json.dumps({"num_errors": grid.num_errors, "trials": trials}, indent=1))
    print("summary written to", args.out, flush=True)


if __name__ == "__main__":
    main()
