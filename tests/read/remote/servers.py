"""Real servers on 127.0.0.1 for the remote tests: an HTTP file server with Range support and
fault injection, and moto's S3 server.

:class:`RangeServer` serves a folder over HTTP/1.1 (keep-alive) with ``Range: bytes=a-b``, counts the GET
requests and bytes sent per path, and on demand answers every ``fail_every``-th request with a
503 or a reset connection, refuses paths with 403, or goes away entirely (its port closed) for a
few seconds.
"""

from __future__ import annotations

import collections
import os
import re
import socket
import struct
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class _Handler(SimpleHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: a connection serves many requests
    disable_nagle_algorithm = True  # else headers and body wait for a delayed ACK (40 ms)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        fault = owner.fault_for(path, head)
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # shutdown acts on the connection itself: a close alone sends nothing while a
            # process forked from this one (a loader worker) still holds a copy of the socket
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if isinstance(fault, int):
            self.send_error(fault)
            return
        file = owner.root / path.lstrip("/")
        if not file.is_file():
            self.send_error(404)
            return
        data_size = file.stat().st_size
        start, stop = 0, data_size
        ranged = self.headers.get("Range")
        if ranged:
            match = _RANGE.match(ranged.strip())
            if not match:
                self.send_error(416)
                return
            start = int(match.group(1))
            stop = min(data_size, int(match.group(2)) + 1) if match.group(2) else data_size
            if start >= data_size and data_size:
                self.send_error(416)
                return
        body = b""
        if not head:
            with open(file, "rb") as f:
                f.seek(start)
                body = f.read(stop - start)
            owner.count(path, len(body), whole=len(body) == data_size)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{data_size}")
        self.end_headers()
        if not head:
            if owner.trickle_s:  # slowly, in 8 KiB pieces (to be killed mid-download)
                for at in range(0, len(body), 8192):
                    self.wfile.write(body[at : at + 8192])
                    self.wfile.flush()
                    time.sleep(owner.trickle_s)
            else:
                self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: RangeServer


class RangeServer:
    """An HTTP server of ``root`` on 127.0.0.1 (see the module docstring).

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        gets: GET requests served per path (a Counter).
        sent: bytes sent per path.
        whole: GET requests per path that sent the entire file.
        fail_every: answer every n-th request with ``fail_with`` (0: never).
        fail_with: ``"reset"`` or an HTTP status.
        forbidden: paths answered with 403.
        trickle_s: pause after every 8 KiB of a body (0: none).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.gets: collections.Counter[str] = collections.Counter()
        self.sent: collections.Counter[str] = collections.Counter()
        self.whole: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.fail_every = 0
        self.fail_with: str | int = 503
        self.failed = 0
        self.forbidden: set[str] = set()
        self.trickle_s = 0.0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        return thread

    def fault_for(self, path: str, head: bool) -> str | int | None:
        """The fault to answer this request with, if any."""
        with self.lock:
            self.requests += 1
            if path in self.forbidden:
                return 403
            if self.fail_every and self.requests % self.fail_every == 0:
                self.failed += 1
                return self.fail_with
        return None

    def count(self, path: str, size: int, whole: bool) -> None:
        """Record a GET of ``path`` that sent ``size`` bytes (``whole``: the entire file)."""
        with self.lock:
            self.gets[path] += 1
            self.sent[path] += size
            self.whole[path] += whole

    def reset_counts(self) -> None:
        """Forget the counts and faults."""
        with self.lock:
            self.gets.clear()
            self.sent.clear()
            self.whole.clear()
            self.requests = self.failed = self.fail_every = 0
            self.forbidden = set()
            self.trickle_s = 0.0

    def go_away(self, seconds: float) -> threading.Thread:
        """Close the port now and listen again after ``seconds`` (in a thread, returned)."""
        self._server.shutdown()
        self._server.server_close()

        def come_back() -> None:
            time.sleep(seconds)
            self._server = _Server(("127.0.0.1", self.port), _Handler)
            self._server.owner = self
            self._thread = self._start()

        thread = threading.Thread(target=come_back, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


class MotoS3:
    """moto's S3 server on 127.0.0.1 (a real HTTP server speaking the S3 API).

    Attributes:
        requests: requests served per ``(method, path, query)`` (a Counter).
    """

    def __init__(self) -> None:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        #: requests served, per ``(method, path, query)`` (the query's ``list-type=2&prefix=...``
        #: tells listings apart)
        self.requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._server = _MotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.on_request = self._count
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.options = {
            "key": "testing",
            "secret": "testing",
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
            "skip_instance_cache": True,
        }

    def filesystem(self) -> Any:
        """An s3fs filesystem on the server."""
        import s3fs

        return s3fs.S3FileSystem(**self.options)

    def upload(self, folder: Path, bucket: str, prefix: str) -> str:
        """Put every file of ``folder`` under ``s3://bucket/prefix/``; returns that URL."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
            client.create_bucket(Bucket=bucket)
        fs = self.filesystem()
        for name in sorted(os.listdir(folder)):
            fs.put_file(str(folder / name), f"{bucket}/{prefix}/{name}")
        return f"s3://{bucket}/{prefix}"

    def _count(self, method: str, path: str, query: str) -> None:
        with self._lock:
            self.requests[(method, path, query)] += 1

    def reset_counts(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        """Stop the server."""
        self._server.stop()


def _moto_server_class() -> type:
    """moto's threaded server answering ``Expect: 100-continue`` once.

    werkzeug's handler sends ``100 Continue`` in ``run_wsgi`` and http.server's ``parse_request``
    sends one too: a client that sends the header (botocore for file bodies, since 1.36) reads
    the second as the final response and waits until its read timeout.
    """
    from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class OneContinue(WSGIRequestHandler):
        def handle_expect_100(self) -> bool:
            return True  # run_wsgi sends it

    class Server(ThreadedMotoServer):
        on_request: Any = None  # called with (method, path, query) of every request

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def counted(environ: dict, start_response: Any) -> Any:
                if self.on_request is not None:
                    self.on_request(
                        environ["REQUEST_METHOD"],
                        environ.get("PATH_INFO", ""),
                        environ.get("QUERY_STRING", ""),
                    )
                return app(environ, start_response)

            self._server = make_server(
                self._ip_address, self._port, counted, True, request_handler=OneContinue
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server


def _MotoServer(**kwargs: Any) -> Any:  # noqa: N802 - stands for the class
    return _moto_server_class()(**kwargs)
