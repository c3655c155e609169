"""Repeater and Cycler: iterate a reader (or another augment) several times or endlessly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..checks import check_int
from ..read.reader import Reader
from .augment_base import (
    Augment,
    check_chunk_size,
    check_seek_index,
    check_source_state,
    load_source_state,
    pass_finished,
    require_source,
    source_state,
)
from .state import StateCounter, StateSpec

__all__ = ["Cycler", "Repeater"]


class _Passes(Augment):
    """Consecutive passes of ``source.iter()``, counted so that a saved state resumes exactly.

    A pass is one ``source.iter()`` call: from the source's position to the end of its pass, so
    a reader that was positioned with ``seek`` starts its first pass there (as in datadings).
    """

    _kind = ""

    def __init__(self, reader: Reader | Augment) -> None:
        super().__init__(require_source(reader, self._kind))
        self._epoch = 0  # completed passes
        self._in_pass = False  # an iterator is inside a pass of the source

    @property
    def epoch(self) -> int:
        """Number of passes over the source completed so far."""
        finished = self._in_pass and pass_finished(self._reader)
        return self._epoch + finished

    def _passes(
        self, yield_key: bool, raw: bool, copy: bool, chunk_size: int, limit: int | None
    ) -> Iterator[Any]:
        self._epoch = self.epoch
        self._in_pass = False
        if limit is not None and self._epoch >= limit:
            self._epoch = 0  # exhausted: start over, as a finished reader does
        source = self._reader
        while limit is None or self._epoch < limit:
            self._in_pass = True
            yielded = False
            for sample in source.iter(
                yield_key=yield_key, raw=raw, copy=copy, chunk_size=chunk_size
            ):
                yielded = True
                yield sample
            self._in_pass = False
            self._epoch += 1
            if limit is None and not yielded:
                return  # an empty source would cycle forever (datadings hangs)

    def _seek(self, index: int, limit: int | None) -> None:
        n = len(self._reader)
        index = check_seek_index(index, limit if n else 0, self._kind)
        epoch, within = divmod(index, n)
        self._reader.seek(within)
        self._epoch = epoch
        self._in_pass = False

    def _state_spec(self) -> StateSpec:
        return StateSpec(
            kind=self._kind,
            config={"length": len(self._reader), **self._config()},
            counters=(StateCounter("epoch", high=self._max_epoch()),),
            fields=("source",),
        )

    def _state_values(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "source": source_state(self._reader)}

    def _apply_state(self, values: dict[str, Any]) -> None:
        check_source_state(self._reader, values["source"], self._kind)
        load_source_state(self._reader, values["source"])
        self._epoch = values["epoch"]
        self._in_pass = False

    def _config(self) -> dict[str, Any]:
        """The settings beyond the source's length that a saved state must match."""
        return {}

    def _max_epoch(self) -> int | None:
        """The largest pass count a state may hold; ``None`` for no bound."""
        return None


class Repeater(_Passes):
    """Iterate over a reader ``times`` times in a row.

    Each pass is one ``reader.iter()`` (the first starts at the reader's position). The reader
    may also be another augment, e.g. ``Repeater(Shuffler(reader), 3)`` for three differently
    shuffled epochs. ``len(repeater)`` is the reader's length, as in datadings.

    Differences from datadings 3.4.7: the Repeater remembers how many passes are done, so
    iterating again after a break continues the same run (datadings started ``times`` new passes);
    once all passes are done, iterating starts over. ``seek(i)`` moves to pass ``i // n``,
    position ``i % n`` (datadings kept the pass count at zero).

    Warning:
        Not thread safe.

    Args:
        reader: the reader (or augment) to repeat.
        times: number of passes, >= 0.

    Raises:
        ConfigError: ``reader`` is neither a Reader nor an augment, or ``times`` is not an
            integer >= 0.
    """

    _kind = "Repeater"

    def __init__(self, reader: Reader | Augment, times: int) -> None:
        super().__init__(reader)
        self._times = check_int(
            times, "times", low=0, message="Repeater times must be an integer >= 0, got {value!r}"
        )

    @property
    def times(self) -> int:
        """Number of passes."""
        return self._times

    def iter(
        self, yield_key: bool = False, raw: bool = False, copy: bool = True, chunk_size: int = 16
    ) -> Iterator[Any]:
        """Yield the remaining passes (all ``times`` passes again once they are done).

        Args:
            yield_key: yield ``(key, sample)`` pairs.
            raw: yield msgpack-encoded bytes.
            copy: if False, raw samples may be ``memoryview`` objects.
            chunk_size: passed to the reader's ``iter``.

        Returns:
            An iterator over the samples.

        Raises:
            ConfigError: ``chunk_size < 1``.
        """
        chunk_size = check_chunk_size(chunk_size)
        return self._passes(yield_key, raw, copy, chunk_size, self._times)

    def seek(self, index: int) -> None:
        """Move to pass ``index // n``, position ``index % n`` (``n = len(reader)``).

        The position is set with ``reader.seek(index % n)``; a wrapped augment interprets it as
        its own ``seek`` does. Use :meth:`state_dict` to resume a composition exactly.

        Args:
            index: ``0 <= index < times * len(reader)``.

        Raises:
            IndexError: ``index`` is out of range.
        """
        self._seek(index, self._times * len(self._reader))

    def _config(self) -> dict[str, Any]:
        return {"times": self._times}

    def _max_epoch(self) -> int | None:
        return self._times

    def _pass_finished(self) -> bool:
        return self.epoch >= self._times


class Cycler(_Passes):
    """Iterate over a reader endlessly, one ``reader.iter()`` pass after another.

    The reader may also be another augment: ``Cycler(Shuffler(reader))`` yields a new shuffled
    order every epoch, forever. ``len(cycler)`` is the reader's length, as in datadings.

    Differences from datadings 3.4.7: a Cycler over an empty reader yields nothing instead of
    looping forever, and :attr:`epoch` counts the passes.

    Warning:
        Not thread safe.

    Args:
        reader: the reader (or augment) to cycle.

    Raises:
        ConfigError: ``reader`` is neither a Reader nor an augment.
    """

    _kind = "Cycler"

    def iter(
        self, yield_key: bool = False, raw: bool = False, copy: bool = True, chunk_size: int = 16
    ) -> Iterator[Any]:
        """Yield passes over the reader forever (nothing when a pass is empty).

        Args:
            yield_key: yield ``(key, sample)`` pairs.
            raw: yield msgpack-encoded bytes.
            copy: if False, raw samples may be ``memoryview`` objects.
            chunk_size: passed to the reader's ``iter``.

        Returns:
            An endless iterator over the samples.

        Raises:
            ConfigError: ``chunk_size < 1``.
        """
        chunk_size = check_chunk_size(chunk_size)
        return self._passes(yield_key, raw, copy, chunk_size, None)

    def seek(self, index: int) -> None:
        """Move to pass ``index // n``, position ``index % n`` (``n = len(reader)``).

        The position is set with ``reader.seek(index % n)`` as in datadings; a wrapped augment
        interprets it as its own ``seek`` does.

        Args:
            index: position in the endless sequence, >= 0.

        Raises:
            IndexError: ``index`` is negative, or the reader is empty.
        """
        self._seek(index, None)

    def _pass_finished(self) -> bool:
        return False
