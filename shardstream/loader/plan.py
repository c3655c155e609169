"""The epoch plan of a :class:`~shardstream.loader.loader.Loader`: which samples, in what order, in
which batches, for which rank.

A loader's *view* is the list of dataset indices left after ``query`` / ``sample_by`` (repeats
allowed; all samples when there was neither). Epoch ``e`` puts the view's ``m`` entries in an
order drawn from ``epoch_seed(seed, e)`` (:mod:`shardstream.order.samplers.seeds`):

- no shuffle: view order;
- shuffle with a window ``W >= m``: a full permutation, exactly
  :func:`~shardstream.order.samplers.global_order.epoch_order`;
- shuffle with ``W < m`` (a shuffle buffer smaller than the data): the view is cut into runs of
  ``W`` consecutive entries (one run, at a random place, is the ``m % W`` leftover), the full
  runs are put in random order and each is permuted within itself, and the short run comes last.
  So every aligned block of ``W`` outputs is one contiguous run of ``W`` view entries: reads stay
  local in the file while the order is as random as a buffer of ``W`` samples allows.

A *cursor* counts the positions of the epoch order consumed by all ranks together. From cursor
``c``, rank ``r`` of ``R`` takes positions ``c + r, c + r + R, ...`` (strided, as
:class:`~shardstream.order.samplers.global_order.GlobalOrderSampler` does), so one number is the
progress of every rank. Every rank gets the same count: without ``drop_last`` the tail is padded
with positions past the end, whose samples repeat the order from its start (up to ``R - 1``
samples are seen twice per epoch) and the last batch may be short; with ``drop_last`` the last
``(m - c) % R`` positions are skipped and so is a last batch shorter than ``batch_size``. Then an
epoch has ``ceil(m / (batch_size * R))`` batches, or ``floor(...)`` with ``drop_last`` (Deep
Lake's ``len``). A sample's random stream is ``sample_rng(seed, epoch, position)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..order.samplers.global_order import epoch_order
from ..order.samplers.seeds import SEED_LIMIT, epoch_seed
from ..order.shard_blocks import shard_block_order

__all__ = ["EpochPlan", "PlannedBatch", "block_shuffle", "shuffle_window"]

MEGABYTE = 2**20
"""Bytes in one unit of ``shuffle(buffer_size=...)`` (a mebibyte)."""


@dataclass(frozen=True)
class PlannedBatch:
    """One batch of an epoch on this rank.

    Attributes:
        indices: int64 dataset indices of its samples, in order.
        positions: int64 positions of those samples in the epoch order (for their RNG).
        cursor: the epoch cursor once this batch is consumed.
        last: whether it is the epoch's last batch on this rank.
    """

    indices: np.ndarray
    positions: np.ndarray
    cursor: int
    last: bool


@dataclass(frozen=True, kw_only=True)
class EpochPlan:
    """Order, rank share and batching of every epoch of one loader.

    Args:
        view: int64 dataset indices the loader iterates (``None``: ``0 .. dataset_length - 1``).
        dataset_length: number of samples in the dataset.
        seed: the run's seed, in ``[0, 2**32)``.
        shuffle: whether epochs are shuffled.
        window: shuffle window in samples (>= 1; ignored without shuffle).
        batch_size: samples per batch (``None``: unbatched, counted as 1).
        drop_last: drop the rank's tail that does not fill a batch (and cut instead of pad).
        rank: this rank, in ``[0, world_size)``.
        world_size: number of ranks (>= 1).
        shard_starts: with shuffle, the shard-block shuffle of these shards (global index of
            each shard's first sample plus the total) instead of the window shuffle; the view
            must then be the whole set.
        shards_per_block: shards per block of the shard-block shuffle.

    Raises:
        ConfigError: an argument is out of range (checked in ``__post_init__``).
    """

    view: np.ndarray | None
    dataset_length: int
    seed: int
    shuffle: bool = False
    window: int = 1
    batch_size: int | None = None
    drop_last: bool = False
    rank: int = 0
    world_size: int = 1
    shard_starts: np.ndarray | None = None
    shards_per_block: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigError(f"EpochPlan: seed must be in [0, 2**32), got {self.seed}")
        if self.window < 1:
            raise ConfigError(f"EpochPlan: window must be >= 1, got {self.window}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"EpochPlan: batch_size must be >= 1, got {self.batch_size}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(
                f"EpochPlan: rank={self.rank} must lie in [0, world_size={self.world_size})"
            )

    def __len__(self) -> int:
        """Number of entries in the view (samples per epoch over all ranks)."""
        return self.dataset_length if self.view is None else len(self.view)

    def order(self, epoch: int) -> np.ndarray:
        """The dataset indices of epoch ``epoch`` in order (length ``len(self)``).

        Raises:
            ConfigError: ``epoch`` is not in ``[0, 2**32)``.
        """
        m = len(self)
        if not self.shuffle:
            positions = np.arange(m, dtype=np.int64)
        elif self.shard_starts is not None:  # shuffle(order="blocks"): see order.shard_blocks
            positions = shard_block_order(
                self.shard_starts,
                seed=self.seed,
                epoch=epoch,
                shards_per_block=self.shards_per_block,
            )
        elif self.window >= m:
            positions = epoch_order(sample_count=m, seed=self.seed, epoch=epoch)
        else:
            rng = np.random.Generator(np.random.PCG64(epoch_seed(self.seed, epoch)))
            positions = block_shuffle(m, self.window, rng)
        if self.view is None:
            return positions
        return np.asarray(self.view, dtype=np.int64)[positions]

    def rank_positions(self, cursor: int = 0) -> np.ndarray:
        """The epoch positions this rank takes from ``cursor`` on, whole batches only.

        Positions ``>= len(self)`` are padding; their sample is ``order[position % len(self)]``.

        Raises:
            ConfigError: ``cursor`` outside ``[0, len(self)]``.
        """
        m = len(self)
        if not 0 <= cursor <= m:
            raise ConfigError(f"cursor {cursor} is outside the epoch's {m} positions [0, {m}]")
        count = self._rank_count(m - cursor)
        if self.drop_last and self.batch_size is not None:
            count -= count % self.batch_size
        return cursor + self.rank + self.world_size * np.arange(count, dtype=np.int64)

    def batch_count(self, cursor: int = 0) -> int:
        """Batches this rank yields from ``cursor`` to the end of the epoch."""
        count = len(self.rank_positions(cursor))
        size = self.batch_size or 1
        return -(-count // size)

    def batches(
        self, epoch: int, cursor: int = 0, chunk: int | None = None
    ) -> Iterator[PlannedBatch]:
        """This rank's batches of epoch ``epoch`` from ``cursor`` on.

        Args:
            epoch: the epoch, in ``[0, 2**32)``.
            cursor: positions already consumed by all ranks (``0 <= cursor <= len(self)``).
            chunk: samples per item for an unbatched plan (default 1); ignored when batched.

        Yields:
            :class:`PlannedBatch` in order; the last one has ``last=True``.

        Raises:
            ConfigError: ``cursor`` or ``epoch`` out of range.
        """
        positions = self.rank_positions(cursor)
        if not len(positions):
            return
        order = self.order(epoch)
        m = len(order)
        size = self.batch_size or max(1, chunk or 1)
        for start in range(0, len(positions), size):
            part = positions[start : start + size]
            yield PlannedBatch(
                indices=order[part % m],
                positions=part,
                cursor=self.cursor_after(int(part[-1])),
                last=start + size >= len(positions),
            )

    def cursor_after(self, position: int) -> int:
        """The epoch cursor once this rank has consumed the sample at ``position``."""
        return position - self.rank + self.world_size

    def _rank_count(self, remaining: int) -> int:
        if remaining <= 0:
            return 0
        if self.drop_last:
            return remaining // self.world_size
        return -(-remaining // self.world_size)


def block_shuffle(n: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` made of shuffled, internally permuted runs of ``window``.

    Args:
        n: number of entries (>= 0).
        window: run length (>= 1).
        rng: the generator to draw from.

    Returns:
        int64 permutation; output ``[k * window, (k + 1) * window)`` is one run of ``window``
        consecutive values for every full block ``k``; the last ``n % window`` outputs are the
        leftover run (placed at a random run boundary of ``range(n)``), permuted.

    Raises:
        ConfigError: ``window < 1`` or ``n < 0``.
    """
    if window < 1 or n < 0:
        raise ConfigError(f"block_shuffle: need n >= 0 and window >= 1, got n={n}, {window=}")
    if window >= n:
        return rng.permutation(n).astype(np.int64, copy=False)
    full, rest = divmod(n, window)
    short_at = int(rng.integers(full + 1)) if rest else full
    starts = np.arange(full, dtype=np.int64) * window
    starts[short_at:] += rest
    within = rng.permuted(
        np.broadcast_to(np.arange(window, dtype=np.int64), (full, window)), axis=1
    )
    blocks = starts[rng.permutation(full)][:, None] + within
    if not rest:
        return blocks.reshape(-1)
    tail = short_at * window + rng.permutation(rest).astype(np.int64)
    return np.concatenate([blocks.reshape(-1), tail])


def shuffle_window(buffer_size: float, mean_sample_bytes: float) -> int:
    """Samples a shuffle buffer of ``buffer_size`` MiB holds: ``max(1, bytes // mean size)``.

    Args:
        buffer_size: buffer size in MiB (``2**20`` bytes), > 0.
        mean_sample_bytes: mean packed size of the view's samples (> 0; 0 means unknown).

    Returns:
        The shuffle window in samples, at least 1.
    """
    if mean_sample_bytes <= 0:
        return 2**62
    return max(1, int(buffer_size * MEGABYTE // mean_sample_bytes))
