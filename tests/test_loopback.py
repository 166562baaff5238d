"""The embedded Ray stays on this machine: every socket a real `lrsweep run` listens on is loopback.

The sweep runs as its own process (session) with a private Ray temp dir, so "its processes" are
the driver's process tree plus any process whose command line names that temp dir (Ray's
processes of this session). Their listening sockets are sampled while the sweep runs.
"""

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SPEC = {
    "name": "loopback",
    "workloads": [{"synthetic": {"n_train": 256}}],
    "strategies": ["fixed_sgd", "adam"],
    "budget": {"trials": 2, "epochs": 2, "sampler": "random", "sampler_seed": 0},
    "evaluation": {"seeds": 1},
}


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 and ::1, also written IPv4-mapped (``::ffff:127.0.0.1``, a dual-stack socket's view)."""
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def session_processes(driver: psutil.Process, marker: str) -> list[psutil.Process]:
    """The driver, its descendants, and any process whose command line names ``marker``."""
    found = {driver.pid: driver}
    try:
        found.update((p.pid, p) for p in driver.children(recursive=True))
    except psutil.Error:
        pass
    for p in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in p.info["cmdline"] or ()):
            found.setdefault(p.pid, p)
    return list(found.values())


def listening(processes: list[psutil.Process]) -> set[tuple[str, str, int]]:
    """``(process name, ip, port)`` of every listening TCP socket of ``processes``."""
    out = set()
    for p in processes:
        try:
            name = p.name()
            out.update((name, c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="tcp")
                       if c.status == psutil.CONN_LISTEN)
        except psutil.Error:  # it ended between the listing and the look
            continue
    return out


def test_every_socket_of_an_embedded_sweep_is_loopback(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**SPEC, "storage": str(tmp_path / "results")}))
    ray_tmp = tempfile.mkdtemp(prefix="lb", dir="/tmp")  # short: Ray's unix socket paths live under it
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    driver = subprocess.Popen([sys.executable, "-m", "sweeps.commands.cli", "run", str(spec_path), "--num-cpus", "2"],
                              cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    seen: set[tuple[str, str, int]] = set()
    try:
        root = psutil.Process(driver.pid)
        deadline = time.monotonic() + 600
        while driver.poll() is None and time.monotonic() < deadline:
            seen |= listening(session_processes(root, ray_tmp))
            time.sleep(0.2)
        output = driver.communicate(timeout=60)[0]
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert driver.returncode == 0, output
    names = {name for name, _, _ in seen}
    # Not vacuous: Ray's servers and a trial worker were seen listening.
    assert {"gcs_server", "raylet"} <= names, sorted(seen)
    assert any(name.startswith("ray::") for name in names), sorted(seen)
    wide = sorted(s for s in seen if not is_loopback(s[1]))
    assert not wide, f"listening beyond loopback: {wide}"


@pytest.mark.parametrize(("ip", "loopback"), [("127.0.0.1", True), ("::ffff:127.0.0.1", True), ("::1", True),
                                              ("0.0.0.0", False), ("::", False), ("192.0.2.2", False),
                                              ("::ffff:192.0.2.2", False)])
def test_is_loopback_reads_dual_stack_and_wildcard_addresses(ip, loopback):
    assert is_loopback(ip) is loopback
