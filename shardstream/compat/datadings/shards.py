"""How datadings' ``IterableDataset`` splits a reader across ranks and loader workers.

A reader of ``length`` samples is cut into ``num_shards = world_size * num_workers`` contiguous
shards with datadings 3.4.7's formula: with the float ``shard_len = length / num_shards``, shard
``i`` is ``[round(shard_len * i), round(shard_len * (i + 1)))`` (Python's ``round``, ties to
even), and the last shard ends at ``length``. The shards partition ``range(length)`` exactly;
their lengths may differ by one. In epoch ``e``, worker ``w`` of rank ``r`` reads shard
``((r + e) * num_workers + w) % num_shards``, so every epoch moves each rank to the next group
of shards.

:func:`round_robin_taken` models how torch's ``DataLoader`` merges worker streams: one batch
from each worker in turn, skipping workers that have run out. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import ConfigError, UnevenShardsError

__all__ = [
    "batch_count",
    "check_last_batch",
    "round_robin_taken",
    "shard_bounds",
    "shard_index",
]


def shard_bounds(length: int, num_shards: int, index: int) -> tuple[int, int]:
    """The ``[start, stop)`` range of shard ``index`` of ``num_shards`` (datadings' formula).

    Args:
        length: number of samples in the reader (>= 0).
        num_shards: ``world_size * num_workers`` (>= 1).
        index: the shard, in ``[0, num_shards)``.

    Returns:
        ``(start, stop)`` with ``0 <= start <= stop <= length``.

    Raises:
        ConfigError: ``num_shards < 1`` or ``index`` outside ``[0, num_shards)``.
    """
    if num_shards < 1:
        raise ConfigError(f"shard_bounds: num_shards must be >= 1, got {num_shards}")
    if not 0 <= index < num_shards:
        raise ConfigError(f"shard_bounds: index={index} outside [0, {num_shards})")
    shard_len = length / num_shards
    start = max(0, int(round(shard_len * index)))
    if index + 1 == num_shards:
        return start, length
    return start, min(length, int(round(shard_len * (index + 1))))


def shard_index(*, rank: int, epoch: int, num_workers: int, worker_id: int, world_size: int) -> int:
    """The shard that worker ``worker_id`` of rank ``rank`` reads in epoch ``epoch``.

    Args:
        rank: the rank, in ``[0, world_size)``.
        epoch: the epoch (>= 0).
        num_workers: loader workers per rank (1 when the dataset is iterated in the main process).
        worker_id: the worker, in ``[0, num_workers)``.
        world_size: number of ranks.

    Returns:
        ``((rank + epoch) * num_workers + worker_id) % (world_size * num_workers)``.
    """
    return ((rank + epoch) * num_workers + worker_id) % (world_size * num_workers)


def check_last_batch(length: int, num_shards: int, batch_size: int | None) -> None:
    """Raise datadings' error when a worker's last batch may be empty.

    datadings refuses shard lengths whose remainder modulo the batch size lies strictly between
    0 and 1 (``0 < (length / num_shards) % batch_size < 1``): then some shards end with a full
    batch and others with a single sample more or less, so workers (and ranks) may deliver
    different numbers of batches.

    Args:
        length: number of samples in the reader.
        num_shards: ``world_size * num_workers``.
        batch_size: the loader's batch size; ``None`` skips the check.

    Raises:
        UnevenShardsError: the remainder lies in ``(0, 1)`` (a ``RuntimeError``).
    """
    if batch_size is None:
        return
    overhang = (length / num_shards) % batch_size
    if 0 < overhang < 1:
        raise UnevenShardsError(
            f"len(shard) % batch_size = {overhang} for {length} samples in {num_shards} shards "
            f"(world_size * num_workers) and batch_size={batch_size}, so the last batch of a "
            "worker may be empty; change num_workers, batch_size, or world_size"
        )


def batch_count(items: int, batch_size: int, drop_last: bool) -> int:
    """Batches a loader worker makes from ``items`` samples.

    Args:
        items: samples the worker yields (>= 0).
        batch_size: samples per batch (>= 1).
        drop_last: whether an incomplete last batch is dropped.

    Returns:
        ``items // batch_size`` with ``drop_last``, else ``ceil(items / batch_size)``.
    """
    if drop_last:
        return items // batch_size
    return -(-items // batch_size)


def round_robin_taken(batch_counts: Sequence[int], batches: int) -> tuple[list[int], int]:
    """Split ``batches`` consumed batches over workers that are read one batch each in turn.

    torch's ``DataLoader`` (with ``in_order=True``) asks its workers for batches in a fixed cycle
    and skips a worker once its iterator is exhausted, so after ``batches`` batches worker ``i``
    (in cycle order) has delivered ``min(batch_counts[i], L)`` or one more, where ``L`` is the
    number of complete rounds.

    Args:
        batch_counts: batches each worker can deliver, in the order the cycle visits them.
        batches: batches consumed, in ``[0, sum(batch_counts))``.

    Returns:
        ``(taken, next_worker)``: batches taken from each worker (cycle order) and the cycle
        position of the worker that delivers the next batch.

    Raises:
        ConfigError: ``batches`` is negative or not below the total.
    """
    total = sum(batch_counts)
    if not 0 <= batches < total:
        raise ConfigError(
            f"round_robin_taken: batches={batches} must lie in [0, {total}) for workers with "
            f"{list(batch_counts)} batches"
        )
    low, high = 0, max(batch_counts)  # largest L with sum(min(c, L)) <= batches
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(c, mid) for c in batch_counts) <= batches:
            low = mid
        else:
            high = mid - 1
    taken = [min(c, low) for c in batch_counts]
    left = batches - sum(taken)
    eligible = [i for i, c in enumerate(batch_counts) if c > low]
    for i in eligible[:left]:
        taken[i] += 1
    return taken, eligible[left]
