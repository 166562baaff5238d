"""An S3-compatible server on 127.0.0.1 for the storage tests: moto's standalone server (``moto[server]``,
a dev extra), a separate process started and stopped with bounded waits; no AWS mocks in-process.

Credentials and the endpoint follow pyarrow's and the AWS SDK's conventions (docs/CLUSTER.md): the
keys in the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), the endpoint in the URI's
query (``?endpoint_override=127.0.0.1:PORT&scheme=http``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BUCKET = "lrsweep"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    """A running server: its port, its process and the environment a client needs."""

    port: int
    process: subprocess.Popen
    log: Path

    @property
    def query(self) -> str:
        return f"?endpoint_override=127.0.0.1:{self.port}&scheme=http"

    def uri(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}{self.query}"

    def env(self, cache: Path) -> dict:
        """The CLI's environment: credentials, a private cache (the journal's driver-local copy)."""
        return {**os.environ, **CREDENTIALS, "XDG_CACHE_HOME": str(cache)}

    def filesystem(self):
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1", scheme="http",
                                 endpoint_override=f"127.0.0.1:{self.port}", allow_bucket_creation=True)

    def files(self, prefix: str) -> list[str]:
        """Every object under ``<bucket>/<prefix>``, paths relative to it."""
        import pyarrow.fs as pafs

        base = f"{BUCKET}/{prefix}"
        infos = self.filesystem().get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path[len(base) + 1:] for i in infos if i.type == pafs.FileType.File)


def start(log: Path, timeout: float = 60) -> S3Server:
    """Start the server and its bucket; fail (after stopping it) if it does not answer within ``timeout``."""
    port = free_port()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(port, process, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.filesystem().create_dir(BUCKET)
            return server
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(server)
                raise RuntimeError(f"the S3 server did not start within {timeout:.0f} s:\n"
                                   f"{log.read_text()[-3000:]}") from None
            time.sleep(0.3)


def stop(server: S3Server, timeout: float = 10) -> None:
    """Stop the server (its whole process group), waiting at most ``timeout`` before SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
