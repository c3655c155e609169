"""What every shard of one remote set shares: :class:`RemoteSet` (filesystem, node-local cache,
retries, the shards a process has open) and :class:`ShardSpec` (one shard as the manifest gives it).

Split from :mod:`.reader`, which re-exports both.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

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
from ...format.paths import SUFFIX_CHECKSUMS, SUFFIX_LEGACY_INDEX, SUFFIX_OFFSETS
from ..msgpack import MsgpackReader
from .cache import ShardCache, default_cache_dir
from .etag import cat_whole, cat_with_etags, has_etags
from .retry import RetryPolicy, call_with_retries
from .set_offsets import RemoteSetOffsets
from .url import url_filesystem

__all__ = [
    "CACHED_SIDECARS",
    "DOWNLOAD_CHUNK",
    "RemoteSet",
    "ShardSpec",
    "index_from_data",
    "read_file",
]

#: bytes fetched per ranged request when a whole shard is downloaded
DOWNLOAD_CHUNK = 16 << 20
#: the sidecars a cached shard holds: what reading samples needs (offsets, or the legacy index,
#: and the per-sample checksums). Keys are fetched by :class:`RemoteShardReader` itself, once per
#: process and only when asked for; the key hashes, filter and md5 list serve key lookups and
#: whole-file checks that the reader does otherwise (its own key index, the manifest's md5).
CACHED_SIDECARS = (SUFFIX_OFFSETS, SUFFIX_LEGACY_INDEX, SUFFIX_CHECKSUMS)


@dataclass(frozen=True)
class ShardSpec:
    """One remote shard: where it is and what the manifest promises.

    Attributes:
        number: its position in the set.
        url: the data file's URL.
        samples: sample count.
        bytes: data file size (``None``: unknown).
        md5: data file md5 (``None``: unknown).
        sidecars: the sidecar suffixes present (``None``: unknown, each is tried).
    """

    number: int
    url: str
    samples: int
    bytes: int | None
    md5: str | None
    sidecars: tuple[str, ...] | None

    @property
    def entry_name(self) -> str:
        """The shard's name in the cache: its number and file name."""
        return f"{self.number:06d}-{PurePosixPath(self.url).name}"


def index_from_data(data: bytes, spec: ShardSpec, checksums: bool) -> dict[str, bytes]:
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


def read_file(fs: Any, path: str, start: int | None = None, end: int | None = None) -> bytes:
    """Bytes ``[start, end)`` of ``path`` on ``fs`` (the whole file without bounds): one request
    (on S3 a whole file is one GET, where s3fs's ``cat_file`` sends a HEAD first).

    Raises:
        OSError, FileNotFoundError, PermissionError: the filesystem's own errors (no retries).
    """
    if start is None and end is None and has_etags(fs):
        got = cat_whole(fs, [path])[0]
        if isinstance(got, BaseException):
            raise got
        return got
    return fs.cat_file(path, start=start, end=end)


class RemoteSet:
    """What every shard of one remote set shares: filesystem, cache, retries, open shards.

    Args:
        url: the manifest's (or single data file's) URL.
        storage_options: the filesystem's options.
        digest: the set's content digest (its cache folder).
        cache_dir: the node-local cache folder (``None``: :func:`default_cache_dir`).
        cache_limit: most bytes the cache holds (``None``: unlimited).
        retry: the retry policy of every request.
        keep_open: cached shards a process keeps open (held from eviction) at once; ``None``:
            every shard without a ``cache_limit`` (nothing to evict), else
            ``max(2, prefetch_shards)``.
        shard_count: the set's shards: one byte each in a page shared with the processes this
            one forks, set when a process opens the shard (see :meth:`opened`).

    Attributes:
        mode: ``"auto"`` (byte ranges unless the shard is cached) or ``"shards"`` (fetch whole
            shards into the cache; the Loader's choice).
        prefetch_shards: shards a :class:`~shardstream.read.remote.prefetch.ShardPrefetcher`
            fetches ahead.
        set_offsets: the set's offsets file, where its manifest names one (every shard's
            offsets in one request, see :mod:`.set_offsets`).
    """

    def __init__(
        self,
        *,
        url: str,
        storage_options: dict[str, Any] | None,
        digest: str,
        cache_dir: str | os.PathLike | None = None,
        cache_limit: int | None = None,
        retry: RetryPolicy | None = None,
        keep_open: int | None = None,
        prefetch_shards: int = 4,
        shard_count: int = 0,
    ) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.digest = digest
        self.cache = ShardCache(root=cache_dir or default_cache_dir(), limit=cache_limit)
        self.retry = retry or RetryPolicy()
        if keep_open is None:
            keep_open = 1 << 30 if cache_limit is None else max(2, prefetch_shards)
        self.keep_open = max(1, keep_open)
        self.prefetch_shards = max(0, prefetch_shards)
        self.mode = "auto"
        self.set_offsets: RemoteSetOffsets | None = None
        # shared with forked workers (a child keeps the parent's mapping): which shards a
        # reader opened since the prefetcher last cleared it
        self._opened: mmap.mmap | None = mmap.mmap(-1, shard_count) if shard_count else None
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._fs: Any = None
        self._lock = threading.Lock()
        self._open: OrderedDict[int, tuple[MsgpackReader, Any]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_fs", "_lock", "_open"):
            state.pop(name)
        state["_opened"] = None  # a page shared by fork only: a spawned process has none
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def _here(self) -> None:
        """Start afresh in a forked child: the parent's filesystem, locks and handles stay."""
        if self._pid != os.getpid():
            self._reset()

    @property
    def fs(self) -> Any:
        """This process's fsspec filesystem (built on first use, again after a fork)."""
        self._here()
        if self._fs is None:
            self._fs = url_filesystem(self.url, self.storage_options)[0]
        return self._fs

    def path(self, url: str) -> str:
        """The filesystem path of ``url``."""
        return self.fs._strip_protocol(url)

    # --- requests -----------------------------------------------------------------------------

    def read(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of ``url`` (all without bounds), retrying transient faults."""
        what = "read" if start is None else f"read bytes {start}-{end}"
        path = self.path(url)
        return call_with_retries(
            lambda: read_file(self.fs, path, start, end), url=url, what=what, policy=self.retry
        )

    def read_ranges(self, url: str, starts: list[int], ends: list[int]) -> list[bytes]:
        """Several byte ranges of ``url``: fetched together (concurrently where the filesystem
        is asynchronous), then each failed one alone with retries (see :meth:`read`)."""
        if not starts:
            return []
        path = self.path(url)
        try:
            got = list(self.fs.cat_ranges([path] * len(starts), starts, ends, on_error="return"))
        except Exception:  # the batch as a whole failed: every range alone
            got = [None] * len(starts)
        for i, item in enumerate(got):
            if not isinstance(item, bytes):
                got[i] = self.read(url, starts[i], ends[i])
        return got

    def download(self, spec: ShardSpec, folder: Path) -> str | None:
        """Write the shard's data file and its :data:`CACHED_SIDECARS` into ``folder``; returns
        the data's md5, or ``None`` where the data was verified without it (see below).

        A shard of at most :data:`DOWNLOAD_CHUNK` bytes whose md5 the manifest gives is one
        request: once its md5 matches, its offsets (and checksums, where the set has them) are
        computed from the data itself, which that md5 vouches for (:func:`index_from_data`).
        Otherwise the sidecars are requested together with the data (concurrently where the
        filesystem is asynchronous).

        On S3 such a shard with an ``.xxh3`` sidecar is fetched together with that sidecar
        and the store's ETag: where the ETag is the manifest's md5 (the store's own md5 of the
        object), the bytes that arrived are checked against the sidecar's per-sample xxh3
        digests instead of being hashed with md5 here (:mod:`.etag`); any other ETag falls
        back to md5.

        Raises:
            ChecksumMismatchError: the data disagrees with its xxh3 digests (the cache fetches
                it once more).
            RemoteStorageError, DatasetNotFoundError: a request failed.
        """
        name = PurePosixPath(spec.url).name
        size = spec.bytes
        if size is None:
            size = call_with_retries(
                lambda: int(self.fs.size(self.path(spec.url))), url=spec.url, what="size"
            )
        suffixes: tuple[str, ...] = CACHED_SIDECARS
        if spec.sidecars is not None:
            suffixes = tuple(s for s in suffixes if s in spec.sidecars)
        local = (
            size <= DOWNLOAD_CHUNK
            and spec.md5 is not None
            and spec.sidecars is not None
            and SUFFIX_LEGACY_INDEX not in spec.sidecars
        )
        if local and SUFFIX_CHECKSUMS in suffixes and has_etags(self.fs):
            vouched = self._download_vouched(spec, folder / name)
            if vouched:
                return None
        sidecars = [] if local else [spec.url + s for s in suffixes]
        md5 = hashlib.md5()
        if size <= DOWNLOAD_CHUNK:
            got = self.read_many([spec.url, *sidecars]) if sidecars else {}
            data = got.pop(spec.url, None)
            if data is None:
                data = self.read(spec.url)  # raises the typed error naming the URL
            md5.update(data)
            (folder / name).write_bytes(data)
            if local and md5.hexdigest() == spec.md5:  # else the cache fetches it once more
                checksums = SUFFIX_CHECKSUMS in suffixes
                for suffix, content in index_from_data(data, spec, checksums).items():
                    got[spec.url + suffix] = content
        else:
            with open(folder / name, "wb") as out:
                for start in range(0, size, DOWNLOAD_CHUNK):
                    block = self.read(spec.url, start, min(size, start + DOWNLOAD_CHUNK))
                    md5.update(block)
                    out.write(block)
            got = self.read_many(sidecars)
        for url, content in got.items():
            (folder / (name + url[len(spec.url) :])).write_bytes(content)
        return md5.hexdigest()

    def _download_vouched(self, spec: ShardSpec, target: Path) -> bool:
        """Fetch the data file with its ETag and ``.xxh3`` sidecar (one round trip); where the
        ETag is the manifest's md5, write the data, its offsets and the sidecar and check the
        data against the sidecar's digests. ``False`` (nothing written) where the ETag vouches
        for nothing or the sidecar is missing: the caller then checks the md5 itself."""
        path = self.path(spec.url)
        sidecar_url = spec.url + SUFFIX_CHECKSUMS

        def request() -> tuple[tuple[bytes, str], Any]:
            data, sidecar = cat_with_etags(self.fs, [path, path + SUFFIX_CHECKSUMS])
            if isinstance(data, BaseException):
                raise data
            if isinstance(sidecar, BaseException) and not isinstance(sidecar, FileNotFoundError):
                raise sidecar
            return data, sidecar

        (data, etag), sidecar = call_with_retries(
            request, url=spec.url, what="read", policy=self.retry
        )
        if etag != spec.md5 or not isinstance(sidecar, tuple):
            return False
        try:
            index = index_from_data(data, spec, checksums=False)
            offsets = np.frombuffer(index[SUFFIX_OFFSETS], dtype=">u8")
            expected = load_checksums(Path(sidecar_url), spec.samples, len(data), sidecar[0])
        except ShardstreamError as e:  # cut short or damaged on the way: fetched once more
            raise ChecksumMismatchError(spec.url, f"{getattr(e, 'problem', e)}") from None
        view = memoryview(data)
        for i, (a, b) in enumerate(zip(offsets.tolist(), offsets[1:].tolist())):
            if sample_digest(view[a:b]) != int(expected[i]):
                raise ChecksumMismatchError(
                    spec.url, f"sample {i} differs from its xxh3 digest in {sidecar_url}"
                )
        target.write_bytes(data)
        Path(str(target) + SUFFIX_OFFSETS).write_bytes(index[SUFFIX_OFFSETS])
        Path(str(target) + SUFFIX_CHECKSUMS).write_bytes(sidecar[0])
        return True

    def read_many(self, urls: list[str]) -> dict[str, bytes]:
        """Whole small files (concurrently where the filesystem is asynchronous); missing ones
        are left out, a failed one is read again alone with retries."""
        got: dict[str, bytes] = {}
        paths = [self.path(u) for u in urls]
        found: Any
        try:
            if has_etags(self.fs):  # one GET per file (s3fs's cat asks for each size first)
                found = dict(zip(paths, cat_whole(self.fs, paths)))
            else:
                found = self.fs.cat(paths, on_error="return")
        except Exception:
            found = {}
        for url in urls:
            item = found.get(self.path(url)) if isinstance(found, dict) else None
            if isinstance(item, bytes):
                got[url] = item
            elif not isinstance(item, FileNotFoundError):
                try:
                    got[url] = self.read(url)
                except DatasetNotFoundError:
                    pass
        return got

    # --- whole shards -------------------------------------------------------------------------

    def is_cached(self, spec: ShardSpec) -> bool:
        """Whether this process has the shard open or the cache holds it."""
        self._here()
        return spec.number in self._open or self.cache.contains(self.digest, spec.entry_name)

    def ensure(self, spec: ShardSpec) -> None:
        """Fetch the shard into the cache (if not there yet) without opening it."""
        held = self.cache.acquire(
            set_digest=self.digest,
            name=spec.entry_name,
            size=spec.bytes,
            md5=spec.md5,
            download=lambda folder: self.download(spec, folder),
            url=spec.url,
        )
        held.release()

    def opened(self, number: int) -> bool | None:
        """Whether a process of this set's family (this one, or one it forked) opened shard
        ``number`` since :meth:`clear_opened`; ``None`` where that is not known (a set
        unpickled in a spawned process, or one made without ``shard_count``)."""
        return None if self._opened is None else bool(self._opened[number])

    def clear_opened(self) -> None:
        """Forget which shards were opened (the prefetcher's start of an epoch)."""
        if self._opened is not None:
            self._opened[:] = bytes(len(self._opened))

    def local(self, spec: ShardSpec) -> MsgpackReader:
        """A reader of the cached shard, fetching it first; kept open (and held) for a while."""
        self._here()
        if self._opened is not None and spec.number < len(self._opened):
            self._opened[spec.number] = 1
        with self._lock:
            opened = self._open.get(spec.number)
            if opened is not None:
                self._open.move_to_end(spec.number)
                return opened[0]
        held = self.cache.acquire(
            set_digest=self.digest,
            name=spec.entry_name,
            size=spec.bytes,
            md5=spec.md5,
            download=lambda folder: self.download(spec, folder),
            url=spec.url,
        )
        try:
            with warnings.catch_warnings():  # no keys, key hashes or filter: by design
                warnings.filterwarnings("ignore", message=".* not found, some functionality")
                reader = MsgpackReader(held.dir / PurePosixPath(spec.url).name)
        except BaseException:
            held.release()
            raise
        with self._lock:
            self._open[spec.number] = (reader, held)
            while len(self._open) > self.keep_open:
                _, (old, old_held) = self._open.popitem(last=False)
                old.close()
                old_held.release()
        return reader

    def release(self, number: int) -> None:
        """Close the shard ``number`` in this process and let the cache evict it."""
        self._here()
        with self._lock:
            opened = self._open.pop(number, None)
        if opened is not None:
            opened[0].close()
            opened[1].release()
