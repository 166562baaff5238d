"""Real lrsweep sweeps on a 2-node Ray cluster from cluster/local.sh, each test in its own network
and PID namespace (see cluster_harness.py); results checked from the Parquet tables."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cluster_harness import REPO, VENV_BIN, LocalCluster, Namespace, namespace_unavailable_reason, wait_for
from test_sweep_resume import tune_done

_REASON = namespace_unavailable_reason()
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(_REASON is not None, reason=str(_REASON)),
]

LRSWEEP = str(VENV_BIN / "lrsweep")
TRIAL_ACTOR = "ImplicitFunc"  # Ray Tune's actor class for a function trainable


@pytest.fixture
def cluster(tmp_path):
    """Head + 1 worker, one CPU each, so that two concurrent trials need both nodes."""
    ns = Namespace()
    made = None
    try:
        made = LocalCluster(ns, tmp_path / "cluster", workers=1, cpus_per_node=1)
        yield made
    finally:
        try:
            if made is not None:
                made.down()
        finally:
            ns.close()


def _tables(directory: Path):
    import pandas as pd

    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in ("trials", "epochs", "budget")}


def _start_sweep(cluster: LocalCluster, tmp_path: Path, spec: dict):
    """`lrsweep run SPEC --address <GCS>` in the background inside the cluster's namespace; spec is
    written to tmp_path. Returns the sweep directory, the driver's log and its Popen."""
    spec_path = tmp_path / f"{spec['name']}.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    log = tmp_path / "driver.log"
    driver = cluster.ns.popen([LRSWEEP, "run", str(spec_path), "--address", cluster.gcs_address], log,
                              env=cluster.client_env)
    return Path(spec["storage"]) / spec["name"], log, driver


def _failure_report(cluster: LocalCluster, log: Path, what: str) -> AssertionError:
    return AssertionError(f"{what}:\n{log.read_text()[-6000:]}\n{cluster.session_logs_tail()}")


def _assert_full_budget(directory: Path, spec: dict) -> None:
    """Every (workload, strategy) pair got exactly its trials and epochs; nothing missing or twice."""
    t = _tables(directory)
    trials, epochs, budget = t["trials"], t["epochs"], t["budget"]
    n_trials, n_epochs, n_seeds = spec["budget"]["trials"], spec["budget"]["epochs"], spec["evaluation"]["seeds"]
    assert trials["trial_id"].is_unique, trials[trials["trial_id"].duplicated(keep=False)]
    assert (trials["status"] == "ok").all(), trials[["trial_id", "status", "error"]]
    for strategy in spec["strategies"]:
        for stage, want in (("tune", n_trials), ("seed", n_seeds)):
            rows = trials[(trials["strategy"] == strategy) & (trials["stage"] == stage)]
            assert len(rows) == want, (strategy, stage, rows[["trial_id", "trial_index"]])
            assert sorted(rows["trial_index"]) == list(range(want)), (strategy, stage)
            assert (rows["epochs_run"] == n_epochs).all(), rows[["trial_id", "epochs_run"]]
    # One epoch row per (trial, epoch): a trial resumed after a failure does not repeat epochs.
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    per_trial = epochs.groupby("trial_id")["epoch"].agg(["count", "min", "max"])
    assert set(per_trial.index) == set(trials["trial_id"])
    assert (per_trial["count"] == n_epochs).all() and (per_trial["max"] == n_epochs).all(), per_trial
    assert (budget["trials_run"] == budget["trials_planned"]).all(), budget
    assert (budget["trials_errored"] == 0).all(), budget
    assert budget["complete"].all(), budget


@pytest.mark.timeout(300)
def test_submitted_sweep_spreads_over_both_nodes_and_completes(cluster, tmp_path):
    spec = yaml.safe_load((REPO / "cluster" / "smoke.yaml").read_text())
    storage = tmp_path / "results"
    cluster.ns.run(
        [LRSWEEP, "submit", "cluster/smoke.yaml", "--address", cluster.dashboard,
         "--storage", str(storage), "--job-id", "smoke"],
        timeout=120, env=cluster.client_env,
    )
    status = cluster.wait_for_job("smoke", timeout=240)
    assert status == "SUCCEEDED", cluster.job_logs("smoke")[-6000:]

    nodes = cluster.actor_nodes(TRIAL_ACTOR)
    assert {"node_head", "node_w1"} <= set(nodes), f"trial actors ran on {nodes}"
    directory = storage / spec["name"]
    _assert_full_budget(directory, spec)
    shown = cluster.ns.run([LRSWEEP, "status", str(directory)], timeout=60, env=cluster.client_env)
    assert "complete" in shown.stdout, shown.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize("population", [1, 2])
def test_sweep_survives_kill_9_of_the_worker_node(cluster, tmp_path, population):
    # Longer epochs than the smoke spec, so that the kill lands inside running trials. With
    # population 2, each pair's two tune runs train in one trial: the kill hits both members.
    spec = {
        "name": "nodeloss",
        "workloads": [{"synthetic": {"n_train": 6400}}],
        "strategies": ["fixed_sgd", "adam"],
        "budget": {"trials": 2, "epochs": 8, "sampler": "tpe", "sampler_seed": 0},
        "evaluation": {"seeds": 1, "selection": "final"},
        "resources": {"cpu": 1, "gpu": 0, "population": population},
        "storage": str(tmp_path / "results"),
    }
    directory, log, driver = _start_sweep(cluster, tmp_path, spec)
    try:
        # Kill the worker once a trial runs there and trials have checkpointed a couple of epochs.
        def worker_mid_trial():
            checkpointed = list((directory / "experiment").glob("*/checkpoint_00000[1-9]"))
            return checkpointed and "node_w1" in cluster.actor_nodes(TRIAL_ACTOR, state="ALIVE")

        wait_for(worker_mid_trial, timeout=150, interval=1, what="a trial mid-way on worker-1")
        cluster.local_sh("kill-worker", "1", timeout=30)
        code = driver.wait(timeout=220)
    except (AssertionError, subprocess.TimeoutExpired):
        cluster.ns.kill(driver)
        raise _failure_report(cluster, log, "sweep did not finish") from None
    output = log.read_text()
    assert code == 0, output[-6000:]
    # The kill hit a running trial (not just an idle node), and Tune retried it.
    assert "Trial task failed" in output, output[-6000:]
    _assert_full_budget(directory, spec)
    trials = _tables(directory)["trials"]
    assert trials[trials.stage == "tune"].groupby("population_id").size().max() == population


@pytest.mark.timeout(300)
def test_sweep_resumes_on_the_cluster_after_kill_9_of_the_driver(cluster, tmp_path):
    spec = {
        "name": "driverloss",
        "workloads": [{"synthetic": {"n_train": 512}}],
        "strategies": ["fixed_sgd", "adam"],
        "budget": {"trials": 3, "epochs": 2, "sampler": "tpe", "sampler_seed": 0},
        "evaluation": {"seeds": 2, "selection": "final"},
        "resources": {"cpu": 1, "gpu": 0},
        "storage": str(tmp_path / "results"),
    }
    directory, log, driver = _start_sweep(cluster, tmp_path, spec)
    try:
        wait_for(lambda: tune_done(directory) >= 2 or driver.poll() is not None, timeout=150, interval=0.5,
                 what="2 finished tune trials")
        assert driver.poll() is None, "the sweep ended before its driver could be killed"
        cluster.ns.kill(driver)  # the driver process only: the head and worker nodes stay up
    except (AssertionError, subprocess.TimeoutExpired):
        cluster.ns.kill(driver)
        raise _failure_report(cluster, log, "the sweep did not get to the kill") from None
    assert not (directory / "trials.parquet").exists(), "the sweep finished before its driver was killed"

    resumed = cluster.ns.run([LRSWEEP, "resume", str(directory), "--address", cluster.gcs_address],
                             timeout=200, env=cluster.client_env, check=False)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, f"{output[-6000:]}\n{cluster.session_logs_tail()}"
    assert "resuming the experiment" in output, output[-6000:]
    _assert_full_budget(directory, spec)
    trials = _tables(directory)["trials"]
    tune = trials[trials["stage"] == "tune"]
    assert not tune.duplicated(["strategy", "trial_index"]).any()
    # Trials finished before the kill were not trained again: a retrained trial reports its epochs
    # twice in result.json. At most the two running at the kill (one per node) may have been.
    retrained = [trial_id for trial_id, run in tune.set_index("trial_id")["epochs_run"].items()
                 if len((directory / "experiment" / trial_id / "result.json").read_text().splitlines()) > run]
    assert len(retrained) <= 2, retrained


def _plugin_sweep(directory: Path, storage: Path) -> tuple[Path, Path, dict]:
    """The README's workload and strategy plugins saved in ``directory`` (on no sys.path, outside the
    project), and the README's spec with the plugin strategy added: (workload file, strategy file, spec)."""
    from test_plugins import _blocks

    directory.mkdir(parents=True)
    workload, strategy = directory / "halfspace.py", directory / "plain_sgd.py"
    workload.write_text(_blocks("## Adding a workload", "python")[0])
    strategy.write_text(_blocks("## Plugins", "python")[0])
    spec = yaml.safe_load(_blocks("## Adding a workload", "yaml")[0])
    spec.update(strategies=[*spec["strategies"], "plain_sgd"], resources={"cpu": 1, "gpu": 0}, storage=str(storage))
    spec["budget"]["epochs"] = spec["budget"].get("epochs", 2)
    return workload, strategy, spec


def _assert_plugin_sweep(cluster: LocalCluster, directory: Path, spec: dict) -> None:
    _assert_full_budget(directory, spec)
    assert set(_tables(directory)["trials"]["workload"]) == {"halfspace"}
    nodes = cluster.actor_nodes(TRIAL_ACTOR)
    assert {"node_head", "node_w1"} <= set(nodes), f"trial actors ran on {nodes}"
    # The plugins' code, as files (run) or as the packages submit staged them in (submit).
    assert sorted(p.name.removesuffix(".py") for p in (directory / "plugins").iterdir()) == ["halfspace", "plain_sgd"]
    shown = cluster.ns.run([LRSWEEP, "status", str(directory)], timeout=60, env=cluster.client_env)
    assert "state: complete" in shown.stdout and "halfspace/plain_sgd" in shown.stdout, shown.stdout


@pytest.mark.timeout(300)
def test_plugin_sweep_with_run_address_on_both_nodes(cluster, tmp_path):
    """The README plugin sweep (spec `plugins:` and `--plugin`, files outside the project and off
    PYTHONPATH) with the driver here: the code reaches the worker node through the job's runtime_env."""
    workload, strategy, spec = _plugin_sweep(tmp_path / "user_code", tmp_path / "results")
    spec_path = workload.parent / "halfspace.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    done = cluster.ns.run([LRSWEEP, "run", str(spec_path), "--plugin", str(strategy), "--address",
                           cluster.gcs_address], timeout=240, env=cluster.client_env, check=False)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{cluster.session_logs_tail()}"
    _assert_plugin_sweep(cluster, tmp_path / "results" / spec["name"], spec)


@pytest.mark.timeout(300)
def test_plugin_sweep_submitted_as_a_ray_job_on_both_nodes(cluster, tmp_path):
    """`lrsweep submit` with `--plugin` files outside the project: they travel as the job's py_modules,
    the job's driver and every worker import them by module name."""
    workload, strategy, spec = _plugin_sweep(tmp_path / "user_code", tmp_path / "results")
    spec.pop("plugins")
    inside = REPO / "tests" / f"_submit_spec_{os.getpid()}"  # submit wants the spec inside the project
    inside.mkdir()
    try:
        (inside / "halfspace.yaml").write_text(yaml.safe_dump(spec))
        cluster.ns.run(
            [LRSWEEP, "submit", str(inside / "halfspace.yaml"), "--address", cluster.dashboard,
             "--plugin", str(workload), "--plugin", str(strategy), "--job-id", "plugins"],
            timeout=120, env=cluster.client_env,
        )
    finally:
        shutil.rmtree(inside)
    status = cluster.wait_for_job("plugins", timeout=240)
    assert status == "SUCCEEDED", cluster.job_logs("plugins")[-6000:]
    _assert_plugin_sweep(cluster, tmp_path / "results" / spec["name"], spec)
