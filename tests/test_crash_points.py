"""A sweep killed at each named crash point (lrresults.crashpoints) and resumed ends with the tables and
decisions of an uninterrupted one, and no resume waits on a killed driver's journal lock.

Real `lrsweep` drivers, each told by ``LRSWEEP_CRASH_AT=point:N`` to SIGKILL itself (its process
group) at the Nth passage of a point. A Ray start costs more than a tiny sweep, so every driver joins
one loopback Ray started for the module (``--address``, as on a cluster), and each design's points
are taken in one chain: a sweep is killed at the first point, its resume at the next, and so on, in
the order a sweep passes them; the last resume runs to the end. Each killed driver must have died
by SIGKILL, so each point was reached. The chains and the uninterrupted sweeps all run at once.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from patience import STALL_S, sweep_progress, wait_for
from test_sweep_durable import assert_exact_budget, assert_same_experiment
from test_sweep_searcher import CANONICAL, plans

from sweeps.record.storage import SweepError, load_sweep_spec
from sweeps.search.searcher import PairSearcher

ROOT = Path(__file__).resolve().parent.parent
BASE = {"workloads": [{"synthetic": {"n_train": 256}}], "strategies": ["fixed_sgd", "adam"],
        "budget": {"trials": 3, "epochs": 2, "sampler": "random", "sampler_seed": 0}, "resources": {"cpu": 1},
        "max_concurrent": 1}  # one trial actor per driver: each costs a process start and torch's import
DESIGNS = {
    "fixed": {**BASE, "evaluation": {"seeds": 2}},  # assert_exact_budget's numbers (tests/test_sweep_durable.py)
    "selection": {**BASE, "budget": {**BASE["budget"], "epochs": 1},
                  "evaluation": {"seeds": "auto", "indifference": 0.5, "confidence": 0.95, "first_seeds": 3,
                                 "batch": 2, "max_seeds": 5}},
}
CHAINS = {
    # In the order a sweep passes them. Start-up: the lease taken, before spec.yaml (then `run` again);
    # the studies created; trial 0's canonical point enqueued, not asked (the duplicate of issue 42); a
    # journal append with Optuna's lock held; a point asked, its trial index not yet set. Then a
    # checkpoint mid-write (in a trial's worker) and one in place (the trial resumes from it). The end:
    # every trial recorded, no table; two tables of five; all five, the lease not yet released.
    "fixed": ["lease.take:1", "journal.create:2", "journal.enqueue:1", "journal.lock:3", "journal.ask:2",
              "checkpoint:1", "checkpoint.written:1", "tables:1", "table:2", "lease.release:1"],
    # The second pair's canonical point enqueued; a study told; a run record mid-write, then one in place with its
    # checkpoint not yet deleted; the first selection decision mid-write, the second in place.
    "selection": ["journal.enqueue:2", "journal.tell:1", "run:2", "run.written:2", "selection:1",
                  "selection.written:2"],
}
LOCK_WAIT = ("taking longer than", "Forcibly releasing")
"""What Optuna prints while it waits on a journal lock (JournalFileSymlinkLock.acquire)."""

HEAD = """
import sys, ray
ray.init(address="local", num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
"""


class Cluster:
    """A loopback Ray for the module's drivers: token auth, its own process group, gone at teardown."""

    def __init__(self, log: Path) -> None:
        # Loopback: Ray would otherwise replace 127.0.0.1 by this machine's routable address.
        self.env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(32), "PYTHONPATH": str(ROOT)}
        self.log = log
        with open(log, "w") as err:
            self.head = subprocess.Popen([sys.executable, "-c", HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, start_new_session=True, env={**os.environ, **self.env})
        self.address = self.head.stdout.readline().strip()
        assert self.address.startswith("127.0.0.1:"), log.read_text()

    def close(self) -> None:
        os.killpg(self.head.pid, signal.SIGKILL)
        self.head.wait()

    def driver(self, directory: Path, spec: Path, crash: str | None, log: Path) -> subprocess.Popen:
        """`lrsweep run` (no spec.yaml yet) or `lrsweep resume` on this cluster, in its own session."""
        verb = ["resume", str(directory)] if (directory / "spec.yaml").exists() else ["run", str(spec)]
        env = {**{k: v for k, v in os.environ.items() if k != "LRSWEEP_CRASH_AT"}, **self.env,
               **({"LRSWEEP_CRASH_AT": crash} if crash else {})}
        with open(log, "w") as out:
            return subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", *verb, "--address", self.address],
                                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)


def write_spec(root: Path, design: str, name: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**DESIGNS[design], "name": name, "storage": str(root / "results")}))
    return path


def finish(proc: subprocess.Popen, root: Path, log: Path) -> str:
    """Wait for a driver while its sweep makes progress; return what it printed."""
    try:
        wait_for(lambda: proc.poll() is not None, STALL_S, interval=0.2, what=str(proc.args[-3:]),
                 progress=lambda: sweep_progress(root))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return log.read_text()


@dataclass
class Chain:
    """A design's sweep driven through its chain of crash points: each driver's exit status and output,
    and whether Optuna's journal lock was left behind after it."""

    directory: Path
    codes: list[int | None] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    locked: list[bool] = field(default_factory=list)


def run_chain(cluster: Cluster, root: Path, design: str, crashes: list[str]) -> Chain:
    """Start the design's sweep and resume it after each kill at ``crashes`` in turn, then once more
    without one (an uninterrupted sweep: no ``crashes``)."""
    root.mkdir()
    chain, spec = Chain(root / "results" / design), write_spec(root, design, design)
    for i, crash in enumerate([*crashes, None]):
        log = root / f"driver{i}.log"
        proc = cluster.driver(chain.directory, spec, crash, log)
        chain.outputs.append(finish(proc, root, log))
        chain.codes.append(proc.returncode)
        chain.locked.append(os.path.lexists(chain.directory / "optuna.journal.lock"))
    return chain


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("ray") / "head.log")
    yield c
    c.close()


@pytest.fixture(scope="module")
def sweeps(cluster, tmp_path_factory) -> dict[str, tuple[Future, Future]]:
    """Each design's chain and its uninterrupted sweep, all run at once (the drivers mostly wait on
    Ray and on imports), each in its own folder."""
    root = tmp_path_factory.mktemp("sweeps")
    with ThreadPoolExecutor(2 * len(CHAINS)) as pool:
        return {design: (pool.submit(run_chain, cluster, root / f"killed-{design}", design, crashes),
                         pool.submit(run_chain, cluster, root / f"whole-{design}", design, []))
                for design, crashes in CHAINS.items()}


def decisions(directory: Path) -> dict:
    """The selection design's decisions (record/selection/*.json) and each pair's selected trial and
    point (selection.json, without Tune's trial ids, which are the session's)."""
    found = {p.name: json.loads(p.read_text()) for p in (directory / "record" / "selection").glob("*.json")}
    chosen = json.loads((directory / "selection.json").read_text())["chosen"]
    return {**found, "chosen": {pair: {k: v for k, v in c.items() if k != "trial_id"} for pair, c in chosen.items()}}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # slow under load is no failure: the waits fail on a stall (patience.STALL_S)
@pytest.mark.parametrize("design", list(CHAINS))
def test_a_sweep_killed_at_each_crash_point_resumes_to_the_uninterrupted_tables(sweeps, design):
    killed, whole = (future.result() for future in sweeps[design])
    assert whole.codes == [0], whole.outputs[0][-3000:]
    for crash, code, out in zip(CHAINS[design], killed.codes, killed.outputs, strict=False):
        assert code == -signal.SIGKILL, f"{crash} was never reached:\n{out[-3000:]}"
    assert killed.codes[-1] in (0, 2), killed.outputs[-1][-3000:]  # 2: the last kill came after the tables
    for out in killed.outputs:
        assert not any(text in out for text in LOCK_WAIT), out[-3000:]
    if "journal.lock:3" in CHAINS[design]:  # killed inside a journal append: Optuna's lock stayed behind
        i = CHAINS[design].index("journal.lock:3")
        assert killed.locked[i] and not killed.locked[i + 1]
        assert "optuna.journal.lock: left by a driver killed mid-write; removed" in killed.outputs[i + 1]
    assert not list((killed.directory / "record" / "checkpoints").rglob("*.pt"))  # none of finished trials
    assert_same_experiment(killed.directory, whole.directory)
    if design == "fixed":
        assert_exact_budget(killed.directory)
    else:
        assert decisions(killed.directory) == decisions(whole.directory)


# -- the two repairs, without Ray: a searcher rebuilt from the journal a killed driver left --------


def asked(s: PairSearcher, n: int) -> list[tuple[str, int, dict]]:
    return [(c["sweep"]["pair"], c["sweep"]["trial_index"], c["run"]["hparams"])
            for c in (s.suggest(f"t{i}") for i in range(n))]


def test_a_point_enqueued_by_a_killed_driver_is_not_asked_again_for_the_next_index(tmp_path):
    whole = asked(PairSearcher(plans(2), 3, "random", 0, str(tmp_path / "whole.journal")), 6)
    journal = str(tmp_path / "optuna.journal")
    PairSearcher(plans(2), 3, "random", 0, journal).study("w/s0").enqueue_trial(CANONICAL)  # killed before its ask
    resumed = PairSearcher(plans(2), 3, "random", 0, journal)
    resumed.rebuild({})
    assert asked(resumed, 6) == whole
    assert whole[2] == ("w/s0", 1, whole[2][2]) and whole[2][2] != CANONICAL  # trial 1 is the sampler's


def test_a_killed_drivers_journal_lock_is_removed_at_once(tmp_path):
    journal = tmp_path / "optuna.journal"
    PairSearcher(plans(1), 3, "random", 0, str(journal)).study("w/s0")
    (tmp_path / "optuna.journal.lock").symlink_to(journal)  # what JournalFileSymlinkLock holds mid-append
    resumed = PairSearcher(plans(1), 3, "random", 0, str(journal))
    t0 = time.monotonic()
    notes = resumed.rebuild({})
    resumed.suggest("t0")  # appends to the journal
    assert time.monotonic() - t0 < 5  # Optuna warns after 10 s and breaks a lock after 30 s
    assert notes == [f"{journal}.lock: left by a driver killed mid-write; removed (the lease proves that driver gone)"]
    assert not os.path.lexists(tmp_path / "optuna.journal.lock")


def test_a_directory_a_run_killed_before_its_spec_left_says_to_start_it_again(tmp_path):
    (tmp_path / "lease").write_text("")  # a kill at lease.take
    with pytest.raises(SweepError, match="no spec.yaml .only a lease: .* start it again"):
        load_sweep_spec(str(tmp_path))
