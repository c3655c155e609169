"""Shuffler: iterate a reader in a fresh random order every epoch, exactly as datadings does."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..read.reader import Reader
from .augment_base import check_chunk_size
from .epochs import EpochShuffle

__all__ = ["Shuffler", "shuffle_order"]


def shuffle_order(length: int, seed: int) -> np.ndarray:
    """The permutation of ``range(length)`` that Python's ``random.Random(seed).shuffle`` makes.

    Args:
        length: number of samples.
        seed: seed of the ``random.Random`` generator.

    Returns:
        A read-only ``int64`` array holding each index once.
    """
    order = list(range(length))
    random.Random(seed).shuffle(order)
    array = np.array(order, dtype=np.int64)
    array.setflags(write=False)
    return array


class Shuffler(EpochShuffle):
    """Iterate over a reader in random order, reshuffled every epoch.

    Epoch ``e`` visits the samples in ``shuffle_order(n, seed + e * n)`` where ``n = len(reader)``,
    the same order as datadings 3.4.7. One pass of :meth:`iter` yields the rest of the current
    epoch and then moves to the next, so calling ``iter`` again starts a new order. Samples are
    read ``chunk_size`` at a time with :meth:`Reader.getitems`.

    Differences from datadings 3.4.7, all fixes:

    - ``seek(i)`` with ``i >= n`` moves to epoch ``i // n``, position ``i % n`` (datadings kept the
      unreduced position, so its next pass yielded nothing and then skipped an epoch).
    - A negative ``seek`` raises ``IndexError`` instead of moving to an undefined epoch.
    - The position counts a sample before it is yielded, so breaking out of a loop and iterating
      again continues with the next sample instead of repeating the last one.

    Warning:
        Not thread safe.

    Args:
        reader: the reader to shuffle.
        seed: base seed; defaults to ``len(reader)``.

    Raises:
        ConfigError: ``reader`` is not a Reader or ``seed`` is not an integer.
    """

    _kind = "Shuffler"

    def __init__(self, reader: Reader, seed: int | None = None) -> None:
        super().__init__(reader, seed, default_seed=len(reader))
        self._cache: tuple[int, np.ndarray] | None = None

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The sample indices in the order epoch ``epoch`` yields them.

        Args:
            epoch: the epoch number (0 for the first pass).

        Returns:
            A read-only ``int64`` permutation of ``range(len(reader))``.
        """
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, shuffle_order(self._n, self._seed + epoch * self._n))
        return self._cache[1]

    def iter(
        self, yield_key: bool = False, raw: bool = False, copy: bool = True, chunk_size: int = 16
    ) -> Iterator[Any]:
        """Yield the rest of the current epoch in shuffled order, then move to the next epoch.

        Args:
            yield_key: yield ``(key, sample)`` pairs.
            raw: yield msgpack-encoded bytes.
            copy: if False, raw samples may be ``memoryview`` objects.
            chunk_size: samples fetched per :meth:`Reader.getitems` call.

        Returns:
            An iterator over the samples.

        Raises:
            ConfigError: ``chunk_size < 1``.
        """
        chunk_size = check_chunk_size(chunk_size)
        return self._iterate(yield_key, raw, copy, chunk_size)

    def _iterate(self, yield_key: bool, raw: bool, copy: bool, chunk_size: int) -> Iterator[Any]:
        self._epoch, self._i = self._normalized()
        order = self.epoch_order(self._epoch)
        getitems = self._reader.getitems
        for start in range(self._i, self._n, chunk_size):
            for sample in getitems(order[start : start + chunk_size], yield_key, raw, copy):
                self._i += 1
                yield sample
        self._epoch += 1
        self._i = 0
