"""Range: iterate over a contiguous part of a reader."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from ..read.reader import Reader, normalize_index
from .augment_base import Augment, check_chunk_size, check_seek_index, require_reader
from .state import StateCounter, StateSpec

__all__ = ["Range"]


class Range(Augment):
    """Iterate over the samples ``start`` to ``stop`` of a reader, like ``range(start, stop)``.

    ``start`` is wrapped once if negative and must be a valid index; ``stop`` is clamped like a
    slice bound. ``len(range_augment)`` is the length of the wrapped reader, as in datadings;
    one pass yields :attr:`num_samples` samples.

    Differences from datadings 3.4.7: iteration continues from the position (set by ``seek``, by
    ``load_state_dict`` or by a previous, interrupted pass) and restarts at ``start`` once a pass
    is complete, like a reader. datadings always restarted at ``start``, so its ``seek`` had no
    effect on iteration. ``seek(i)`` rejects positions outside the range.

    Warning:
        Not thread safe.

    Args:
        reader: the reader to take the samples from.
        start: first index (negative counts from the end).
        stop: end index (exclusive), clamped; ``None`` for the end of the reader.

    Raises:
        IndexError: ``start`` is out of range for the reader.
        ConfigError: ``reader`` is not a Reader or ``start``/``stop`` are not integers.
    """

    _kind = "Range"
    _reader: Reader  # a reader, never another augment (require_reader)

    def __init__(self, reader: Reader, start: int = 0, stop: int | None = None) -> None:
        super().__init__(require_reader(reader, self._kind))
        n = len(reader)
        try:
            start = operator.index(start)
            stop = None if stop is None else operator.index(stop)
        except TypeError:
            raise ConfigError(
                f"Range start and stop must be integers, got start={start!r}, stop={stop!r}"
            ) from None
        if n or start:
            start = normalize_index(start, n)
        self._n = n
        self._start, self._stop, _ = slice(start, stop).indices(n)
        self._i = 0

    @property
    def start(self) -> int:
        """First index of the range in the reader."""
        return self._start

    @property
    def stop(self) -> int:
        """End index (exclusive) of the range, clamped to the reader."""
        return self._stop

    @property
    def num_samples(self) -> int:
        """Number of samples one pass yields (``max(0, stop - start)``)."""
        return max(0, self._stop - self._start)

    @property
    def position(self) -> int:
        """Index within the range of the next sample."""
        return self._i if self._i < self.num_samples else 0

    def iter(
        self, yield_key: bool = False, raw: bool = False, copy: bool = True, chunk_size: int = 16
    ) -> Iterator[Any]:
        """Yield the range from the position to ``stop`` (from ``start`` once a pass is done).

        Args:
            yield_key: yield ``(key, sample)`` pairs.
            raw: yield msgpack-encoded bytes.
            copy: if False, raw samples may be ``memoryview`` objects.
            chunk_size: samples read per :meth:`Reader.slice` call.

        Returns:
            An iterator over the samples.

        Raises:
            ConfigError: ``chunk_size < 1``.
        """
        chunk_size = check_chunk_size(chunk_size)
        return self._iterate(yield_key, raw, copy, chunk_size)

    def _iterate(self, yield_key: bool, raw: bool, copy: bool, chunk_size: int) -> Iterator[Any]:
        self._i = self.position
        if not self.num_samples:
            return
        samples = self._reader.iter(
            self._start + self._i, self._stop, yield_key, raw, copy, chunk_size
        )
        for sample in samples:
            self._i += 1
            yield sample

    def seek(self, index: int) -> None:
        """Move to the ``index``-th sample of the range (the reader's ``start + index``).

        Args:
            index: position within the range, ``0 <= index < num_samples``.

        Raises:
            IndexError: ``index`` is outside the range.
        """
        self._i = check_seek_index(index, self.num_samples, self._kind)

    def _state_spec(self) -> StateSpec:
        return StateSpec(
            kind=self._kind,
            config={"length": self._n, "start": self._start, "stop": self._stop},
            counters=(StateCounter("position", high=max(0, self.num_samples - 1)),),
        )

    def _state_values(self) -> dict[str, Any]:
        return {"position": self.position}

    def _apply_state(self, values: dict[str, Any]) -> None:
        self._i = values["position"]

    def _pass_finished(self) -> bool:
        return self._i >= self.num_samples
