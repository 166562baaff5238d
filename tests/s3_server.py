"""An S3-compatible server on 127.0.0.1 for the storage tests: moto's standalone server (``moto[server]``,
a dev extra), a separate process started and stopped with bounded waits; no AWS mocks in-process.

Credentials and the endpoint follow pyarrow's and the AWS SDK's conventions (docs/CLUSTER.md): the
keys in the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), the endpoint in the URI's
query (``?endpoint_override=127.0.0.1:PORT&scheme=http``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
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


class Outage:
    """A TCP relay in front of the server, on its own port, that can go down and come back: while it
    is down its port refuses connections and open ones are cut, as when the server's process has gone
    (the server behind it keeps its buckets). Threads of this process; ``close`` ends it."""

    def __init__(self, server: S3Server) -> None:
        self.server, self.port = server, free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.up()

    @property
    def query(self) -> str:
        return f"?endpoint_override=127.0.0.1:{self.port}&scheme=http"

    def uri(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}{self.query}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    close = down

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: the outage began
            upstream = socket.create_connection(("127.0.0.1", self.server.port))
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
