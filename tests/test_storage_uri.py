"""URIs with a query string (pyarrow's S3 options) and leases on a URI, without a server: ``file://``
URIs take the URI paths of the code (no flock; the lease is renewed, not locked)."""

import json
import socket
import subprocess
import sys
import time

import psutil
import pytest

from lrresults.store import cache_name, join, normalise
from sweeps.record.durable import STALE_AFTER_S, Lease
from sweeps.record.storage import SweepDir, SweepError, command

QUERY = "?endpoint_override=127.0.0.1:9000&scheme=http"


def test_the_sweep_name_joins_the_path_not_the_query():
    assert join(f"s3://bucket/p{QUERY}", "sweep") == f"s3://bucket/p/sweep{QUERY}"
    assert SweepDir.of(f"s3://bucket/p/{QUERY}", "sweep").root == f"s3://bucket/p/sweep{QUERY}"
    assert SweepDir(f"s3://bucket/p/sweep{QUERY}").path("spec.yaml") == f"s3://bucket/p/sweep/spec.yaml{QUERY}"
    assert normalise(f"s3://bucket/p/{QUERY}") == f"s3://bucket/p{QUERY}"
    assert normalise("s3://bucket/p/") == "s3://bucket/p"
    assert SweepDir.of("/tmp/r", "sweep").path("lease") == "/tmp/r/sweep/lease"


def test_a_cache_name_is_one_file_name_and_tells_servers_apart():
    one, other = cache_name(f"s3://b/p{QUERY}"), cache_name("s3://b/p?endpoint_override=10.0.0.1:9000")
    assert "/" not in one and "?" not in one and "&" not in one
    assert one != other != cache_name("s3://b/p")


def test_a_command_a_message_gives_pastes_whole_into_a_shell():
    uri = f"s3://bucket/p/sweep{QUERY}"
    assert command("resume", uri) == f"lrsweep resume '{uri}'"  # unquoted, a shell would cut it at the '&'
    assert subprocess.run(["sh", "-c", f"printf %s {command('resume', uri).split(' ', 2)[2]}"],
                          capture_output=True, text=True).stdout == uri
    assert command("track", "/data/my sweeps/a") == "lrsweep track '/data/my sweeps/a'"
    assert command("resume", "/data/results/quick") == "lrsweep resume /data/results/quick"


def _lease(root, holder: dict) -> SweepDir:
    sweep = SweepDir(f"file://{root}")
    sweep.write_text("lease", json.dumps(holder))
    return sweep


def test_a_uri_lease_of_this_host_whose_process_is_gone_is_taken_over_at_once(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)
    now = time.time()
    sweep = _lease(tmp_path, {"host": socket.gethostname(), "pid": pid, "started": now - 5, "renewed": now})
    said = []
    lease = Lease(sweep, said.append).acquire()
    try:
        assert any("taking over the stale lease" in line and f"pid {pid}" in line for line in said), said
        assert json.loads(sweep.read_text("lease"))["pid"] == lease.me["pid"]
    finally:
        lease.release()


def test_a_live_uri_lease_of_this_host_is_refused_however_old_its_renewal(tmp_path):
    parent = psutil.Process().parent()  # alive for as long as this test runs
    holder = {"host": socket.gethostname(), "pid": parent.pid, "started": parent.create_time(), "renewed": 0}
    sweep = _lease(tmp_path, holder)
    with pytest.raises(SweepError, match=f"pid {parent.pid}"):
        Lease(sweep, print).acquire()
    assert json.loads(sweep.read_text("lease")) == holder  # a refusal changes nothing


def test_a_fresh_foreign_uri_lease_is_refused_saying_when_it_expires(tmp_path):
    renewed = time.time() - 20
    holder = {"host": "elsewhere", "pid": 1, "started": renewed - 60, "renewed": renewed}
    sweep = _lease(tmp_path, holder)
    with pytest.raises(SweepError) as refused:
        Lease(sweep, print).acquire()
    expires = time.strftime("%H:%M:%S", time.localtime(renewed + STALE_AFTER_S))
    assert f"expires at {expires}" in str(refused.value) and "on elsewhere" in str(refused.value)
    assert str(refused.value).endswith(f"then `{command('resume', sweep.root)}`")
    assert json.loads(sweep.read_text("lease")) == holder


def test_a_stale_foreign_uri_lease_is_taken_over(tmp_path):
    renewed = time.time() - STALE_AFTER_S - 1
    sweep = _lease(tmp_path, {"host": "elsewhere", "pid": 1, "started": renewed - 60, "renewed": renewed})
    said = []
    Lease(sweep, said.append).acquire().release()
    assert any("taking over the stale lease" in line for line in said), said


def test_a_with_block_releases_the_lease_however_it_ends_but_not_a_uri_lease_whose_storage_failed(tmp_path):
    local = SweepDir(str(tmp_path / "local"))
    with pytest.raises(RuntimeError, match="a plan that failed"), Lease(local, print):
        raise RuntimeError("a plan that failed")
    assert local.read_text("lease") == ""  # emptied and its flock dropped: taken again at once, silently
    said = []
    Lease(local, said.append).acquire().release()
    assert said == []
    ended, lost = SweepDir(f"file://{tmp_path}/ended"), SweepDir(f"file://{tmp_path}/lost")
    with Lease(ended, print):
        pass
    assert ended.read_text("lease") == "{}"
    with Lease(lost, print) as lease:
        lease.reachable = False  # the driver saw its storage fail: writing would wait out its timeouts
    assert json.loads(lost.read_text("lease"))["pid"] == lease.me["pid"]
