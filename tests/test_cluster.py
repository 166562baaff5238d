"""Multi-node Ray cluster tests: real `ray start` nodes from cluster/local.sh, each test inside
its own network and PID namespace (see cluster_harness.py), loopback only, token auth on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cluster_harness import REPO, VENV_BIN, LocalCluster, Namespace, namespace_unavailable_reason, wait_for

_REASON = namespace_unavailable_reason()
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(_REASON is not None, reason=str(_REASON)),
]

TESTS = REPO / "tests"


@pytest.fixture
def make_cluster(tmp_path):
    """Factory: a LocalCluster in a fresh namespace; everything in it is killed at teardown."""
    made: list[tuple[Namespace, LocalCluster | None]] = []

    def make(workers: int = 1, cpus_per_node: int = 1) -> LocalCluster:
        ns = Namespace()
        made.append((ns, None))
        cluster = LocalCluster(ns, tmp_path / "cluster", workers=workers, cpus_per_node=cpus_per_node)
        made[-1] = (ns, cluster)
        return cluster

    yield make
    for ns, cluster in made:
        try:
            if cluster is not None:
                cluster.down()
        finally:
            ns.close()


def _last_json_line(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in output:\n{text[-4000:]}")


@pytest.mark.timeout(240)
def test_job_runs_tasks_on_both_nodes(make_cluster):
    cluster = make_cluster(workers=1)
    status = cluster.ray("status", timeout=60).stdout
    assert status.count(" node_") >= 2, status
    assert cluster.alive_node_count() == 2

    submitted = cluster.ray(
        "job", "submit", "--address", cluster.dashboard, "--",
        str(VENV_BIN / "python"), str(TESTS / "cluster_probe_job.py"), "node_head", "node_w1",
        timeout=180,
    )
    report = _last_json_line(submitted.stdout)
    assert report["alive_nodes"] == 2
    assert report["env_nodes"] == {"node_head": "head", "node_w1": "worker-1"}
    head_id, worker_id = report["placements"]["node_head"], report["placements"]["node_w1"]
    assert head_id != worker_id


@pytest.mark.timeout(240)
def test_submission_without_the_cluster_token_is_refused(make_cluster, tmp_path):
    cluster = make_cluster(workers=1)
    marker = tmp_path / "should-not-exist"
    entrypoint = ["--", "touch", str(marker)]

    wrong = {**cluster.client_env, "RAY_AUTH_TOKEN": "0" * 64}
    refused = cluster.ray("job", "submit", "--address", cluster.dashboard, *entrypoint,
                          env=wrong, timeout=60, check=False)
    assert refused.returncode != 0
    assert "Invalid authentication token" in refused.stderr or "Forbidden" in refused.stderr, refused.stderr
    # lrsweep submit says so in one line and exits 2, with no traceback.
    spec = REPO / "sweeps" / "quick.yaml"
    ours = cluster.ns.run([str(VENV_BIN / "lrsweep"), "submit", str(spec), "--address", cluster.dashboard],
                          timeout=60, env=wrong, check=False)
    assert ours.returncode == 2, ours.stderr
    errors = [line for line in ours.stderr.splitlines() if line.startswith("lrsweep: error:")]
    assert len(errors) == 1 and "Authentication failed" in errors[0], ours.stderr
    assert "Traceback" not in ours.stderr

    # A bare HTTP client with no token at all gets 401, not a job.
    probe = (
        "import json, sys, urllib.request, urllib.error\n"
        f"req = urllib.request.Request({cluster.dashboard + '/api/jobs/'!r}, method='POST',"
        f" data=json.dumps({{'entrypoint': 'touch {marker}'}}).encode(),"
        " headers={'Content-Type': 'application/json'})\n"
        "try:\n    print(urllib.request.urlopen(req, timeout=30).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )
    bare = cluster.ns.run([str(VENV_BIN / "python"), "-c", probe], timeout=60, env=cluster.client_env)
    assert bare.stdout.strip() in {"401", "403"}, bare.stdout

    # The right token still works, and nothing the refused requests asked for ever ran.
    jobs = cluster.ray("job", "list", "--address", cluster.dashboard, timeout=60).stdout
    assert str(marker) not in jobs
    assert not marker.exists()


def _progress(progress_dir: Path) -> list[tuple[str, int, str]]:
    out = []
    for path in progress_dir.glob("*.*.*"):
        trial_id, it, node = path.name.split(".", 2)
        out.append((trial_id, int(it), node))
    return out


@pytest.mark.timeout(300)
def test_tune_survives_kill_9_of_a_worker_node(make_cluster, tmp_path):
    trials, iters = 4, 10
    cluster = make_cluster(workers=1, cpus_per_node=2)
    storage, progress, out = tmp_path / "storage", tmp_path / "progress", tmp_path / "summary.json"
    cluster.ray(
        "job", "submit", "--address", cluster.dashboard, "--submission-id", "tune-fail", "--no-wait",
        "--", str(VENV_BIN / "python"), str(TESTS / "cluster_tune_job.py"),
        "--storage", str(storage), "--name", "fail", "--progress", str(progress), "--out", str(out),
        "--trials", str(trials), "--iters", str(iters), "--step-s", "1.0",
        timeout=60,
    )

    # Kill the worker once it runs trials that have checkpointed a few steps, well before the end.
    def worker_busy():
        on_worker = {t for t, it, node in _progress(progress) if node == "worker-1" and it >= 3}
        return on_worker if len(on_worker) >= 1 else None

    killed_trials = wait_for(worker_busy, timeout=150, what="trials on worker-1 at step 3")
    cluster.local_sh("kill-worker", "1", timeout=30)
    wait_for(lambda: cluster.alive_node_count() == 1, timeout=60, interval=2, what="the GCS to see the node die")

    status = cluster.wait_for_job("tune-fail", timeout=200)
    if status != "SUCCEEDED":
        pytest.fail(f"job {status}:\n{cluster.job_logs('tune-fail')[-6000:]}\n{cluster.session_logs_tail()}")

    summary = json.loads(out.read_text())
    assert summary["num_errors"] == 0
    got = summary["trials"]
    assert sorted(t["k"] for t in got) == list(range(trials)), "a trial is missing or duplicated"
    assert len({t["trial_id"] for t in got}) == trials
    for t in got:
        assert t["error"] is None
        assert t["final_iter"] == iters
        assert set(t["iters_reported"]) == set(range(1, iters + 1)), t
    moved = [t for t in got if t["trial_id"] in killed_trials]
    assert moved, "the killed trials are not in the results"
    for t in moved:
        # Resumed from a checkpoint (not from scratch), and finished on the surviving head.
        assert max(t["resumed_from"]) >= 3, t
        assert "head" in t["nodes"] and "worker-1" in t["nodes"], t
