"""Readers the order tests wrap: shardstream's ListReader, and datadings' as the oracle."""

from __future__ import annotations

from typing import Any

from datadings.reader import ListReader as DatadingsListReader

from shardstream.read.list import ListReader


def numbered_samples(n: int) -> list[dict]:
    """``n`` samples ``{"key": "s<i>", "i": i}``."""
    return [{"key": f"s{i}", "i": i} for i in range(n)]


def make_reader(n: int) -> ListReader:
    """A shardstream ListReader over :func:`numbered_samples`."""
    return ListReader(numbered_samples(n))


def datadings_reader(n: int) -> DatadingsListReader:
    """datadings' own ListReader over :func:`numbered_samples` (for datadings' augments)."""
    return DatadingsListReader(numbered_samples(n))


def ids(samples: Any) -> list[int]:
    """The ``"i"`` field of each sample: the sample's index in the reader."""
    return [sample["i"] for sample in samples]


def index_of(sample: dict) -> int:
    """The index of one sample in its reader."""
    return sample["i"]


class LoggingReader(ListReader):
    """A ListReader that records its ``slice`` and ``getitems`` calls and how often it closed."""

    def __init__(self, samples: list[dict]) -> None:
        super().__init__(samples)
        self.slices: list[tuple[int, int]] = []
        self.getitems_calls: list[list[int]] = []
        self.closed = 0

    def slice(self, start, stop=None, yield_key=False, raw=False, copy=True):
        """Record ``(start, stop)``, then slice as ListReader does."""
        self.slices.append((start, stop))
        return super().slice(start, stop, yield_key, raw, copy)

    def getitems(self, indices, yield_key=False, raw=False, copy=True):
        """Record the indices, then fetch as ListReader does."""
        self.getitems_calls.append([int(i) for i in indices])
        return super().getitems(indices, yield_key, raw, copy)

    def close(self) -> None:
        """Count the call."""
        self.closed += 1
