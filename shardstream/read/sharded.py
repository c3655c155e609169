"""ShardedReader: several readers presented as one, with a global sample index."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetChangedError, DatasetNotFoundError, IndexMismatchError
from ..format.atomic import commit_record_path, settle
from ..format.manifest import is_manifest, load_manifest_pinned
from .checksummed import checksummed
from .msgpack import MsgpackReader
from .pinning import current, identity
from .reader import Reader, normalize_index, normalize_range

__all__ = ["ShardedReader"]


class ShardedReader(Reader):
    """Read several shards as one dataset: global index ``g`` maps to (shard, local index).

    Args:
        shards: a manifest path (``*.manifest``, see :mod:`shardstream.format.manifest`), a glob
            pattern (str or Path; matches are sorted), or an iterable of data file paths (opened
            as :class:`MsgpackReader`) and/or :class:`Reader` instances, in order.

    Raises:
        ValueError: an item is neither a path nor a Reader.
        DatasetNotFoundError: a glob pattern matches no file (a ``FileNotFoundError``).
        CorruptIndexError, DatasetNotFoundError, IndexMismatchError: a bad manifest, a shard it
            lists is missing, or a shard's length differs from the manifest.

    A manifest is read as one version: its shards are pinned (see
    :class:`~shardstream.read.MsgpackReader`) and opening is retried if the manifest's commit ran
    meanwhile (else :class:`~shardstream.errors.DatasetChangedError`).

    Keys need not be unique across shards; ``find_index`` returns the first match in shard order.
    Unlike datadings, shards are not closed after every access (that reopened the file per
    sample); :meth:`close` closes them all.
    """

    def __init__(self, shards: str | os.PathLike | Iterable[str | os.PathLike | Reader]):
        super().__init__()
        counts: list[int] | None = None
        if isinstance(shards, (str, os.PathLike)) and is_manifest(shards):
            readers, counts = _open_manifest(Path(shards))
        else:
            if isinstance(shards, (str, os.PathLike)):
                matches = sorted(glob.glob(os.fspath(shards)))
                if not matches:
                    raise DatasetNotFoundError(shards, "glob pattern matches no shard")
                shards = matches
            readers = _open_all(shards)
        if counts is not None:
            for reader, count in zip(readers, counts):
                if len(reader) != count:
                    raise IndexMismatchError(
                        getattr(reader, "path", None),
                        f"shard holds {len(reader)} samples but the manifest says {count}",
                    )
        self.shards: list[Reader] = readers
        lengths = np.array([len(r) for r in readers], dtype=np.int64)
        #: global index of each shard's first sample, plus the total at the end
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._starts_list = self.starts.tolist()
        self._len = int(self.starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Map a global index (negative counts from the end) to ``(shard number, local index)``.

        Raises:
            IndexError: index out of range.
        """
        g = normalize_index(index, self._len)
        shard = int(np.searchsorted(self.starts, g, side="right")) - 1
        return shard, g - self._starts_list[shard]

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        return any(key in shard for shard in self.shards)

    def find_index(self, key: Any) -> int:
        """Global index of the first sample with ``key``. Raises ``KeyError`` if absent."""
        for shard, start in zip(self.shards, self._starts_list):
            if key in shard:
                return start + shard.find_index(key)
        raise KeyError(key)

    def find_key(self, index: int) -> Any:
        """Key of the sample at global ``index``."""
        shard, local = self.locate(index)
        return self.shards[shard].find_key(local)

    def get(self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True) -> Any:
        """Sample at global ``index``; see :meth:`Reader.get`."""
        shard, local = self.locate(index)
        return self.shards[shard].get(local, yield_key, raw, copy)

    def getitems(
        self,
        indices: Sequence[int] | np.ndarray,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> list[Any]:
        """Samples at global ``indices``, fetched with one ``getitems`` call per shard touched."""
        idx = np.asarray(indices, dtype=np.int64)
        n = self._len
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = int(idx[(idx < -n) | (idx >= n)][0])
            raise IndexError(f"index {bad} out of range for length {n} reader")
        idx = np.where(idx < 0, idx + n, idx)
        shard_of = np.searchsorted(self.starts, idx, side="right") - 1
        out: list[Any] = [None] * len(idx)
        for shard in np.unique(shard_of).tolist():
            where = np.flatnonzero(shard_of == shard)
            local = idx[where] - self._starts_list[shard]
            got = self.shards[shard].getitems(local, yield_key, raw, copy)
            for position, sample in zip(where.tolist(), got):
                out[position] = sample
        return out

    def slice(
        self,
        start: int,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> Iterator[Any]:
        """Samples ``[start, stop)`` across shard boundaries."""
        start, stop = normalize_range(start, stop, self._len)
        return self._span(start, stop, yield_key, raw, copy, 16)

    def _span(self, start, stop, yield_key, raw, copy, chunk_size) -> Iterator[Any]:
        if start >= stop:
            return
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        for shard in range(first, len(self.shards)):
            offset = self._starts_list[shard]
            if offset >= stop:
                break
            reader = self.shards[shard]
            a, b = max(0, start - offset), min(len(reader), stop - offset)
            if a < b:
                yield from reader.iter(a, b, yield_key, raw, copy, chunk_size)

    def _iter_chunks(self, start, stop, yield_key, raw, copy, chunk_size):
        self._i = start
        for sample in self._span(start, stop, yield_key, raw, copy, chunk_size):
            self._i += 1
            yield sample

    @property
    def has_checksums(self) -> bool:
        """Whether every shard has a per-sample checksum file (``X.xxh3``)."""
        return all(getattr(shard, "has_checksums", False) for shard in self.shards)

    def check_sample(self, index: int, data: Any = None) -> None:
        """Check the sample at global ``index`` against its shard's checksum file.

        Args:
            index: global index (negative counts from the end).
            data: its packed bytes as read; ``None`` reads them.

        Raises:
            SampleChecksumError: the bytes differ (names the shard, the index in it and the key).
            MissingIndexError: the shard has no checksum file.
            AttributeError: the shard's reader has no per-sample checksums at all.
        """
        shard, local = self.locate(index)
        checksummed(self.shards[shard]).check_sample(local, data)

    def verify_sample(self, index: int) -> bool:
        """Whether the sample at global ``index`` has the bytes it was written with.

        Raises:
            MissingIndexError: its shard has no checksum file.
        """
        shard, local = self.locate(index)
        return checksummed(self.shards[shard]).verify_sample(local)

    def damaged_samples(self, progress: Any = None) -> list[int]:
        """Global indices of every sample whose bytes differ from their recorded digest.

        Raises:
            MissingIndexError: a shard has no checksum file.
        """
        return [
            start + local
            for shard, start in zip(self.shards, self._starts_list)
            for local in checksummed(shard).damaged_samples(progress)
        ]

    def release_pages(self) -> None:
        """Release the mapped pages of every shard; see :meth:`Reader.release_pages`."""
        for shard in self.shards:
            shard.release_pages()

    def close(self) -> None:
        """Close every shard."""
        for shard in self.shards:
            shard.close()

    def __repr__(self) -> str:
        return f"ShardedReader({len(self.shards)} shards, len={self._len})"


#: how often opening a manifest looks again when its commit ran meanwhile
_OPEN_ATTEMPTS = 5


def _open_all(shards: Iterable[str | os.PathLike | Reader]) -> list[Reader]:
    readers: list[Reader] = []
    for shard in shards:
        if isinstance(shard, Reader):
            readers.append(shard)
        elif isinstance(shard, (str, os.PathLike)):
            readers.append(MsgpackReader(shard))
        else:
            raise ValueError(
                f"need either msgpack path or Reader instance, got {type(shard).__name__}"
            )
    return readers


def _open_manifest(path: Path) -> tuple[list[Reader], list[int]]:
    """Open every shard of one version of the manifest ``path``.

    A commit renames the shards' files first and the manifest last, with its commit record in
    place throughout; so shards opened after reading the manifest belong to it unless the
    record exists afterwards or the manifest is not the one read (then look again).
    """
    for _attempt in range(_OPEN_ATTEMPTS):
        manifest, st = load_manifest_pinned(path)
        readers = _open_all(manifest.shard_paths())
        if not os.path.lexists(commit_record_path(path)) and current(path) == identity(st):
            return readers, [shard.samples for shard in manifest.shards]
        for reader in readers:
            reader.close()
        settle(path)
    raise DatasetChangedError(path, f"replaced {_OPEN_ATTEMPTS} times while being opened")
