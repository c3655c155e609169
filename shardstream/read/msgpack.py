"""MsgpackReader: memory-mapped random access to one dataset file.

Opening is O(1): it checks which files exist, their sizes, the first and last offset (16 bytes) and
the keys file's array header, and reads neither keys nor hashes. Offsets are loaded and validated on
the first sample access, keys on the first call that returns keys, key hashes and the Bloom filter
on the first ``in`` / ``find_index``. Samples are slices of a read-only memory map: ``copy=False``
returns memoryviews into it without copying.

A reader is pinned to the version of the dataset it opened. Opening finishes an interrupted commit
(:func:`~shardstream.format.atomic.settle`), records the identity (inode, size, mtime) of every
file, and retries if a commit ran meanwhile, so the files it pins belong together. Every later
load (offsets, keys, hashes, filter, the memory map, also in a process the reader was pickled to)
checks the file it opens is the pinned one and raises
:class:`~shardstream.errors.DatasetChangedError` otherwise: a replaced dataset is never mixed into
an open reader. What is already loaded or mapped keeps reading the pinned version. No file
descriptor is held between calls, so sets of thousands of shards need none.

A set written by shardstream has a per-sample checksum file ``X.xxh3``
(:mod:`shardstream.format.checksums`), pinned like the other files; its size must fit the
set's length at open. :meth:`MsgpackReader.verify_sample`, :meth:`MsgpackReader.check_sample`
and :meth:`MsgpackReader.damaged_samples` check samples against it.
"""

from __future__ import annotations

import mmap
import os
import stat
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import (
    CorruptIndexError,
    CorruptSampleError,
    DatasetChangedError,
    DatasetNotFoundError,
    IndexMismatchError,
    MissingIndexError,
    NotADatasetFileError,
    ShardstreamError,
    UnsafeDataError,
)
from ..format.atomic import commit_record_name, settle
from ..format.checksums import check_checksums_size
from ..format.codec import unpackb
from ..format.index import (
    check_offsets_ends,
    keys_len,
    legacy_index_len,
    load_filter,
    load_key_hashes,
    load_keys,
    load_legacy_index,
    load_offsets,
    offsets_count,
)
from ..format.integrity import verify_data, verify_index
from ..format.keyhash import hash_keys, hash_string
from ..format.paths import (
    SUFFIX_CHECKSUMS,
    SUFFIX_FILTER,
    SUFFIX_KEY_HASHES,
    SUFFIX_KEYS,
    SUFFIX_LEGACY_INDEX,
    SUFFIX_MD5,
    SUFFIX_OFFSETS,
    DatasetPaths,
)
from .checksummed import SampleChecksums
from .pinning import CHANGED, Identity, changed, current, identity, look, open_pinned, read_pinned
from .reader import Reader, normalize_index, normalize_range

__all__ = ["MsgpackReader"]

#: how often opening looks again when a commit of the dataset ran while it looked
_OPEN_ATTEMPTS = 5
#: the sidecars in the order a commit renames them, with the bytes opening reads of each
_PIN_ORDER = (
    (SUFFIX_OFFSETS, "ends"),
    (SUFFIX_KEYS, 5),
    (SUFFIX_KEY_HASHES, 0),
    (SUFFIX_FILTER, 0),
    (SUFFIX_CHECKSUMS, 0),
    (SUFFIX_MD5, 0),
    (SUFFIX_LEGACY_INDEX, 5),
)

#: attributes rebuilt on first use; dropped when a reader is pickled
_LAZY_STATE = (
    "_map",
    "_view",
    "_offsets",
    "_offsets_arr",
    "_keys",
    "_salt",
    "_sorted_hashes",
    "_hash_order",
    "_filter",
    "_digests",
)


class MsgpackReader(SampleChecksums, Reader):
    """Reader for one dataset file in the datadings format.

    Args:
        path: the data file, or any of its sidecar files (``X.offsets``, ``X.md5``, ...).
        buffering: accepted for datadings compatibility; reads go through a memory map, so it has
            no effect.
        checksums: use the per-sample checksum file ``X.xxh3`` where there is one; ``False``
            ignores it (to replace a stale one).

    Raises:
        DatasetNotFoundError: the data file does not exist (a ``FileNotFoundError``).
        NotADatasetFileError: the path is a directory (an ``IsADirectoryError``).
        MissingIndexError: neither ``X.offsets`` nor legacy ``X.index`` exists.
        IndexMismatchError, TruncatedDataError: index and data sizes disagree, or the checksum
            file's size does not fit the number of samples.

    Missing ``.keys``, ``.key_hashes`` or ``.filter`` files only warn (as datadings does): key
    lookups then fall back to what is available.
    """

    _do_not_copy = ("_map", "_view")

    def __init__(self, path: str | os.PathLike, buffering: int = 0, *, checksums: bool = True):
        super().__init__()
        self._paths = paths = DatasetPaths.of(path)
        self.path = paths.data
        self._base = base = os.fspath(paths.data)
        settle(base)
        for _attempt in range(_OPEN_ATTEMPTS):
            heads = self._pin(base)
            if heads is not None:
                break
            settle(base)  # a commit ran while we looked: wait for it, then look again
        else:
            raise DatasetChangedError(base, f"replaced {_OPEN_ATTEMPTS} times while being opened")
        pins = self._pins
        self._data_size = self._data_pin[1]
        self._legacy = False
        offsets_pin, legacy_pin = pins[SUFFIX_OFFSETS], pins[SUFFIX_LEGACY_INDEX]
        if offsets_pin is not None:
            self._len = offsets_count(paths.offsets, offsets_pin[1])
            check_offsets_ends(paths.offsets, paths.data, self._data_size, heads[SUFFIX_OFFSETS])
            for suffix in (SUFFIX_KEYS, SUFFIX_KEY_HASHES, SUFFIX_FILTER):
                if pins[suffix] is None:
                    warnings.warn(
                        f"{base}{suffix} not found, some functionality may not be available"
                    )
            if pins[SUFFIX_KEYS] is not None:
                try:
                    n_keys = keys_len(paths.keys, heads[SUFFIX_KEYS])
                except CorruptIndexError:
                    n_keys = self._len  # reported when the keys are needed, as before
                if n_keys != self._len:
                    raise IndexMismatchError(
                        paths.keys,
                        f"keys file holds {n_keys} keys for {self._len} samples: the index "
                        "files do not belong together",
                    )
            key_hashes_pin = pins[SUFFIX_KEY_HASHES]
            if key_hashes_pin is not None:
                size = key_hashes_pin[1]
                if size != 8 + 8 * self._len:
                    raise IndexMismatchError(
                        paths.key_hashes,
                        f"key hashes file is {size} bytes, expected {8 + 8 * self._len} for "
                        f"{self._len} samples",
                    )
        elif legacy_pin is not None:
            self._legacy = True
            self._len = legacy_index_len(
                paths.legacy_index,
                heads[SUFFIX_LEGACY_INDEX],
                index_size=legacy_pin[1],
                data_size=self._data_size,
            )
        else:
            raise MissingIndexError(
                paths.data,
                f"need at least one of {paths.offsets.name}, {paths.legacy_index.name} but none found",
            )
        checksums_pin = pins[SUFFIX_CHECKSUMS]
        self._has_checksums = checksums and checksums_pin is not None
        if checksums and checksums_pin is not None:  # O(1): the size alone tells the count
            check_checksums_size(paths.checksums, checksums_pin[1], self._len)
        self._digests: memoryview | None = None
        self._offsets_arr: np.ndarray | None = None
        self._offsets: memoryview | None = None
        self._keys: list[str] | None = None
        self._salt: bytes | None = None
        self._sorted_hashes: np.ndarray | None = None
        self._hash_order: np.ndarray | None = None
        self._filter: Any = None
        self._filter_loaded = False
        self._fd: int | None = None
        self._map: mmap.mmap | bytes | None = None  # slicing it copies; slicing _view does not
        self._view: memoryview | None = None

    # --- pinning ----------------------------------------------------------------------------

    def _pin(self, base: str) -> dict[str, bytes] | None:
        """Record the identity of every file; None if a commit may have mixed what we saw.

        Files are looked at in the order a commit renames them, then the commit record is
        checked, then every file again: a set seen while a commit renamed its files shows
        either the record or a changed identity (see ``shardstream.format.atomic``). Pins
        and heads are keyed by suffix (``""`` for the data file).
        """
        try:
            data_stat = os.stat(base)
        except FileNotFoundError:
            raise DatasetNotFoundError(base) from None
        if not stat.S_ISREG(data_stat.st_mode):
            raise NotADatasetFileError(base)
        data_pin = identity(data_stat)
        pins: dict[str, Identity | None] = {"": data_pin}
        heads: dict[str, bytes] = {}
        for suffix, head in _PIN_ORDER:
            pins[suffix], heads[suffix] = look(base + suffix, head)
        if os.path.lexists(commit_record_name(base)):
            return None
        for suffix, pin in pins.items():
            if current(base + suffix) != pin:
                return None
        self._pins = pins
        self._data_pin = data_pin
        return heads

    def check_unchanged(self) -> None:
        """Check every file of the pinned version is still in place.

        Raises:
            DatasetChangedError: a file was replaced, removed or created since the reader opened.
        """
        path = changed({self._base + suffix: pin for suffix, pin in self._pins.items()})
        if path is not None:
            raise DatasetChangedError(path, CHANGED)

    def _read_pinned(self, suffix: str) -> bytes:
        """The content of the pinned version of the file ``suffix`` (else DatasetChangedError)."""
        return read_pinned(self._base + suffix, self._pins[suffix])

    # --- lazy state -------------------------------------------------------------------------

    def _load_offsets(self) -> memoryview:
        if self._offsets is None:
            # indexing a memoryview yields ints ~5x faster than numpy
            self._offsets = self._load_offsets_arr().data
        return self._offsets

    def _load_offsets_arr(self) -> np.ndarray:
        if self._offsets_arr is not None:
            return self._offsets_arr
        if self._legacy:
            self._keys, arr = self._read_legacy_index()
        else:
            offsets = self._paths.offsets
            arr = load_offsets(
                offsets, self._len, self.path, self._data_size, self._read_pinned(SUFFIX_OFFSETS)
            )
        self._offsets_arr = arr
        return arr

    def _read_legacy_index(self) -> tuple[list[str], np.ndarray]:
        index = self._paths.legacy_index
        return load_legacy_index(
            index, self._len, self.path, self._data_size, self._read_pinned(SUFFIX_LEGACY_INDEX)
        )

    @property
    def offsets(self) -> np.ndarray:
        """Sample start offsets (native uint64, ``len + 1`` values; read-only view)."""
        view = self._load_offsets_arr().view()
        view.flags.writeable = False
        return view

    def _open_map(self) -> tuple[mmap.mmap | bytes, memoryview]:
        """The data's map and a view of it, mapped on first use."""
        if self._map is None or self._view is None:
            mapped: mmap.mmap | bytes
            if self._data_size == 0:
                mapped = b""
            else:
                with open_pinned(self._base, self._pins[""]) as f:
                    mapped = mmap.mmap(f.fileno(), self._data_size, access=mmap.ACCESS_READ)
            self._map, self._view = mapped, memoryview(mapped)
        return self._map, self._view

    def _source(self, copy: bool) -> mmap.mmap | bytes | memoryview:
        """What samples are sliced from: the map (slices copy) or its view (they do not)."""
        mapped, view = self._open_map()
        return mapped if copy else view

    def _load_keys(self) -> list[str]:
        if self._keys is None:
            if self._legacy:  # the legacy index holds keys and offsets (both unloaded here)
                self._keys, self._offsets_arr = self._read_legacy_index()
            elif self._pins[SUFFIX_KEYS] is not None:
                keys = self._paths.keys
                self._keys = load_keys(keys, self._len, self._read_pinned(SUFFIX_KEYS))
            else:
                raise MissingIndexError(self._paths.keys, "keys file not found; keys unavailable")
        return self._keys

    def _load_hashes(self) -> tuple[bytes, np.ndarray, np.ndarray]:
        """The key hashes' salt, their sort order and the sorted hashes, loaded on first use."""
        if (
            self._salt is not None
            and self._hash_order is not None
            and self._sorted_hashes is not None
        ):
            return self._salt, self._hash_order, self._sorted_hashes
        if not self._legacy and self._pins[SUFFIX_KEY_HASHES] is not None:
            data = self._read_pinned(SUFFIX_KEY_HASHES)
            salt, hashes = load_key_hashes(self._paths.key_hashes, self._len, data)
        else:
            salt, hashes = self._hash_keys()
        order = np.argsort(hashes, kind="stable")
        self._salt, self._hash_order, self._sorted_hashes = salt, order, hashes[order]
        return salt, order, hashes[order]

    def _hash_keys(self) -> tuple[bytes, np.ndarray]:
        """Hash the keys (no ``.key_hashes`` file), refusing keys that cannot be looked up."""
        keys = self._load_keys()
        where = self._paths.legacy_index if self._legacy else self._paths.keys
        bad = next((k for k in keys if type(k) is not str), None)
        if bad is not None:
            raise CorruptIndexError(
                where,
                f"holds a {type(bad).__name__} key {bad!r:.60}; key lookups need str keys or "
                f"a {self._paths.key_hashes.name} file, which is missing",
            )
        if len(set(keys)) != len(keys):
            raise CorruptIndexError(where, "holds duplicate keys; key lookups are ambiguous")
        salt, hashes = hash_keys(keys)
        return salt, hashes.astype(np.uint64)

    def _load_filter(self) -> Any:
        if not self._filter_loaded:
            if not self._legacy and self._pins[SUFFIX_FILTER] is not None:
                data = self._read_pinned(SUFFIX_FILTER)
                self._filter = load_filter(self._paths.filter, data)
            self._filter_loaded = True
        return self._filter

    # --- Reader core ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        bloom = self._load_filter()
        if bloom is not None and key not in bloom:
            return False
        return self._lookup(key) is not None

    def _lookup(self, key: str) -> int | None:
        salt, hash_order, sorted_hashes = self._load_hashes()
        h = np.uint64(hash_string(key, salt))
        pos = int(np.searchsorted(sorted_hashes, h))
        if pos < self._len and sorted_hashes[pos] == h:
            return int(hash_order[pos])
        return None

    def find_index(self, key: str) -> int:
        """Index of the sample with ``key`` (via key hashes). Raises ``KeyError`` if absent."""
        index = self._lookup(key) if isinstance(key, str) else None
        if index is None:
            raise KeyError(key)
        return index

    def find_key(self, index: int) -> str:
        """Key of the sample at ``index`` (loads the keys file on first use)."""
        return self._load_keys()[normalize_index(index, self._len)]

    @property
    def keys(self) -> list[str]:
        """All keys in sample order (loaded on first use)."""
        return self._load_keys()

    def get(self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True) -> Any:
        """Return the sample at ``index``; see :meth:`Reader.get`.

        Raises:
            IndexError: index out of range.
            CorruptSampleError: the sample's bytes do not decode (names file and index).
        """
        offsets = self._offsets or self._load_offsets()
        n = self._len
        i = index
        if i < 0 or i >= n:
            i = normalize_index(index, n)
        source = self._map if copy else self._view
        if source is None:
            source = self._source(copy)
        data = source[offsets[i] : offsets[i + 1]]
        sample = data if raw else self._decode(data, i)
        if yield_key:
            return self._load_keys()[i], sample
        return sample

    def getitems(
        self,
        indices: Sequence[int] | np.ndarray,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> list[Any]:
        """Return the samples at ``indices`` as a list, looking offsets up in one numpy step.

        Raises:
            IndexError: any index out of range (names the first bad one).
        """
        offsets = self._load_offsets_arr()
        idx = np.asarray(indices, dtype=np.int64)
        try:  # fancy indexing checks the range and wraps negatives like a sequence
            starts = offsets[:-1][idx].tolist()
        except IndexError:
            n = self._len
            bad = int(idx[(idx < -n) | (idx >= n)][0])
            raise IndexError(f"index {bad} out of range for length {n} reader") from None
        stops = offsets[1:][idx].tolist()
        source = self._source(copy)
        out: list[Any] = [source[a:b] for a, b in zip(starts, stops)]
        if raw and not yield_key:
            return out
        positions = np.where(idx < 0, idx + self._len, idx).tolist()
        if not raw:
            decode = self._decode
            out = [decode(d, i) for d, i in zip(out, positions)]
        if yield_key:
            keys = self._load_keys()
            out = [(keys[i], s) for i, s in zip(positions, out)]
        return out

    def slice(
        self,
        start: int,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> Iterator[Any]:
        """Yield samples ``[start, stop)`` (clamped), reading the byte range in one go."""
        start, stop = normalize_range(start, stop, self._len)
        return self._iter_range(start, stop, yield_key, raw, copy)

    def _iter_chunks(self, start, stop, yield_key, raw, copy, chunk_size):
        # Samples are slices of one memory map, so chunking buys nothing: walk the range directly.
        self._i = start
        for sample in self._iter_range(start, stop, yield_key, raw, copy):
            self._i += 1
            yield sample

    def _iter_range(self, start: int, stop: int, yield_key: bool, raw: bool, copy: bool):
        if start >= stop:
            return
        offsets = self._load_offsets_arr()
        source = self._source(copy and raw)
        keys = self._load_keys() if yield_key else []
        decode = self._decode
        step = 4096  # bounds converted to ints in blocks: no O(n) Python list for huge ranges
        for block_start in range(start, stop, step):
            block_stop = min(stop, block_start + step)
            bounds = offsets[block_start : block_stop + 1].tolist()
            for j, (a, b) in enumerate(zip(bounds, bounds[1:]), block_start):
                sample = source[a:b] if raw else decode(source[a:b], j)
                yield (keys[j], sample) if yield_key else sample

    def _decode(self, data: Any, index: int) -> Any:
        try:
            return unpackb(data)
        except UnsafeDataError as e:
            raise UnsafeDataError(self.path, f"sample {index}: {e.problem}") from None
        except CorruptSampleError as e:  # unpackb does not know the file: name it here
            raise self._undecodable(index, e.problem.removeprefix("sample: ")) from e.__cause__
        except ShardstreamError:
            raise
        except Exception as e:
            raise self._undecodable(index, f"does not decode: {type(e).__name__}: {e}") from e

    def _undecodable(self, index: int, problem: str) -> CorruptSampleError:
        offsets = self._load_offsets()
        return CorruptSampleError(
            self.path, f"sample {index} (bytes {offsets[index]}-{offsets[index + 1]}) {problem}"
        )

    # --- resources and integrity ------------------------------------------------------------

    def close(self) -> None:
        """Drop the memory map; it is re-created on next access.

        Memoryviews handed out with ``copy=False`` keep the map alive until they are released.
        """
        view, self._view = self._view, None
        mapped, self._map = self._map, None
        if view is not None:
            view.release()
        if isinstance(mapped, mmap.mmap):
            try:
                mapped.close()
            except BufferError:
                pass  # views returned with copy=False still use it; it closes when they go

    def release_pages(self) -> None:
        """Unmap the pages read so far from this process (``madvise(MADV_DONTNEED)``).

        Views handed out with ``copy=False`` stay valid: their pages are mapped again from the
        page cache when next touched. See :meth:`Reader.release_pages`.
        """
        if isinstance(self._map, mmap.mmap):
            self._map.madvise(mmap.MADV_DONTNEED)

    def __getstate__(self) -> dict[str, Any]:
        # Pickle (spawned workers, copies) without the map, its views or lazily loaded index
        # data: the receiving process maps and loads them again on first use.
        state = self.__dict__.copy()
        for name in _LAZY_STATE:
            state[name] = None
        state["_filter_loaded"] = False
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def verify_data(self, read_size: int = 512 * 1024, progress: bool = False) -> bool:
        """md5 of the data file against the ``.md5`` file; False (with a warning naming it) if not.

        Raises:
            DatasetChangedError: the dataset was replaced since the reader opened it.
        """
        self.check_unchanged()
        result = verify_data(self.path, read_size, progress)
        self.check_unchanged()
        return result

    def verify_index(self, read_size: int = 512 * 1024, progress: bool = False) -> bool:
        """md5 of every index file present (new and legacy) against the ``.md5`` file.

        Raises:
            DatasetChangedError: the dataset was replaced since the reader opened it.
        """
        self.check_unchanged()
        result = verify_index(self.path, read_size, progress)
        self.check_unchanged()
        return result

    def __repr__(self) -> str:
        return f"MsgpackReader({str(self.path)!r}, len={self._len})"
