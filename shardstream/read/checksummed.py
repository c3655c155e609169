"""Per-sample checksums for :class:`~shardstream.read.MsgpackReader`: a mixin with the public
methods (:meth:`SampleChecksums.check_sample`, :meth:`SampleChecksums.verify_sample`,
:meth:`SampleChecksums.damaged_samples`) over the pinned checksum file ``X.xxh3`` (see
:mod:`shardstream.format.checksums`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import MissingIndexError, SampleChecksumError, ShardstreamError
from ..format.checksums import load_checksums, sample_digest
from ..format.paths import SUFFIX_CHECKSUMS, DatasetPaths
from .reader import normalize_index

__all__ = ["ChecksummedReader", "SampleChecksums", "checksummed"]


@runtime_checkable
class ChecksummedReader(Protocol):
    """A reader with per-sample checksums (a ``MsgpackReader``, a ``ShardedReader`` of them)."""

    def check_sample(self, index: int, data: Any = None) -> None:
        """Raise ``SampleChecksumError`` if the sample's bytes differ from its digest."""

    def verify_sample(self, index: int) -> bool:
        """Whether the sample still has the bytes it was written with."""

    def damaged_samples(self, progress: Any = None) -> list[int]:
        """The indices of every damaged sample."""


def checksummed(reader: object) -> ChecksummedReader:
    """``reader`` as a :class:`ChecksummedReader`.

    Raises:
        AttributeError: it has no per-sample checksums at all.
    """
    if not isinstance(reader, ChecksummedReader):
        raise AttributeError(f"{type(reader).__name__} has no per-sample checksums")
    return reader


class SampleChecksums:
    """Checks samples against the set's checksum file; mixed into ``MsgpackReader``.

    The reader provides ``_has_checksums``, ``_digests`` (``None`` until loaded), ``_paths``,
    ``_len``, ``_data_size``, ``_read_pinned``, ``_load_keys``, ``get`` and ``slice``.
    """

    # what the reader provides (declared for the type checker; no values here)
    path: Path
    _has_checksums: bool
    _digests: memoryview | None
    _paths: DatasetPaths
    _len: int
    _data_size: int
    _read_pinned: Callable[[str], bytes]
    _load_keys: Callable[[], list[str]]
    if TYPE_CHECKING:

        def get(
            self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True
        ) -> Any: ...

        def slice(
            self,
            start: int,
            stop: int | None = None,
            yield_key: bool = False,
            raw: bool = False,
            copy: bool = True,
        ) -> Iterator[Any]: ...

    @property
    def has_checksums(self) -> bool:
        """Whether the set has a per-sample checksum file (``X.xxh3``) this reader uses."""
        return self._has_checksums

    def _load_digests(self) -> memoryview:
        if self._digests is None:
            if not self._has_checksums:
                raise MissingIndexError(
                    self._paths.checksums,
                    "no per-sample checksum file; add one with `shardstream verify "
                    "--add-checksums`",
                )
            data = self._read_pinned(SUFFIX_CHECKSUMS)
            digests = load_checksums(self._paths.checksums, self._len, self._data_size, data)
            self._digests = digests.data  # indexing yields ints, as for the offsets
        return self._digests

    def check_sample(self, index: int, data: Any = None) -> None:
        """Check one sample's bytes against its recorded digest.

        Args:
            index: the sample's index (negative counts from the end).
            data: its packed bytes as read (e.g. the memoryview ``get(index, raw=True,
                copy=False)`` returned; hashed in place, not copied); ``None`` reads them.

        Raises:
            SampleChecksumError: they differ (names the file, index and key).
            MissingIndexError: the set has no checksum file (see :attr:`has_checksums`).
            IndexMismatchError, CorruptIndexError: the checksum file is stale or malformed.
            IndexError: ``index`` out of range.
        """
        digests = self._digests or self._load_digests()
        i = index if 0 <= index < self._len else normalize_index(index, self._len)
        if data is None:
            data = self.get(i, raw=True, copy=False)
        actual = sample_digest(data)
        expected = digests[i]
        if actual != expected:
            raise self._damaged(i, actual, expected)

    def _damaged(self, index: int, actual: int, expected: int) -> SampleChecksumError:
        try:
            key = self._load_keys()[index]
        except ShardstreamError:
            key = None
        return SampleChecksumError(
            self.path,
            index,
            key,
            f"is damaged: its xxh3 is {actual:016x}, {self._paths.checksums.name} records "
            f"{expected:016x}",
        )

    def verify_sample(self, index: int) -> bool:
        """Whether the sample at ``index`` still has the bytes it was written with.

        Raises:
            MissingIndexError: the set has no checksum file (see :attr:`has_checksums`).
            IndexMismatchError, CorruptIndexError: the checksum file is stale or malformed.
            IndexError: ``index`` out of range.
        """
        try:
            self.check_sample(index)
        except SampleChecksumError:
            return False
        return True

    def damaged_samples(self, progress: Any = None) -> list[int]:
        """The indices of every sample whose bytes differ from their recorded digest.

        Args:
            progress: an object with ``update(n)`` (e.g. a tqdm bar), advanced per sample.

        Raises:
            MissingIndexError: the set has no checksum file (see :attr:`has_checksums`).
            IndexMismatchError, CorruptIndexError: the checksum file is stale or malformed.
            DatasetChangedError: the dataset was replaced since the reader opened it.
        """
        digests = self._load_digests()
        damaged = []
        for i, data in enumerate(self.slice(0, None, raw=True, copy=False)):
            if sample_digest(data) != digests[i]:
                damaged.append(i)
            if progress is not None:
                progress.update(1)
        return damaged
