"""shardstream's sampler: one global order per epoch, split by position, resumable elastically.

The order of epoch ``e`` is a permutation of ``range(sample_count)`` drawn from
``numpy.random.Generator(PCG64(SeedSequence([seed, e])))`` (see :mod:`.seeds`), the same in
every process. A global *cursor* counts the positions of that order already handed out. From
the cursor on, rank ``r`` of ``R`` takes positions ``cursor + r, cursor + r + R, ...``
(interleaved, not contiguous blocks: then, with every rank consuming the same number ``k`` of
items, the consumed positions are exactly the prefix ``[0, cursor + R * k)``, so one number
describes the progress of all ranks under any world size).

To give every rank the same count, the end of the epoch is either padded (default): positions
past the end repeat the order from its start, so up to ``R - 1`` samples are seen twice; or,
with ``drop_last``, cut: the last ``(sample_count - cursor) % R`` positions are skipped this
epoch. Within a rank, :func:`split_for_worker` splits the stream across loader workers by
position in whole batches, so that a loader that takes batches from its workers in turn
reproduces the rank's stream exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ...errors import ConfigError
from ..state import StateCounter, StatefulMixin, StateSpec
from ._common import CHUNK, check_bool, check_int, default_rank_and_world_size
from .seeds import SEED_LIMIT, epoch_seed

__all__ = ["GlobalOrderSampler", "epoch_order", "split_for_worker"]


def epoch_order(*, sample_count: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The global order of one epoch.

    Args:
        sample_count: data set length (>= 0).
        seed: the run's seed, in ``[0, 2**32)``.
        epoch: the epoch, in ``[0, 2**32)``.
        shuffle: permute; ``False`` gives ``arange(sample_count)``.

    Returns:
        An int64 array: ``Generator(PCG64(SeedSequence([seed, epoch]))).permutation(n)``.

    Raises:
        ConfigError: an argument is not an integer in its range.
    """
    sample_count = check_int(sample_count, "sample_count", "epoch_order", low=0)
    sequence = epoch_seed(seed, epoch)
    if not shuffle:
        return np.arange(sample_count, dtype=np.int64)
    generator = np.random.Generator(np.random.PCG64(sequence))
    return generator.permutation(sample_count).astype(np.int64, copy=False)


def split_for_worker(
    values: np.ndarray, *, worker_id: int, num_workers: int, batch_size: int = 1
) -> np.ndarray:
    """The part of a rank's stream that loader worker ``worker_id`` produces.

    Worker ``w`` takes the batches ``w, w + num_workers, ...`` of ``batch_size`` consecutive
    items. A loader that takes one batch from each worker in turn (as torch's ``DataLoader``
    does) then yields the rank's stream in its original order.

    Args:
        values: the rank's items (indices or positions), in order.
        worker_id: this worker, in ``[0, num_workers)``.
        num_workers: number of workers (>= 1).
        batch_size: items per batch (>= 1).

    Returns:
        The worker's items, in order (a new array).

    Raises:
        ConfigError: an argument is out of range.
    """
    num_workers = check_int(num_workers, "num_workers", "split_for_worker", low=1)
    worker_id = check_int(worker_id, "worker_id", "split_for_worker", low=0)
    batch_size = check_int(batch_size, "batch_size", "split_for_worker", low=1)
    if worker_id >= num_workers:
        raise ConfigError(
            f"split_for_worker: worker_id={worker_id} must be below num_workers={num_workers}"
        )
    values = np.asarray(values)
    batch_of_item = np.arange(len(values)) // batch_size
    return values[batch_of_item % num_workers == worker_id]


class GlobalOrderSampler(StatefulMixin):
    """shardstream's sampler: a (seed, epoch) global order split across ranks by position.

    Every process computes the same epoch order (:func:`epoch_order`); this rank yields the
    order's entries at positions ``cursor + rank, cursor + rank + world_size, ...`` up to the
    end of the epoch, padded or cut so that all ranks yield the same number of indices (see
    the module docstring). Each yielded index moves the cursor by ``world_size``; when the
    epoch's last index has been handed out, the sampler moves to the next epoch at cursor 0,
    so iterating again continues with a new order even without :meth:`set_epoch`.

    The state is ``{seed, epoch, cursor}`` (plus the data set length, shuffle and drop_last,
    which are checked): no rank, world size or worker count, so a run can resume under another
    world size and continue the same epoch with nothing repeated or skipped. All ranks of a
    lock-step run (each consuming the same count) hold the same state; save it from any one.

    A new iterator continues at the cursor: breaking out of a loop and iterating again does
    not restart the epoch. ``len()`` is this rank's count for a whole epoch (as in torch),
    also right after a mid-epoch resume. A ``DataLoader`` draws indices ahead of the training
    loop (prefetching), so the sampler's state runs ahead of the batches consumed; a loader
    that must resume exactly records the state that belongs to each batch.

    Args:
        sample_count: data set length (>= 1).
        shuffle: permute each epoch; ``False`` uses ``0, 1, ..., n - 1`` every epoch.
        seed: the run's seed, in ``[0, 2**32)``.
        drop_last: cut the end of the epoch instead of padding it.
        rank: this rank; default: that of the initialised process group, else 0.
        world_size: number of ranks; default: that of the initialised process group, else 1.

    Raises:
        ConfigError: an argument is not an integer/bool or out of range.
    """

    def __init__(
        self,
        *,
        sample_count: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        owner = "GlobalOrderSampler"
        self._sample_count = check_int(sample_count, "sample_count", owner, low=1)
        self._shuffle = check_bool(shuffle, "shuffle", owner)
        self._seed = check_int(seed, "seed", owner, low=0)
        if self._seed >= SEED_LIMIT:
            raise ConfigError(f"{owner}: seed must be below 2**32, got {self._seed}")
        self._drop_last = check_bool(drop_last, "drop_last", owner)
        default_rank, default_world_size = default_rank_and_world_size()
        if world_size is None:
            world_size = default_world_size
        self._world_size = check_int(world_size, "world_size", owner, low=1)
        self._rank = default_rank if rank is None else check_int(rank, "rank", owner, low=0)
        if self._rank >= self._world_size:
            raise ConfigError(
                f"{owner}: rank={self._rank} must be smaller than world_size={self._world_size}"
            )
        self._epoch = 0
        self._cursor = 0
        self._token = 0
        self._cache: tuple[int, np.ndarray] | None = None

    def __iter__(self) -> Iterator[int]:
        self._token += 1
        token = self._token
        positions = self.rank_positions()
        order = self.order()
        n, step = self._sample_count, self._world_size
        end = self._cursor + step * len(positions)
        rolled = False
        for lo in range(0, len(positions), CHUNK):
            for index in order[positions[lo : lo + CHUNK] % n].tolist():
                if self._token == token:
                    self._cursor += step
                    if self._cursor == end:  # the epoch's last index: move on before yielding
                        self._epoch += 1
                        self._cursor = 0
                        rolled = True
                yield index
        if self._token == token and not rolled:  # nothing was left for this world size
            self._epoch += 1
            self._cursor = 0

    def __len__(self) -> int:
        return self._count(self._sample_count)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    @property
    def epoch(self) -> int:
        """The epoch whose order the next index comes from."""
        return self._epoch

    @property
    def cursor(self) -> int:
        """Positions of the epoch's order handed out to all ranks together."""
        return self._cursor

    @property
    def rank(self) -> int:
        """This rank."""
        return self._rank

    @property
    def world_size(self) -> int:
        """The number of ranks sharing the order."""
        return self._world_size

    def order(self) -> np.ndarray:
        """The current epoch's global order (read-only, cached per epoch).

        Returns:
            An int64 array holding a permutation of ``range(sample_count)``.
        """
        if self._cache is None or self._cache[0] != self._epoch:
            order = epoch_order(
                sample_count=self._sample_count,
                seed=self._seed,
                epoch=self._epoch,
                shuffle=self._shuffle,
            )
            order.flags.writeable = False
            self._cache = (self._epoch, order)
        return self._cache[1]

    def rank_positions(self) -> np.ndarray:
        """The global positions this rank yields from the cursor to the end of the epoch.

        Positions at or past ``sample_count`` are padding; their index is
        ``order()[position % sample_count]``. Pass a position to
        :func:`~shardstream.order.samplers.seeds.sample_seed` for that sample's random stream.

        Returns:
            An int64 array, the same length on every rank.
        """
        count = self._count(self._sample_count - self._cursor)
        return self._cursor + self._rank + self._world_size * np.arange(count, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; another epoch than the current one starts at cursor 0.

        Setting the current epoch again keeps the cursor (a restored or automatic position).

        Args:
            epoch: the epoch, in ``[0, 2**32)``.

        Raises:
            ConfigError: ``epoch`` is not an integer in range.
        """
        epoch = check_int(epoch, "epoch", "GlobalOrderSampler.set_epoch", low=0)
        if epoch >= SEED_LIMIT:
            raise ConfigError(
                f"GlobalOrderSampler.set_epoch: epoch must be below 2**32, got {epoch}"
            )
        if epoch != self._epoch:
            self._epoch = epoch
            self._cursor = 0
            self._token += 1

    def _state_spec(self) -> StateSpec:
        config = {
            "sample_count": self._sample_count,
            "shuffle": self._shuffle,
            "seed": self._seed,
            "drop_last": self._drop_last,
        }
        counters = (
            StateCounter("epoch", high=SEED_LIMIT - 1),
            StateCounter("cursor", high=self._sample_count - 1),
        )
        return StateSpec(kind="GlobalOrderSampler", config=config, counters=counters)

    def _state_values(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "cursor": self._cursor}

    def _apply_state(self, values: dict[str, Any]) -> None:
        self._epoch = values["epoch"]
        self._cursor = values["cursor"]
        self._token += 1  # an older iterator no longer moves the cursor

    def _count(self, remaining: int) -> int:
        if remaining <= 0:
            return 0
        if self._drop_last:
            return remaining // self._world_size
        return -(-remaining // self._world_size)
