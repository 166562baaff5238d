"""Run a real multi-node Ray cluster inside a private network and PID namespace.

Every node is 127.0.0.1 inside a fresh network namespace whose only interface is `lo`, so no
packet can leave the machine and the cluster cannot collide with other Ray instances on the
host. The PID namespace matters as much as the network one: `ray stop` and Ray's own cleanup
find processes by name across everything they can see, and in a private PID namespace that is
only this cluster.

The namespace's init process reads its stdin until EOF. The harness holds the other end, so if
the test process dies for any reason the init exits and the kernel kills every process left in
the namespace: nothing outlives the test.

Needs util-linux `unshare` and `nsenter` and either root or unprivileged user namespaces.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from patience import wait_for  # noqa: F401  (the tests' waits, re-exported)

REPO = Path(__file__).resolve().parents[1]
LOCAL_SH = REPO / "cluster" / "local.sh"
VENV_BIN = Path(sys.executable).parent

# The init of the namespace: bring `lo` up (ioctl, so iproute2 is not needed), refuse to run if
# any other interface exists, report ready, reap orphans until stdin closes.
_INIT = r"""
import fcntl, os, socket, struct, sys, threading, time
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
req = struct.pack("16sH14s", b"lo", 0, b"")
flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
names = sorted(name for _, name in socket.if_nameindex())
if names != ["lo"]:
    print("interfaces other than lo:", names, flush=True)
    sys.exit(3)
def watch_stdin():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch_stdin, daemon=True).start()
print("ready", os.getpid(), flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""


def _unshare_argv() -> tuple[list[str], list[str]]:
    """unshare and nsenter flags: plain namespaces as root, a user namespace otherwise."""
    if os.geteuid() == 0:
        return ["--net", "--pid", "--mount-proc", "--fork"], ["--net", "--pid", "--mount"]
    return (
        ["--user", "--map-root-user", "--net", "--pid", "--mount-proc", "--fork"],
        ["--user", "--preserve-credentials", "--net", "--pid", "--mount"],
    )


def namespace_unavailable_reason() -> str | None:
    """Why a private network+PID namespace cannot be made here, or None if it can."""
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"util-linux `{tool}` is not installed (apt-get install util-linux)"
    unshare_flags, _ = _unshare_argv()
    try:
        probe = subprocess.run(
            ["unshare", *unshare_flags, "true"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "`unshare` hung while creating a namespace"
    if probe.returncode != 0:
        return (
            "cannot create a private network+PID namespace here (needs root or unprivileged user "
            f"namespaces): {probe.stderr.strip()}"
        )
    return None



ANSWER = "@@answer@@ "
"""Prefix of a probe's answer line: a Ray driver may print log lines (e.g. lagging heartbeats) after it."""


def _answer(out: str) -> str:
    """The last line a probe printed behind ANSWER."""
    lines = [line[len(ANSWER):] for line in out.splitlines() if line.startswith(ANSWER)]
    if not lines:
        raise AssertionError(f"the probe printed no answer line:\n{out[-2000:]}")
    return lines[-1].strip()

class Namespace:
    """A private network+PID namespace, with helpers to run commands inside it."""

    def __init__(self) -> None:
        unshare_flags, self._nsenter_flags = _unshare_argv()
        self._init = subprocess.Popen(
            ["unshare", *unshare_flags, sys.executable, "-c", _INIT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self._readline(timeout=30)
        if not line.startswith("ready"):
            self.close()
            raise RuntimeError(f"namespace init failed: {line!r}")
        self.init_pid = self._find_init_pid()

    def _readline(self, timeout: float) -> str:
        ready, _, _ = select.select([self._init.stdout], [], [], timeout)
        if not ready:
            return "timed out"
        return self._init.stdout.readline().strip() or f"init exited with {self._init.poll()}"

    def _find_init_pid(self) -> int:
        """Host PID of the namespace's init: the only child of the `unshare` process."""
        return _only_child(self._init.pid, "unshare")

    def command(self, argv: list[str], cwd: Path = REPO) -> list[str]:
        """argv prefixed so that it runs inside the namespace with working directory cwd."""
        return ["nsenter", f"--target={self.init_pid}", *self._nsenter_flags, f"--wd={cwd}", *argv]

    def run(
        self,
        argv: list[str],
        timeout: float,
        env: dict[str, str] | None = None,
        check: bool = True,
        cwd: Path = REPO,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespace; raise with its output if it fails and check is set."""
        result = subprocess.run(
            self.command(argv, cwd),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{argv} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
                f"\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    def popen(self, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = REPO):
        """Start argv inside the namespace in the background, output to log; the caller waits."""
        with open(log, "w") as out:
            return subprocess.Popen(self.command(argv, cwd), stdout=out, stderr=subprocess.STDOUT, env=env)

    def kill(self, proc: subprocess.Popen, timeout: float = 30) -> int:
        """SIGKILL the command that popen() started inside the namespace (not the `nsenter` in
        front of it, which only waits for it and would leave it running), then reap `nsenter`."""
        if proc.poll() is None:
            try:
                os.kill(_only_child(proc.pid, "nsenter"), signal.SIGKILL)
            except (RuntimeError, ProcessLookupError):  # not forked yet, or already gone
                proc.kill()
        return proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kill everything in the namespace: closing stdin ends init, and with it the rest."""
        if self._init.poll() is None:
            try:
                self._init.stdin.close()
                self._init.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._init.kill()
                self._init.wait(timeout=10)


class LocalCluster:
    """`cluster/local.sh` driven inside a Namespace, with its state in state_dir."""

    def __init__(self, ns: Namespace, state_dir: Path, workers: int = 1, cpus_per_node: int = 1):
        self.ns = ns
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "LRSWEEP_CLUSTER_DIR": str(state_dir),
            "LRSWEEP_RAY": str(VENV_BIN / "ray"),
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        # Settings of an outer Ray must not leak into this cluster's clients.
        for key in list(self.env):
            if key.startswith("RAY_") and not key.startswith("RAY_health_check"):
                del self.env[key]
        self.up = ns.run(
            [str(LOCAL_SH), "up", "--workers", str(workers), "--cpus-per-node", str(cpus_per_node)],
            timeout=150,
            env=self.env,
        )
        self.client_env = {**self.env, **self._read_cluster_env()}
        self.token = (state_dir / "auth_token").read_text().strip()

    def _read_cluster_env(self) -> dict[str, str]:
        out = {}
        for line in (self.state_dir / "cluster.env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            out[key] = value
        return out

    @property
    def dashboard(self) -> str:
        return self.client_env["RAY_API_SERVER_ADDRESS"]

    @property
    def gcs_address(self) -> str:
        """HOST:PORT of the GCS, for `ray.init(address=...)` and `lrsweep run/resume --address`."""
        return self.client_env["RAY_ADDRESS"]

    def ray(self, *args: str, timeout: float = 120, check: bool = True, env=None):
        """The `ray` CLI inside the namespace, with this cluster's token unless env says else."""
        return self.ns.run([str(VENV_BIN / "ray"), *args], timeout=timeout, env=env or self.client_env,
                           check=check)

    def actor_nodes(self, class_suffix: str, state: str | None = None) -> list[str]:
        """For each actor whose class name ends with class_suffix (optionally only in `state`, e.g.
        ALIVE), the local.sh resource of its node: node_head or node_w<i>. Dead actors count too."""
        probe = (
            "import json, sys\n"
            "from ray.util.state import list_actors, list_nodes\n"
            "names = {n.node_id: [k for k in n.resources_total if k.startswith('node_')]"
            " for n in list_nodes(detail=True, limit=1000)}\n"
            f"print({ANSWER!r} + json.dumps([(names.get(a.node_id) or ['?'])[0]"
            " for a in list_actors(detail=True, limit=10000)"
            " if a.class_name.endswith(sys.argv[1]) and sys.argv[2] in ('', a.state)]))\n"
        )
        out = self.ns.run([sys.executable, "-c", probe, class_suffix, state or ""], timeout=60,
                          env=self.client_env).stdout
        return json.loads(_answer(out))

    def job_status(self, submission_id: str) -> str:
        """The Ray Job's status name (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
        probe = (
            "import sys; from ray.job_submission import JobSubmissionClient;"
            f"print({ANSWER!r} + JobSubmissionClient(sys.argv[1]).get_job_status(sys.argv[2]).value)"
        )
        out = self.ns.run([sys.executable, "-c", probe, self.dashboard, submission_id], timeout=60,
                          env=self.client_env).stdout
        return _answer(out)

    def wait_for_job(self, submission_id: str, timeout: float) -> str:
        """Wait until the job ends; return its final status."""
        return wait_for(
            lambda: (status := self.job_status(submission_id)) in {"SUCCEEDED", "FAILED", "STOPPED"} and status,
            timeout=timeout, interval=2, what=f"Ray Job {submission_id} to end",
        )

    def job_logs(self, submission_id: str) -> str:
        logs = self.ray("job", "logs", "--address", self.dashboard, submission_id, check=False)
        return logs.stdout + logs.stderr

    def local_sh(self, *args: str, timeout: float = 60, check: bool = True):
        return self.ns.run([str(LOCAL_SH), *args], timeout=timeout, env=self.env, check=check)

    def alive_node_count(self) -> int:
        probe = (
            "import json, ray; ray.init(address='auto', logging_level='ERROR');"
            f"print({ANSWER!r} + json.dumps(sum(n['Alive'] for n in ray.nodes())))"
        )
        out = self.ns.run([sys.executable, "-c", probe], timeout=60, env=self.client_env).stdout
        return json.loads(_answer(out))

    def session_logs_tail(self, limit: int = 4000) -> str:
        """The last lines of the Ray logs most useful after a failure, for assertion messages."""
        tmp = (self.state_dir / "ray_tmp").read_text().strip() if (self.state_dir / "ray_tmp").exists() else ""
        chunks = []
        for pattern in ("head/session_latest/logs/gcs_server.out", "*/session_latest/logs/raylet.out"):
            for path in sorted(Path(tmp).glob(pattern)) if tmp else []:
                chunks.append(f"--- {path}\n{path.read_text(errors='replace')[-limit:]}")
        return "\n".join(chunks)

    def down(self) -> None:
        self.local_sh("down", timeout=60, check=False)


def _only_child(pid: int, what: str) -> int:
    """Host PID of the only child of process pid (`unshare` and `nsenter` fork what they run)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = children.read_text().split() if children.exists() else []
    if len(pids) != 1:
        raise RuntimeError(f"expected one child of {what}, found {pids}")
    return int(pids[0])
