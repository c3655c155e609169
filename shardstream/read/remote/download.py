"""Whole files over plain HTTP/1.1 connections: the shard cache's lean download path.

s3fs (aiobotocore, aiohttp) reads a 4 MB object as many chunks, joins them into one ``bytes``
and leaves the rest to the caller: about 1.5-2 ms of CPU per MB on loopback, more than the
loader's workers spend decoding. A :class:`Downloader` sends a plain ``GET`` on a persistent
connection of the calling thread and reads the body with ``readinto`` straight into a buffer
the thread reuses, from which the cache writes it to its file: no chunk objects, no join.

On S3 each request is a presigned URL of a synchronous botocore client built from the s3fs
filesystem's own configuration (endpoint, credentials, region, addressing style, timeouts);
over HTTP(S) the URL itself. :func:`downloader_for` builds one only for configurations it
covers in full (an s3fs filesystem without requester-pays, a session of its own or region
caching, no proxy; an HTTP filesystem without options of its own); anything else keeps to the
filesystem (``None``).

Several files asked for together (a shard and its sidecars) go out at once, each on a
connection of its own, before any response is read: one round trip for all. Faults are
raised as the fsspec filesystems raise them, for :func:`~.retry.call_with_retries`: a missing
file as ``FileNotFoundError``, 401/403 as ``PermissionError`` (the status in the message),
other statuses as :class:`HTTPStatusError` (``.status``), resets and timeouts as ``OSError``,
a body cut short as :class:`BodyCutShortError`. A connection that failed is closed, never
reused.
"""

from __future__ import annotations

import http.client
import os
import re
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from .url import HTTP_CONNECT_TIMEOUT_S, HTTP_READ_TIMEOUT_S

__all__ = [
    "BodyCutShortError",
    "Downloader",
    "Fetched",
    "HTTPStatusError",
    "UnsupportedResponseError",
    "downloader_for",
]

#: the most bytes of an error response read for its message
_ERROR_BODY = 4096
_S3_CODE = re.compile(rb"<Code>([^<]{1,80})</Code>")


class HTTPStatusError(OSError):
    """A response with a status other than success, not found or access denied.

    Attributes:
        status: the HTTP status.
    """

    def __init__(self, url: str, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason} for {url}")
        self.status = status


class BodyCutShortError(ConnectionError):
    """The connection ended before the whole body (its ``Content-Length``) arrived."""


class UnsupportedResponseError(Exception):
    """A response the lean path does not follow (a redirect, a body of unknown length): the
    caller reads the file through its filesystem instead."""


class Fetched:
    """One file of a :meth:`Downloader.fetch`.

    Attributes:
        data: its bytes: for the first file a view of the thread's buffer (valid until the
            thread's next fetch), for the others ``bytes``; ``None`` where it failed.
        etag: the response's ``ETag``, quotes stripped (``""``: none).
        error: why it failed (``FileNotFoundError``: it is missing); ``None`` where it came.
    """

    __slots__ = ("data", "error", "etag")

    def __init__(
        self, data: memoryview | bytes | None, etag: str, error: BaseException | None = None
    ) -> None:
        self.data = data
        self.etag = etag
        self.error = error


class Downloader:
    """GETs of whole files (or one byte range) on persistent connections, one set per thread.

    Args:
        address: the plain ``http(s)://...`` URL to request for a file's URL (a presigned one
            on S3).
        connect_timeout: seconds a connection may take to open.
        read_timeout: seconds a response may stay silent.
        ssl_context: the context of ``https`` connections (``None``: the default one).
        etags: whether the store's ETag of a whole object is its md5 (S3).
    """

    def __init__(
        self,
        *,
        address: Callable[[str], str],
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        etags: bool = False,
    ) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ssl_context = ssl_context
        self.etags = etags
        self._local = threading.local()

    def fetch(
        self, url: str, also: tuple[str, ...] = (), start: int | None = None, end: int | None = None
    ) -> list[Fetched]:
        """``url`` (bytes ``[start, end)`` of it with bounds) and the whole small files ``also``,
        requested at once on connections of this thread.

        Returns:
            A :class:`Fetched` for ``url``, then one for each of ``also`` (with its ``error``
            where that one failed: it is then asked for alone, see :meth:`read`).

        Raises:
            FileNotFoundError: ``url`` is missing.
            PermissionError, HTTPStatusError, OSError: the request of ``url`` failed (see the
                module docstring).
            UnsupportedResponseError: a redirect, a body of unknown length, or one that is not
                the byte range asked for.
        """
        headers = {} if start is None else {"Range": f"bytes={start}-{(end or 0) - 1}"}
        sent: list[Any] = [self._send(url, headers)]
        try:
            for other in also:
                try:
                    sent.append(self._send(other, {}))
                except Exception as e:
                    sent.append(e)
            got = [self._receive(*sent[0], into_buffer=True)]
        except BaseException:
            for request in sent:  # a response left unread spoils its connection
                if isinstance(request, tuple):
                    request[0].close()
            raise
        if start is not None and len(got[0].data or b"") != (end or 0) - start:
            for request in sent[1:]:
                if isinstance(request, tuple):
                    request[0].close()
            raise UnsupportedResponseError(f"{url}: the server ignored the byte range")
        for request in sent[1:]:
            if isinstance(request, BaseException):
                got.append(Fetched(None, "", request))
                continue
            try:
                got.append(self._receive(*request, into_buffer=False))
            except Exception as e:
                got.append(Fetched(None, "", e))
        return got

    def read(self, url: str) -> bytes:
        """The whole small file ``url`` as ``bytes`` (the thread's buffer untouched).

        Raises:
            FileNotFoundError, PermissionError, HTTPStatusError, OSError,
            UnsupportedResponseError: as :meth:`fetch`.
        """
        data = self._receive(*self._send(url, {}), into_buffer=False).data
        assert isinstance(data, bytes)
        return data

    # --- connections ----------------------------------------------------------------------

    def _send(self, url: str, headers: dict[str, str]) -> tuple[Any, str, str, dict[str, str]]:
        """Send the request for ``url`` on a connection of this thread."""
        parts = urllib.parse.urlsplit(self.address(url))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(parts.scheme, parts.hostname or "", parts.port)
        try:
            conn.request("GET", target, headers=headers)
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            if not conn.used:
                raise
            # the server closed this idle connection: once more on a new one
            conn = self._connection(parts.scheme, parts.hostname or "", parts.port)
            conn.request("GET", target, headers=headers)
        return conn, url, target, headers

    def _receive(
        self, conn: Any, url: str, target: str, headers: dict[str, str], *, into_buffer: bool
    ) -> Fetched:
        """Read the response to the request sent on ``conn``, which goes back to the thread's
        idle connections once the body was read in full (closed on any fault)."""
        try:
            try:
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not conn.used:
                    raise
                conn.close()  # an idle connection the server had closed: once more, new
                conn = self._connection(conn.scheme, conn.host, conn.port)
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
            fetched = self._body(response, url, into_buffer)
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            conn.used = True
            self._idle().setdefault((conn.scheme, conn.host, conn.port), []).append(conn)
        return fetched

    def _body(self, response: Any, url: str, into_buffer: bool) -> Fetched:
        """The body of ``response`` (see :meth:`fetch`)."""
        if response.status not in (200, 206):
            raise _status_error(url, response)
        etag = (response.getheader("ETag") or "").strip('"')
        size = response.length
        if size is None:
            raise UnsupportedResponseError(f"{url}: a body of unknown length")
        if not into_buffer:
            data = response.read(size)
            if len(data) != size:
                raise BodyCutShortError(f"{url}: the body ended after {len(data)} of {size} bytes")
            return Fetched(data, etag)
        view = self._buffer(size)
        done = 0
        while done < size:
            n = response.readinto(view[done:])
            if not n:
                raise BodyCutShortError(f"{url}: the body ended after {done} of {size} bytes")
            done += n
        return Fetched(view, etag)

    def _idle(self) -> dict[tuple[str, str, int], list[Any]]:
        idle = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = {}
        return idle

    def _connection(self, scheme: str, host: str, port: int | None) -> Any:
        """An idle connection of this thread to ``(scheme, host, port)``, else a new one."""
        port = port or (443 if scheme == "https" else 80)
        idle = self._idle().get((scheme, host, port))
        if idle:
            return idle.pop()
        conn: Any
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=self.connect_timeout, context=self.ssl_context
            )
        elif scheme == "http":
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        else:
            raise UnsupportedResponseError(f"no lean path for {scheme}:// addresses")
        conn.connect()
        conn.sock.settimeout(self.read_timeout)
        conn.scheme, conn.used = scheme, False
        return conn

    def _buffer(self, size: int) -> memoryview:
        """The first ``size`` bytes of this thread's reused buffer (grown as needed)."""
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = self._local.buffer = bytearray(max(size, 4 << 20))
        return memoryview(buffer)[:size]


def _status_error(url: str, response: Any) -> BaseException:
    """The exception of a response with status ``response.status`` (its body read in part)."""
    status, reason = response.status, response.reason
    if 300 <= status < 400:
        return UnsupportedResponseError(f"{url}: HTTP {status} {reason} (a redirect)")
    try:
        body = response.read(_ERROR_BODY)
    except (OSError, http.client.HTTPException):
        body = b""
    code = _S3_CODE.search(body)
    if code:
        reason = f"{reason} ({code.group(1).decode('ascii', 'replace')})"
    if status == 404:
        return FileNotFoundError(2, f"HTTP 404 {reason}", url)
    if status in (401, 403):
        return PermissionError(13, f"HTTP {status} {reason}", url)
    return HTTPStatusError(url, status, reason)


# --- building one for a filesystem ---------------------------------------------------------------

_S3_CLIENT_OPTIONS = frozenset(
    {
        "region_name",
        "endpoint_url",
        "use_ssl",
        "verify",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
)
#: the botocore clients built so far, by configuration; a forked child keeps its parent's (they
#: only presign: no connections of their own, so nothing a child could share by mistake)
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()  # a parent's thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def downloader_for(fs: Any, storage_options: dict[str, Any]) -> Downloader | None:
    """A :class:`Downloader` that reads what ``fs`` reads, or ``None`` where ``fs`` is not an
    s3fs or HTTP filesystem or its configuration is one the lean path does not cover (see the
    module docstring). ``SHARDSTREAM_LEAN_DOWNLOADS=0`` turns the lean path off."""
    if os.environ.get("SHARDSTREAM_LEAN_DOWNLOADS", "1") == "0":
        return None
    if _has_proxy():
        return None
    module = type(fs).__module__
    try:
        if module == "s3fs.core" and type(fs).__name__ == "S3FileSystem":
            return _s3_downloader(fs, storage_options)
        if module == "fsspec.implementations.http" and type(fs).__name__ == "HTTPFileSystem":
            return _http_downloader(storage_options)
    except Exception:  # a configuration botocore cannot build synchronously: s3fs reads
        return None
    return None


def _has_proxy() -> bool:
    proxies = urllib.request.getproxies()
    return bool(proxies.get("http") or proxies.get("https") or proxies.get("all"))


def _s3_downloader(fs: Any, storage_options: dict[str, Any]) -> Downloader | None:
    if fs.req_kw or getattr(fs, "cache_regions", False):
        return None
    if storage_options.get("session") is not None:
        return None  # a session the caller made (its credentials, hooks): s3fs's own
    client_kwargs = dict(fs.client_kwargs)
    if set(client_kwargs) - _S3_CLIENT_OPTIONS:
        return None
    config_kwargs = fs._prepare_config_kwargs()
    if {"proxies", "proxies_config", "connector_args", "http_session_cls"} & set(config_kwargs):
        return None
    init_kwargs = {
        "aws_access_key_id": fs.key,
        "aws_secret_access_key": fs.secret,
        "aws_session_token": fs.token,
        "endpoint_url": fs.endpoint_url,
    }
    init_kwargs = {
        k: v for k, v in init_kwargs.items() if v is not None and v != client_kwargs.get(k)
    }
    if "use_ssl" not in client_kwargs:
        init_kwargs["use_ssl"] = fs.use_ssl
    if fs.anon:
        from botocore import UNSIGNED

        for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
            init_kwargs.pop(name, None)
            client_kwargs.pop(name, None)
        config_kwargs["signature_version"] = UNSIGNED
    key = repr((sorted(init_kwargs.items()), sorted(client_kwargs.items())))
    key += repr((sorted(config_kwargs.items(), key=str), sorted(fs.kwargs.items(), key=str)))
    client = _s3_client(key, fs.kwargs, config_kwargs, init_kwargs, client_kwargs)
    split = fs.split_path

    def address(url: str) -> str:
        bucket, path, version = split(url)
        params = {"Bucket": bucket, "Key": path}
        if version:
            params["VersionId"] = version
        return str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600))

    verify = client_kwargs.get("verify")
    return Downloader(
        address=address,
        connect_timeout=float(config_kwargs.get("connect_timeout") or 60),
        read_timeout=float(config_kwargs.get("read_timeout") or 60),
        ssl_context=_ssl_context(verify),
        etags=True,
    )


def _s3_client(
    key: str,
    session_kwargs: dict[str, Any],
    config_kwargs: dict[str, Any],
    init_kwargs: dict[str, Any],
    client_kwargs: dict[str, Any],
) -> Any:
    """A synchronous botocore S3 client of this configuration, built once and kept by forked
    children too (loading the service model costs ~0.2 s of CPU; a client is safe to share
    between threads)."""
    import botocore.config  # delayed: botocore comes with the s3 extra only
    import botocore.session

    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            session = botocore.session.Session(**session_kwargs)
            client = session.create_client(
                "s3", config=botocore.config.Config(**config_kwargs), **init_kwargs, **client_kwargs
            )
            _cache_endpoints(client)
            _clients[key] = client
    return client


def _cache_endpoints(client: Any) -> None:
    """Resolve each bucket's endpoint once per operation: botocore evaluates S3's endpoint rules
    again for every presigned URL (about 40 % of its CPU), and those rules read the bucket and
    the client's configuration, never the key."""
    resolver: Any = getattr(client, "_ruleset_resolver", None)
    construct = getattr(resolver, "construct_endpoint", None)
    if construct is None:
        return
    known: dict[tuple[str, str], Any] = {}

    def construct_endpoint(operation_model: Any, call_args: Any, request_context: Any) -> Any:
        key = (operation_model.name, str((call_args or {}).get("Bucket")))
        found = known.get(key)
        if found is None:
            found = known[key] = construct(
                operation_model=operation_model,
                call_args=call_args,
                request_context=request_context,
            )
        return found

    resolver.construct_endpoint = construct_endpoint


def _ssl_context(verify: Any) -> ssl.SSLContext:
    """The TLS context of ``verify`` as botocore reads it (``False``: no checks; a path: that CA
    bundle; else ``AWS_CA_BUNDLE`` or botocore's default bundle)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    bundle = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE")
    if not bundle:
        try:
            from botocore.httpsession import get_cert_path

            bundle = get_cert_path(True)
        except ImportError:
            bundle = None
    return ssl.create_default_context(cafile=bundle if isinstance(bundle, str) else None)


def _http_downloader(storage_options: dict[str, Any]) -> Downloader | None:
    if set(storage_options) - {"client_kwargs"}:
        return None
    client = dict(storage_options.get("client_kwargs", {}))
    timeout = client.pop("timeout", None)
    if client:
        return None
    connect = getattr(timeout, "sock_connect", None) or HTTP_CONNECT_TIMEOUT_S
    read = getattr(timeout, "sock_read", None) or float(
        os.environ.get("SHARDSTREAM_HTTP_READ_TIMEOUT", HTTP_READ_TIMEOUT_S)
    )

    def address(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.quote(parts.path, safe="/%:@!$&'()*+,;=~")
        return urllib.parse.urlunsplit(parts._replace(path=path))

    return Downloader(
        address=address,
        connect_timeout=float(connect),
        read_timeout=float(read),
        ssl_context=ssl.create_default_context(),  # aiohttp's default: the system's CAs
    )
