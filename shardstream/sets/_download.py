"""Downloads of source files: ``urllib`` with retries that resume over HTTP, or fsspec.

``http``, ``https``, ``ftp`` and ``file`` URLs use :mod:`urllib`; other schemes (``s3://``,
``gs://``, ...) go through fsspec when it is installed. A transient failure (dropped connection,
timeout, 5xx) is tried again; over HTTP the next try asks only for the missing bytes
(``Range: bytes=N-``). Why not pooch or fsspec's HTTP for this: pooch retries by downloading
again from the first byte, and fsspec's HTTP file system needs aiohttp and has no retry of its
own; a range request on ``urllib`` is a few lines.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, BinaryIO

from ..errors import DownloadError, MissingDependencyError

__all__ = ["fetch"]

_CHUNK = 1 << 20
_URLLIB_SCHEMES = frozenset({"http", "https", "ftp", "file"})


def fetch(
    url: str,
    out: BinaryIO,
    *,
    timeout: float,
    progress: bool,
    desc: str,
    retries: int = 0,
    retry_wait: float = 1.0,
) -> tuple[str, int]:
    """Stream ``url`` into ``out``; returns (md5 hex, bytes received).

    Raises:
        DownloadError: the download failed (after ``retries`` more tries for transient faults).
        MissingDependencyError: the URL's scheme needs fsspec, which is not installed.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    transfer = _Transfer(out, progress=progress, desc=desc)
    try:
        if scheme in _URLLIB_SCHEMES:
            _fetch_urllib(url, transfer, timeout=timeout, retries=retries, retry_wait=retry_wait)
        else:
            _fetch_fsspec(url, transfer)
    finally:
        transfer.close()
    return transfer.digest.hexdigest(), transfer.received


class _Transfer:
    """What has arrived so far: the output file, its md5 and length, and the progress bar."""

    def __init__(self, out: BinaryIO, *, progress: bool, desc: str) -> None:
        self.out = out
        self.digest = hashlib.md5()
        self.received = 0
        self.bar: Any = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(unit="B", unit_scale=True, desc=f"download {desc}", file=sys.stderr)

    def restart(self, length: int | None) -> None:
        """Drop what arrived (the server sends the whole file again)."""
        self.out.seek(0)
        self.out.truncate()
        self.digest = hashlib.md5()
        self.received = 0
        if self.bar is not None:
            self.bar.reset(total=length)

    def add(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.digest.update(chunk)
        self.received += len(chunk)
        if self.bar is not None:
            self.bar.update(len(chunk))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Transient(Exception):
    """A failure worth another try (the connection dropped, timed out, or a 5xx answer)."""

    def __init__(self, error: DownloadError) -> None:
        super().__init__(str(error))
        self.error = error


def _fetch_urllib(
    url: str, transfer: _Transfer, *, timeout: float, retries: int, retry_wait: float
) -> None:
    """Fetch with up to ``retries`` more tries after a transient failure; an ``http(s)`` try
    after the first asks for the rest only (``Range: bytes=N-``) and appends it, and when the
    server sends the whole file instead (no range support) it starts over."""
    resumable = urllib.parse.urlsplit(url).scheme.lower() in ("http", "https")
    tries = 0
    while True:
        tries += 1
        try:
            offset = transfer.received if resumable else 0
            _try_urllib(url, transfer, timeout=timeout, offset=offset)
            return
        except _Transient as e:
            if tries > retries:
                if tries > 1:
                    raise DownloadError(
                        url, f"{e.error.problem}; gave up after {tries} tries"
                    ) from e.error
                raise e.error from e.error.__cause__
            time.sleep(retry_wait * 2 ** (tries - 1))


def _try_urllib(url: str, transfer: _Transfer, *, timeout: float, offset: int) -> None:
    headers = {"User-Agent": "shardstream"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        error = DownloadError(url, f"HTTP error {e.code} ({e.reason})")
        if e.code >= 500 or e.code in (408, 429):
            raise _Transient(error) from e
        raise error from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            raise _Transient(DownloadError(url, f"no answer within {timeout:g} s")) from e
        raise DownloadError(url, f"cannot connect ({e.reason})") from e
    except TimeoutError as e:
        raise _Transient(DownloadError(url, f"no answer within {timeout:g} s")) from e
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise DownloadError(url, f"cannot open ({e})") from e
    with response:
        headers_in = response.headers
        length_header = headers_in.get("Content-Length") if headers_in else None
        body = int(length_header) if length_header and length_header.isdigit() else None
        start = _range_start(headers_in) if getattr(response, "status", 200) == 206 else 0
        if start is None or start > transfer.received:
            raise DownloadError(url, f"answered a range request with {headers_in!s:.80}")
        if start != transfer.received:  # the whole file again (no range support): start over
            transfer.restart(body)
        length = None if body is None else start + body
        if transfer.bar is not None and transfer.bar.total is None and length is not None:
            transfer.bar.total = length
            transfer.bar.refresh()
        _copy(url, response, transfer, length=length, timeout=timeout)


def _range_start(headers: Any) -> int | None:
    """The first byte of a 206 answer, from ``Content-Range: bytes START-END/TOTAL``."""
    match = re.fullmatch(
        r"bytes (\d+)-\d+/(?:\d+|\*)", (headers.get("Content-Range") or "").strip()
    )
    return int(match.group(1)) if match else None


def _fetch_fsspec(url: str, transfer: _Transfer) -> None:
    try:
        import fsspec
    except ImportError:
        raise MissingDependencyError(
            f"{url}: downloading from this kind of URL needs fsspec (pip install fsspec)"
        ) from None
    try:
        with fsspec.open(url, "rb") as f:
            length = getattr(f, "size", None)
            if transfer.bar is not None and isinstance(length, int):
                transfer.bar.total = length
            try:
                _copy(
                    url,
                    f,
                    transfer,
                    length=length if isinstance(length, int) else None,
                    timeout=None,
                )
            except _Transient as e:
                raise e.error from e.error.__cause__
    except DownloadError:
        raise
    except (OSError, ValueError) as e:
        raise DownloadError(url, f"cannot download ({e})") from e


def _copy(
    url: str, source: Any, transfer: _Transfer, *, length: int | None, timeout: float | None
) -> None:
    """Copy ``source`` into ``transfer`` up to its end; a dropped connection, a timeout or a
    body shorter than ``length`` (the total size) raises :class:`_Transient`."""
    of = f"{length:,}" if length is not None else "?"
    while True:
        try:
            chunk = source.read(_CHUNK)
        except TimeoutError as e:
            raise _Transient(
                DownloadError(
                    url, f"timed out (no data for {timeout} s) after {transfer.received:,} bytes"
                )
            ) from e
        except http.client.IncompleteRead as e:
            raise _Transient(
                DownloadError(
                    url,
                    f"connection closed after {transfer.received + len(e.partial):,} of {of} bytes",
                )
            ) from e
        except (OSError, http.client.HTTPException) as e:
            raise _Transient(
                DownloadError(url, f"failed after {transfer.received:,} bytes ({e})")
            ) from e
        if not chunk:
            break
        transfer.add(chunk)
    if length is not None and transfer.received != length:
        raise _Transient(
            DownloadError(
                url,
                f"connection closed after {transfer.received:,} of {length:,} bytes "
                "(a truncated body)",
            )
        )
