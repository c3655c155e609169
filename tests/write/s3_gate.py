"""S3 for the write tests: moto's server on 127.0.0.1, and a gate in front of it.

:class:`S3Gate` is a real HTTP proxy on 127.0.0.1 that forwards every request to moto, counts
the uploads (PUT) per object, and holds the PUTs whose key matches a pattern: such a request
never reaches moto (the client waits for it), so a writer can be killed at a known point of its
uploads.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.read.remote.servers import MotoS3

_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _forward(self) -> None:
        gate = self.server.gate
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size else b""
        key = urlsplit(self.path).path
        if self.command == "PUT":
            if gate.hold is not None and gate.hold.search(key):
                gate.held.set()
                gate.closing.wait()  # never forwarded: the client is killed meanwhile
                self.close_connection = True
                return
            with gate.lock:
                gate.puts[key.rsplit("/", 1)[-1]] += 1
        connection = http.client.HTTPConnection(gate.host, gate.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        connection.request(self.command, self.path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP:
                self.send_header(name, value)
        length = response.getheader("Content-Length") if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(length or 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gate: S3Gate


class S3Gate:
    """A proxy to ``moto`` (see the module docstring).

    Args:
        moto: the S3 server.

    Attributes:
        options: storage options that reach moto through the gate.
        hold: a pattern of object keys whose PUT is held (``None``: none).
        held: set when a held PUT arrived.
        puts: forwarded PUTs per object name.
    """

    def __init__(self, *, moto: MotoS3) -> None:
        target = urlsplit(moto.endpoint)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.hold: re.Pattern[str] | None = None
        self.held = threading.Event()
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.puts: Counter[str] = Counter()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.gate = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.options = {**moto.options, "endpoint_url": self.endpoint}
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Drop the held requests and stop."""
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()


def make_bucket(moto: MotoS3, name: str) -> None:
    """Create bucket ``name`` on ``moto`` (if it does not exist)."""
    import boto3  # delayed: only the fixture needs it

    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    if name not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=name)


def objects(moto: MotoS3, prefix: str) -> dict[str, bytes]:
    """Every object under ``bucket/prefix`` by name (read afresh)."""
    fs = moto.filesystem()
    fs.invalidate_cache()
    if not fs.exists(prefix):
        return {}
    return {path.rsplit("/", 1)[-1]: fs.cat_file(path) for path in sorted(fs.ls(prefix))}


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    """moto's S3 server with an empty bucket ``out``."""
    server = MotoS3()
    make_bucket(server, "out")
    yield server
    server.close()


@pytest.fixture
def gate(moto: MotoS3) -> Iterator[S3Gate]:
    """A fresh gate in front of ``moto``."""
    proxy = S3Gate(moto=moto)
    yield proxy
    proxy.close()
