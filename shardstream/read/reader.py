"""The Reader base class: a small required core from which iteration, seeking and indexing derive.

Subclasses implement ``__len__``, ``__contains__``, ``find_key``, ``find_index``, ``get`` and
``slice`` (and ``close`` when they hold resources). Everything else (``seek*``, ``next``,
``rawnext``, ``iter``, ``rawiter``, ``reader[i]``, ``reader[a:b]``, ``getitems``) is built here.

Differences from datadings 3.4.7, all deliberate fixes:

- ``iter(start, stop)`` leaves the position at the index after the last sample yielded (datadings
  adds the count to the *old* position, e.g. ``iter(1, 3)`` from position 5 left it at 7).
- Iterating an empty reader yields nothing (datadings raises ``IndexError``).
- ``get`` accepts negative indices like a sequence and raises ``IndexError`` with a message for
  out-of-range ones.
"""

from __future__ import annotations

import copy as _copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import MissingDependencyError

__all__ = ["Reader", "normalize_index", "normalize_range", "register_loader_factory"]


def normalize_index(index: int, length: int) -> int:
    """Wrap a negative index once and check it lies in ``[0, length)``.

    Raises:
        IndexError: ``index {index} out of range for length {length} reader``.
    """
    i = index + length if index < 0 else index
    if i < 0 or i >= length:
        raise IndexError(f"index {index} out of range for length {length} reader")
    return i


def normalize_range(start: int | None, stop: int | None, length: int) -> tuple[int, int]:
    """Clamp ``start``/``stop`` with slice semantics (negative values count from the end)."""
    start, stop, _ = slice(start, stop).indices(length)
    return start, max(start, stop)


#: Builds the loader that :meth:`Reader.dataloader` returns. The loader layer sits above the
#: readers, so it registers itself here (see :func:`register_loader_factory`) instead of the
#: reader importing it.
_loader_factory: Callable[..., Any] | None = None


def register_loader_factory(factory: Callable[..., Any]) -> None:
    """Make ``factory(reader, **options)`` what :meth:`Reader.dataloader` returns.

    Called once by :mod:`shardstream.loader` on import (which ``import shardstream`` does).
    """
    global _loader_factory
    _loader_factory = factory


class Reader(ABC):
    """Abstract base class of dataset readers; use readers as context managers::

        with MsgpackReader("data.msgpack") as reader:
            for sample in reader:
                ...

    Attributes:
        getitem_max_slice_length: ``reader[a:b]`` with at least this many samples uses ``iter``
            in chunks of ``getitem_chunk_size`` instead of one ``slice``.
    """

    #: attributes that ``copy.copy(reader)`` resets to None instead of sharing (open handles)
    _do_not_copy: tuple[str, ...] = ()
    getitem_max_slice_length = 512
    getitem_chunk_size = 64

    def __init__(self) -> None:
        self._i = 0

    # --- required core ----------------------------------------------------------------------

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def __contains__(self, key: object) -> bool:
        """Whether a sample with this key exists."""

    @abstractmethod
    def find_key(self, index: int) -> Any:
        """Key of the sample at ``index``. Raises ``IndexError`` when out of range."""

    @abstractmethod
    def find_index(self, key: Any) -> int:
        """Index of the sample with ``key``. Raises ``KeyError`` when absent."""

    @abstractmethod
    def get(self, index: int, yield_key: bool = False, raw: bool = False, copy: bool = True) -> Any:
        """Return the sample at ``index``.

        Args:
            index: sample index; negative counts from the end.
            yield_key: return ``(key, sample)``.
            raw: return the msgpack-encoded bytes instead of the decoded dict.
            copy: if False, raw data may be a ``memoryview`` into the reader's buffer instead of
                ``bytes`` (faster, but the view keeps the underlying buffer alive).

        Raises:
            IndexError: index out of range.
        """

    @abstractmethod
    def slice(
        self,
        start: int,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
    ) -> Iterator[Any]:
        """Iterate over samples ``[start, stop)`` (clamped like a slice); arguments as :meth:`get`."""

    # --- resources --------------------------------------------------------------------------

    def close(self) -> None:
        """Release file handles and maps; the reader reopens them lazily on next use."""

    def release_pages(self) -> None:
        """Drop this process's mappings of the pages read so far, keeping the reader open.

        Readers that memory-map their data (:class:`MsgpackReader`) otherwise see every page they
        touched counted in the process's resident memory, up to the whole file over an epoch of
        random reads. The data stays in the page cache; the next read maps it again. A no-op for
        readers without a memory map.
        """

    def dataloader(
        self,
        ignore_errors: bool = False,
        verbose: bool = False,
        *,
        seed: int | None = None,
        verify: bool = False,
    ) -> Any:
        """A chainable loader over this reader (Deep Lake's ``ds.dataloader()``).

        Args:
            ignore_errors: skip samples whose reading, decoding or transform raises.
            verbose: show a progress bar with throughput.
            seed: seed of order and augmentation randomness; ``None`` draws one from the OS.
            verify: check every sample against the per-sample checksum file on read (see
                :class:`~shardstream.loader.loader.Loader`).

        Returns:
            A :class:`~shardstream.loader.loader.Loader`; chain ``.batch()``, ``.shuffle()``,
            ``.transform()``, ``.pytorch()``, ... on it.

        Raises:
            ConfigError: ``seed`` out of range, or ``verify`` without a checksum file.
        """
        if _loader_factory is None:  # only when shardstream.loader was never imported
            raise MissingDependencyError("Reader.dataloader() needs shardstream.loader imported")
        return _loader_factory(
            self, ignore_errors=ignore_errors, verbose=verbose, seed=seed, verify=verify
        )

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.close()

    def __copy__(self) -> Reader:
        cls = self.__class__
        reader = cls.__new__(cls)
        reader.__dict__.update(
            (k, None if k in cls._do_not_copy else v) for k, v in self.__dict__.items()
        )
        return reader

    def copy(self) -> Reader:
        """A shallow copy with its own position and without open handles."""
        return _copy.copy(self)

    # --- derived API ------------------------------------------------------------------------

    def getitems(
        self, indices: Sequence[int], yield_key: bool = False, raw: bool = False, copy: bool = True
    ) -> list[Any]:
        """Return the samples at ``indices`` (any order, repeats allowed) as a list.

        Readers with an offset index override this with a vectorised implementation.

        Raises:
            IndexError: any index out of range.
        """
        get = self.get
        return [get(int(i), yield_key, raw, copy) for i in indices]

    def seek_index(self, index: int) -> None:
        """Move the position to ``index`` (negative counts from the end).

        Raises:
            IndexError: ``index {index} out of range for length {n} reader``.
        """
        self._i = normalize_index(index, len(self))

    def seek(self, index: int) -> None:
        """Alias of :meth:`seek_index`."""
        self.seek_index(index)

    def seek_key(self, key: Any) -> None:
        """Move the position to the sample with ``key``. Raises ``KeyError`` when absent."""
        self.seek_index(self.find_index(key))

    @property
    def position(self) -> int:
        """Index of the sample that ``next()`` returns."""
        return self._i

    def next(self) -> Any:
        """Return the sample at the position and advance; ``StopIteration`` at the end."""
        if self._i >= len(self):
            raise StopIteration
        sample = self.get(self._i)
        self._i += 1
        return sample

    def __next__(self) -> Any:
        return self.next()

    def rawnext(self) -> bytes:
        """Like :meth:`next`, returning the msgpack-encoded bytes."""
        if self._i >= len(self):
            raise StopIteration
        sample = self.get(self._i, raw=True)
        self._i += 1
        return sample

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("step must be 1")
            if stop - start >= self.getitem_max_slice_length:
                return self.iter(start, stop, chunk_size=self.getitem_chunk_size)
            return self.slice(start, stop)
        return self.get(index)

    def iter(
        self,
        start: int | None = None,
        stop: int | None = None,
        yield_key: bool = False,
        raw: bool = False,
        copy: bool = True,
        chunk_size: int = 16,
    ) -> Iterator[Any]:
        """Iterate over ``[start, stop)`` reading ``chunk_size`` samples at a time.

        Args:
            start: first index; ``None`` continues from the position (and restarts at 0 when
                the position is at the end). Negative counts from the end.
            stop: end index, clamped like a slice.
            yield_key, raw, copy: as for :meth:`get`.
            chunk_size: samples read per :meth:`slice` call.

        Raises:
            IndexError: explicit ``start`` out of range (raised by this call, not lazily).
            ValueError: ``chunk_size < 1``.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        n = len(self)
        if start is None:
            if self._i >= n:
                self._i = 0
            start = self._i
        elif n or start:
            start = normalize_index(start, n)
        start, stop = normalize_range(start, stop, n)
        return self._iter_chunks(start, stop, yield_key, raw, copy, chunk_size)

    def _iter_chunks(
        self, start: int, stop: int, yield_key: bool, raw: bool, copy: bool, chunk_size: int
    ) -> Iterator[Any]:
        self._i = start
        for a in range(start, stop, chunk_size):
            for sample in self.slice(a, min(stop, a + chunk_size), yield_key, raw, copy):
                self._i += 1
                yield sample

    def __iter__(self) -> Iterator[Any]:
        return self.iter()

    def rawiter(self, yield_key: bool = False) -> Iterator[Any]:
        """Iterate from the position, yielding msgpack-encoded bytes (or ``(key, bytes)``)."""
        return self.iter(yield_key=yield_key, raw=True)
