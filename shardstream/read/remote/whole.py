"""A whole shard's files into a cache folder through the lean client (:mod:`.download`), and
the offsets and checks computed from a shard's data itself.

:func:`download_lean` is :meth:`RemoteSet.download
<shardstream.read.remote.remote_set.RemoteSet.download>` where the set's filesystem has a
:class:`~.download.Downloader`: the data file is read straight into the thread's reused
buffer, checked there and written to its file from it, in one round trip with the sidecars it
needs. Split from :mod:`.remote_set`, which re-exports :func:`index_from_data`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import msgpack
import numpy as np

from ...errors import (
    ChecksumMismatchError,
    CorruptIndexError,
    DatasetNotFoundError,
    ShardstreamError,
)
from ...format.checksums import encode_checksums, load_checksums, sample_digest
from ...format.index import encode_offsets
from ...format.paths import SUFFIX_CHECKSUMS, SUFFIX_OFFSETS
from .download import Downloader, Fetched, UnsupportedResponseError
from .retry import call_with_retries

if TYPE_CHECKING:
    from .remote_set import RemoteSet, ShardSpec

__all__ = [
    "DOWNLOAD_CHUNK",
    "NotLeanError",
    "download_lean",
    "index_from_data",
    "vouched_offsets",
]

#: bytes fetched per ranged request when a whole shard is downloaded
DOWNLOAD_CHUNK = 16 << 20


class NotLeanError(Exception):
    """The lean client met a response it does not follow (a redirect, a body of unknown
    length): the filesystem reads the shard instead."""


def download_lean(
    remote: RemoteSet,
    downloader: Downloader,
    spec: ShardSpec,
    folder: Path,
    size: int,
    suffixes: tuple[str, ...],
    local: bool,
) -> str | None:
    """Write the shard's data file and its sidecars ``suffixes`` into ``folder``, as
    :meth:`RemoteSet.download <shardstream.read.remote.remote_set.RemoteSet.download>` does
    (``local``: its offsets, and checksums, are computed from the data its md5 vouches for).

    On S3 (``downloader.etags``) a ``local`` shard whose sidecars include ``.xxh3`` is fetched
    with that sidecar: where the store's ETag is the manifest's md5, the data is checked
    against the sidecar's per-sample digests instead of being hashed with md5 here.

    Returns:
        The data's md5, or ``None`` where the ETag and the digests vouched for it.

    Raises:
        NotLeanError: a response the lean client does not follow (some files may be written).
        ChecksumMismatchError: the data disagrees with its xxh3 digests.
        RemoteStorageError, DatasetNotFoundError: a request failed.
        OSError: writing a file failed (the cache reports a full disk).
    """
    target = folder / PurePosixPath(spec.url).name
    if size > DOWNLOAD_CHUNK:  # in ranges, then the sidecars
        digest = hashlib.md5()
        with open(target, "wb", buffering=0) as out:
            for start in range(0, size, DOWNLOAD_CHUNK):
                end = min(size, start + DOWNLOAD_CHUNK)
                block = _fetch(remote, downloader, spec.url, (), start, end)[0].data
                assert block is not None  # (a failed request raised)
                digest.update(block)
                _write_all(out.fileno(), block)
        for url, sidecar in remote.read_many([spec.url + s for s in suffixes]).items():
            _write_file(Path(str(target) + url[len(spec.url) :]), sidecar)
        return digest.hexdigest()
    vouch = local and downloader.etags and SUFFIX_CHECKSUMS in suffixes
    if vouch:
        also: tuple[str, ...] = (spec.url + SUFFIX_CHECKSUMS,)
    else:
        also = () if local else tuple(spec.url + s for s in suffixes)
    got = _fetch(remote, downloader, spec.url, also)
    data = got[0].data
    assert data is not None  # (a failed request raised)
    files: dict[str, bytes | memoryview] = {}
    for url, fetched in zip(also, got[1:]):
        content: bytes | memoryview | None = fetched.data
        if fetched.error is not None:  # missing, else asked for once more, alone
            content = None
            if not isinstance(fetched.error, FileNotFoundError):
                content = _read(remote, downloader, url)
        if content is not None:
            files[url[len(spec.url) :]] = content
    if vouch:
        checksums = files.pop(SUFFIX_CHECKSUMS, None)
        if got[0].etag == spec.md5 and checksums is not None:
            files[SUFFIX_OFFSETS] = vouched_offsets(spec, data, bytes(checksums))
            files[SUFFIX_CHECKSUMS] = checksums
            _write_file(target, data)
            for suffix, content in files.items():
                _write_file(Path(str(target) + suffix), content)
            return None
    md5 = hashlib.md5(data).hexdigest()
    _write_file(target, data)
    if local and md5 == spec.md5:  # else the cache fetches it once more
        files.update(index_from_data(data, spec, SUFFIX_CHECKSUMS in suffixes))
    for suffix, content in files.items():
        _write_file(Path(str(target) + suffix), content)
    return md5


def index_from_data(data: bytes | memoryview, spec: ShardSpec, checksums: bool) -> dict[str, bytes]:
    """The ``.offsets`` (and with ``checksums`` the ``.xxh3``) content of a shard's data file,
    from the data itself: each sample is one msgpack object, skipped over without decoding.

    Raises:
        CorruptIndexError: the data is not ``spec.samples`` whole msgpack objects.
    """
    unpacker = msgpack.Unpacker(max_buffer_size=max(1, len(data)))
    unpacker.feed(data)
    offsets = [0]
    try:
        while offsets[-1] < len(data):
            unpacker.skip()
            offsets.append(unpacker.tell())
    except (msgpack.OutOfData, ValueError) as e:
        raise CorruptIndexError(
            spec.url, f"data does not split into msgpack samples: {e}"
        ) from None
    if len(offsets) - 1 != spec.samples:
        raise CorruptIndexError(
            spec.url, f"data holds {len(offsets) - 1} samples, the manifest says {spec.samples}"
        )
    out = {SUFFIX_OFFSETS: encode_offsets(offsets)}
    if checksums:
        view = memoryview(data)
        digests = [sample_digest(view[a:b]) for a, b in zip(offsets, offsets[1:])]
        out[SUFFIX_CHECKSUMS] = encode_checksums(digests, len(data))
    return out


def vouched_offsets(spec: ShardSpec, data: bytes | memoryview, sidecar: bytes) -> bytes:
    """The ``.offsets`` of a data file the store's ETag vouches for, once every sample of
    ``data`` matched its xxh3 digest in ``sidecar`` (the shard's ``.xxh3`` content).

    Raises:
        ChecksumMismatchError: the data or the sidecar was cut short or damaged on the way
            (the cache fetches the shard once more).
    """
    sidecar_url = spec.url + SUFFIX_CHECKSUMS
    try:
        index = index_from_data(data, spec, checksums=False)
        offsets = np.frombuffer(index[SUFFIX_OFFSETS], dtype=">u8")
        expected = load_checksums(Path(sidecar_url), spec.samples, len(data), sidecar)
    except ShardstreamError as e:  # cut short or damaged on the way: fetched once more
        raise ChecksumMismatchError(spec.url, f"{getattr(e, 'problem', e)}") from None
    view = memoryview(data)
    for i, (a, b) in enumerate(zip(offsets.tolist(), offsets[1:].tolist())):
        if sample_digest(view[a:b]) != int(expected[i]):
            raise ChecksumMismatchError(
                spec.url, f"sample {i} differs from its xxh3 digest in {sidecar_url}"
            )
    return index[SUFFIX_OFFSETS]


# --- requests with retries -----------------------------------------------------------------------


def _fetch(
    remote: RemoteSet,
    downloader: Downloader,
    url: str,
    also: tuple[str, ...],
    start: int | None = None,
    end: int | None = None,
) -> list[Fetched]:
    """:meth:`Downloader.fetch` with the set's retries: where the data file fails, it is asked
    for alone, and each of ``also`` then alone too (its ``error`` set)."""
    what = "read" if start is None else f"read bytes {start}-{end}"
    tries = 0

    def request() -> list[Fetched] | None:
        nonlocal tries
        tries += 1
        try:
            if tries == 1:
                return downloader.fetch(url, also, start, end)
            again = ConnectionError("asked for with a request that failed")
            alone = downloader.fetch(url, (), start, end)
            return alone + [Fetched(None, "", again) for _ in also]
        except UnsupportedResponseError:
            return None

    got = call_with_retries(request, url=url, what=what, policy=remote.retry)
    if got is None:
        raise NotLeanError(url)
    return got


def _read(remote: RemoteSet, downloader: Downloader, url: str) -> bytes | None:
    """The whole small file ``url`` with the set's retries (``None``: missing)."""

    def request() -> bytes | None:
        try:
            return downloader.read(url)
        except UnsupportedResponseError:
            return None

    try:
        got = call_with_retries(request, url=url, what="read", policy=remote.retry)
    except DatasetNotFoundError:
        return None
    if got is None:
        raise NotLeanError(url)
    return got


def _write_file(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` as the file ``path`` (created or truncated)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
