"""Readers of remote sets: a manifest or a single data file behind a URL.

:func:`open_remote` reads the manifest (one request) and, where the filesystem lists folders,
the names that start with the first shard's (one more: its sidecars, taken for every shard's),
and returns a :class:`~shardstream.read.ShardedReader` of
:class:`RemoteShardReader` whose lengths come from the manifest: opening costs a handful of
requests, not one per shard.

A :class:`RemoteShardReader` reads in one of two ways:

- **whole shards** (``RemoteSet.mode == "shards"``, which the Loader sets, or a shard already in
  the cache): the shard is fetched into the node-local :class:`~shardstream.read.remote.cache.
  ShardCache` and read through a :class:`~shardstream.read.MsgpackReader` on the cached files;
- **byte ranges** (the default for ``reader[i]``, ``cat``, ``sample``, queries): the shard's
  ``.offsets`` (and ``.keys`` when keys are asked for) are fetched once and kept in memory; each
  sample is one range request, ``getitems`` and ``slice`` fetch their ranges concurrently where
  the filesystem is asynchronous.

Every request goes through :func:`~shardstream.read.remote.retry.call_with_retries`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ...errors import CorruptIndexError, ShardstreamError
from ...format.codec import unpackb
from ...format.index import load_keys, load_offsets
from ...format.manifest import _FORMAT, _VERSION, _entry
from ...format.paths import (
    SIDECAR_SUFFIXES,
    SUFFIX_KEYS,
    SUFFIX_OFFSETS,
)
from ...format.set_offsets import parse_set_offsets_entry
from ..msgpack import MsgpackReader
from ..reader import Reader, normalize_index, normalize_range
from ..sharded import ShardedReader
from .cache import ShardCache, default_cache_dir
from .remote_set import CACHED_SIDECARS, DOWNLOAD_CHUNK, RemoteSet, ShardSpec, read_file
from .retry import RetryPolicy, call_with_retries
from .set_offsets import RemoteSetOffsets
from .url import protocol_of, url_filesystem, url_join, url_parent

__all__ = [
    "CACHED_SIDECARS",
    "DOWNLOAD_CHUNK",
    "RemoteSet",
    "RemoteShardReader",
    "ShardSpec",
    "manifest_sample_sizes",
    "open_remote",
]

#: protocols whose "listing" is a page of links, if any: their sidecars are probed instead
_NO_LISTING = ("http", "https")
#: most manifest bytes read (a manifest lists shards, a few hundred bytes each)
_MAX_MANIFEST = 256 << 20


class RemoteShardReader(Reader):
    """One shard of a remote set (see the module docstring for how it reads).

    Args:
        remote: the set's shared state.
        spec: the shard.
    """

    def __init__(self, *, remote: RemoteSet, spec: ShardSpec) -> None:
        super().__init__()
        self.remote = remote
        self.spec = spec
        self.path = spec.url
        self._offsets_arr: np.ndarray | None = None
        self._keys: list[Any] | None = None
        self._index: dict[Any, int] | None = None

    def _whole(self) -> MsgpackReader | None:
        """The cached shard's reader when whole shards are read, else ``None``."""
        remote = self.remote
        if remote.mode == "shards" or remote.is_cached(self.spec):
            return remote.local(self.spec)
        return None

    def _offsets(self) -> np.ndarray:
        if self._offsets_arr is None and self.remote.is_cached(self.spec):
            self._offsets_arr = self.remote.local(self.spec).offsets.astype(np.int64)
        if self._offsets_arr is None:
            listed = self.remote.set_offsets
            part = None if listed is None else listed.part(self.remote, self.spec.number)
            if part is None:
                part = self.remote.read(self.spec.url + SUFFIX_OFFSETS)
            return self.take_offsets(part)
        return self._offsets_arr

    def take_offsets(self, data: bytes) -> np.ndarray:
        """Keep (and return) the offsets read from the shard's ``.offsets`` file ``data``.

        Raises:
            CorruptIndexError, IndexMismatchError: ``data`` is not this shard's offsets file.
        """
        url = self.spec.url
        size = self.spec.bytes
        if size is None:
            size = int(np.frombuffer(data[-8:], dtype=">u8")[0]) if len(data) >= 8 else 0
        self._offsets_arr = load_offsets(
            Path(url + SUFFIX_OFFSETS), self.spec.samples, Path(url), size, data
        ).astype(np.int64)
        return self._offsets_arr

    @property
    def has_offsets(self) -> bool:
        """Whether this process knows the shard's offsets (no request needed)."""
        return self._offsets_arr is not None

    def _key_list(self) -> list[Any]:
        if self._keys is None:
            url = self.spec.url + SUFFIX_KEYS
            self._keys = load_keys(Path(url), self.spec.samples, self.remote.read(url))
        return self._keys

    @property
    def offsets(self) -> np.ndarray:
        """Sample start offsets (``len + 1`` values; one request the first time)."""
        view = self._offsets().astype(np.uint64)
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return self.spec.samples

    def __contains__(self, key: object) -> bool:
        try:
            self.find_index(key)
        except KeyError:
            return False
        return True

    def find_index(self, key: Any) -> int:
        """Index of the first sample with ``key``. Raises ``KeyError`` if absent."""
        if self._index is None:
            index: dict[Any, int] = {}
            for i, k in enumerate(self._key_list()):
                try:
                    index.setdefault(k, i)
                except TypeError:
                    continue  # an unhashable key cannot be looked up
            self._index = index
        try:
            return self._index[key]
        except (KeyError, TypeError):
            raise KeyError(key) from None

    def find_key(self, index: int) -> Any:
        """Key of the sample at ``index``."""
        return self._key_list()[normalize_index(index, len(self))]

    def get(self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True) -> Any:
        """The sample at ``index`` (one range request unless the shard is read whole)."""
        whole = self._whole()
        if whole is not None:
            sample = whole.get(index, False, raw, copy)
            return (self.find_key(index), sample) if yield_key else sample
        i = normalize_index(index, len(self))
        offsets = self._offsets()
        data = self.remote.read(self.spec.url, int(offsets[i]), int(offsets[i + 1]))
        return self._finish(i, data, yield_key, raw)

    def getitems(
        self,
        indices: Sequence[int] | np.ndarray,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> list[Any]:
        """Samples at ``indices`` (their ranges fetched together)."""
        whole = self._whole()
        if whole is not None:
            samples = whole.getitems(indices, False, raw, copy)
            if not yield_key:
                return samples
            keys = self._key_list()
            n = len(self)
            return [(keys[int(i) % n], s) for i, s in zip(indices, samples)]
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = int(idx[(idx < -n) | (idx >= n)][0])
            raise IndexError(f"index {bad} out of range for length {n} reader")
        idx = np.where(idx < 0, idx + n, idx)
        offsets = self._offsets()
        got = self.remote.read_ranges(
            self.spec.url, offsets[idx].tolist(), offsets[idx + 1].tolist()
        )
        return [self._finish(i, d, yield_key, raw) for i, d in zip(idx.tolist(), got)]

    def slice(
        self,
        start: int,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> Iterator[Any]:
        """Samples ``[start, stop)``, fetched as one byte range."""
        whole = self._whole()
        if whole is not None:
            samples = whole.slice(start, stop, False, raw, copy)
            if not yield_key:
                return samples
            first = normalize_range(start, stop, len(self))[0]
            keys = self._key_list()
            return ((keys[first + j], s) for j, s in enumerate(samples))
        start, stop = normalize_range(start, stop, len(self))
        return self._range(start, stop, yield_key, raw)

    def _range(self, start: int, stop: int, yield_key: bool, raw: bool) -> Iterator[Any]:
        if start >= stop:
            return
        offsets = self._offsets()
        base = int(offsets[start])
        data = self.remote.read(self.spec.url, base, int(offsets[stop]))
        for i in range(start, stop):
            piece = data[int(offsets[i]) - base : int(offsets[i + 1]) - base]
            yield self._finish(i, piece, yield_key, raw)

    def _finish(self, i: int, data: bytes, yield_key: bool, raw: bool) -> Any:
        if len(data) != int(self._offsets()[i + 1] - self._offsets()[i]):
            raise CorruptIndexError(
                self.spec.url, f"sample {i}: got {len(data)} bytes, its offsets promise more"
            )
        sample: Any = data
        if not raw:
            try:
                sample = unpackb(data)
            except ShardstreamError as e:
                raise type(e)(self.spec.url, f"sample {i}: {getattr(e, 'problem', e)}") from e
        if yield_key:
            return self._key_list()[i], sample
        return sample

    @property
    def has_checksums(self) -> bool:
        """Whether the shard has a per-sample checksum file (fetches the shard when unknown)."""
        if self.spec.sidecars is not None:
            return ".xxh3" in self.spec.sidecars
        return self.remote.local(self.spec).has_checksums

    def check_sample(self, index: int, data: Any = None) -> None:
        """See :meth:`MsgpackReader.check_sample` (reads the cached shard)."""
        self.remote.local(self.spec).check_sample(index, data)

    def verify_sample(self, index: int) -> bool:
        """See :meth:`MsgpackReader.verify_sample` (reads the cached shard)."""
        return self.remote.local(self.spec).verify_sample(index)

    def damaged_samples(self, progress: Any = None) -> list[int]:
        """See :meth:`MsgpackReader.damaged_samples` (reads the cached shard)."""
        return self.remote.local(self.spec).damaged_samples(progress)

    def close(self) -> None:
        """Close the cached shard in this process (it may then be evicted)."""
        self.remote.release(self.spec.number)

    def __repr__(self) -> str:
        return f"RemoteShardReader({self.spec.url!r}, len={len(self)})"


def manifest_sample_sizes(reader: Any) -> np.ndarray | None:
    """Each sample's size as its shard's mean, from the manifest alone (no request), for a
    reader of remote shards whose sizes the manifest gives; ``None`` for any other reader.

    What the Loader sizes its shuffle buffer by: reading every shard's offsets for it would
    cost one request per shard before the first batch.
    """
    shards = getattr(reader, "shards", None)
    if not shards or not all(isinstance(s, RemoteShardReader) for s in shards):
        return None
    specs = [s.spec for s in shards]
    if any(spec.bytes is None for spec in specs):
        return None
    means = [spec.bytes / max(1, spec.samples) for spec in specs]
    return np.repeat(np.asarray(means, dtype=np.float64), [spec.samples for spec in specs])


def open_remote(
    url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_limit: int | None = None,
    prefetch_shards: int = 4,
    retry: RetryPolicy | None = None,
) -> ShardedReader:
    """Open a remote manifest or single data file as one reader.

    Args:
        url: a ``*.manifest`` URL, or the URL of a data file with its ``.offsets`` sidecar.
        storage_options: the filesystem's options (credentials, endpoint).
        cache_dir: the node-local shard cache (default :func:`default_cache_dir`).
        cache_limit: most bytes the cache holds, evicting least recently used shards.
        prefetch_shards: shards the Loader fetches ahead.
        retry: the retry policy.

    Returns:
        A :class:`ShardedReader` of :class:`RemoteShardReader` (one shard for a single file);
        ``reader.remote`` is the :class:`RemoteSet`.

    Raises:
        DatasetNotFoundError: no object at ``url`` (or its ``.offsets``).
        CorruptIndexError, IndexMismatchError: a malformed manifest or offsets file.
        RemoteStorageError: access refused or the storage unreachable past the retry budget.
        MissingDependencyError: the protocol's package is not installed.
    """
    fs, path = url_filesystem(url, storage_options)
    policy = retry or RetryPolicy()
    cache = ShardCache(root=cache_dir or default_cache_dir())
    offsets = None
    if url.endswith(".manifest"):
        specs, digest, offsets = _manifest_specs(fs, path, url, policy, cache)
    else:
        specs, digest = _single_spec(fs, path, url, policy)
    remote = RemoteSet(
        url=url,
        storage_options=storage_options,
        digest=digest,
        cache_dir=cache_dir,
        cache_limit=cache_limit,
        retry=policy,
        prefetch_shards=prefetch_shards,
        shard_count=len(specs),
    )
    remote._fs = fs
    remote.set_offsets = offsets
    reader = ShardedReader([RemoteShardReader(remote=remote, spec=spec) for spec in specs])
    reader.remote = remote  # type: ignore[attr-defined]
    return reader


def _manifest_specs(
    fs: Any, path: str, url: str, policy: RetryPolicy, cache: ShardCache
) -> tuple[list[ShardSpec], str, RemoteSetOffsets | None]:
    """The shards of the manifest at ``url``, the set's digest and its offsets file."""
    data = call_with_retries(lambda: read_file(fs, path), url=url, what="read", policy=policy)
    if len(data) > _MAX_MANIFEST:
        raise CorruptIndexError(url, f"manifest is over {_MAX_MANIFEST} bytes")
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptIndexError(url, f"manifest is not JSON: {e}") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise CorruptIndexError(url, f"not a shardstream manifest (format must be {_FORMAT!r})")
    if document.get("version") != _VERSION:
        raise CorruptIndexError(url, f"unsupported manifest version {document.get('version')!r}")
    shards = document.get("shards")
    if not isinstance(shards, list):
        raise CorruptIndexError(url, "manifest entry is malformed: 'shards' must be a list")
    entries = [_entry(Path(url), n, shard) for n, shard in enumerate(shards)]
    total = document.get("samples")
    if total != sum(e.samples for e in entries):
        raise CorruptIndexError(url, f"manifest says {total!r} samples, its shards hold others")
    for entry in entries:
        if entry.path.startswith("/") or ".." in PurePosixPath(entry.path).parts:
            raise CorruptIndexError(url, f"shard path {entry.path!r} leaves the manifest's folder")
    listed = parse_set_offsets_entry(url, document)
    digest = hashlib.sha256(
        json.dumps([[e.path, e.samples, e.bytes, e.md5] for e in entries]).encode()
    ).hexdigest()[:32]
    base = url_parent(url)
    first = fs._strip_protocol(url_join(base, entries[0].path)).rstrip("/") if entries else ""
    # the layout a listing found is kept in the set's cache folder: a warm open needs only
    # the manifest (the set's digest names its data, and its sidecars are the writer's)
    layout = cache.sidecar_layout(digest) if entries else None
    offsets = None
    if listed is not None:
        offsets = RemoteSetOffsets(
            url=url_join(base, listed.path), entry=listed, counts=[e.samples for e in entries]
        )
    if layout is None and entries:
        # a cold open: the set's offsets come while the listing is under way (the Loader
        # reads sample 0 next, and a shuffled first batch's ranges need more offsets)
        if offsets is not None and offsets.usable and protocol_of(url) not in _NO_LISTING:
            with ThreadPoolExecutor(1) as pool:
                early = pool.submit(_read_or_none, fs, fs._strip_protocol(offsets.url))
                layout = _sidecar_layout(fs, first, url)
                got = early.result()
            if got is not None:
                offsets.take(got)
        else:
            layout = _sidecar_layout(fs, first, url)
        if layout is not None:
            cache.keep_sidecar_layout(digest, layout)
    present = None if layout is not None or not entries else _listing(fs, path, url)
    specs = []
    for number, entry in enumerate(entries):
        shard_url = url_join(base, entry.path)
        sidecars = layout
        if present is not None:
            name = fs._strip_protocol(shard_url).rstrip("/")
            sidecars = tuple(s for s in SIDECAR_SUFFIXES if name + s in present)
        specs.append(
            ShardSpec(
                number=number,
                url=shard_url,
                samples=entry.samples,
                bytes=entry.bytes,
                md5=entry.md5,
                sidecars=sidecars,
            )
        )
    return specs, digest, offsets


def _read_or_none(fs: Any, path: str) -> bytes | None:
    """The whole file ``path``, or ``None`` where that fails (it is then read again when
    needed, with retries)."""
    try:
        return read_file(fs, path)
    except Exception:
        return None


def _sidecar_layout(fs: Any, first: str, url: str) -> tuple[str, ...] | None:
    """The sidecars of the set's first shard (one listing of the names that start with its
    name), taken for every shard's: a writer gives all its shards the same sidecars. ``None``
    where the filesystem cannot list by prefix (then :func:`_listing` lists the folder)."""
    if protocol_of(url) in _NO_LISTING or "/" not in first:
        return None
    folder, name = first.rsplit("/", 1)
    try:
        found = {p.rstrip("/") for p in fs.find(folder, prefix=name)}
    except Exception:  # no prefix listing here (TypeError), or none at all
        return None
    if first not in found:
        return None
    return tuple(s for s in SIDECAR_SUFFIXES if first + s in found)


def _listing(fs: Any, path: str, url: str) -> set[str] | None:
    """Every file below the manifest's folder (one listing), or ``None`` where none is had."""
    if protocol_of(url) in ("http", "https"):
        return None  # an HTTP "listing" is a page of links, if any: probe the sidecars instead
    try:
        found = fs.find(path.rsplit("/", 1)[0] if "/" in path else "")
    except Exception:
        return None
    return {p.rstrip("/") for p in found}


def _single_spec(fs: Any, path: str, url: str, policy: RetryPolicy) -> tuple[list[ShardSpec], str]:
    offsets_url = url + SUFFIX_OFFSETS
    offsets_path = fs._strip_protocol(offsets_url)
    data = call_with_retries(
        lambda: read_file(fs, offsets_path), url=offsets_url, what="read", policy=policy
    )
    if len(data) < 8 or len(data) % 8:
        raise CorruptIndexError(offsets_url, f"offsets file of {len(data)} bytes")
    size = int(np.frombuffer(data[-8:], dtype=">u8")[0])
    spec = ShardSpec(
        number=0, url=url, samples=len(data) // 8 - 1, bytes=size, md5=None, sidecars=None
    )
    digest = hashlib.sha256(url.encode() + b"\0" + hashlib.sha256(data).digest()).hexdigest()
    return [spec], digest[:32]
