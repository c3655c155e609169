"""The shard formula, the uneven-shard check and the round-robin model, against datadings 3.4.7.

datadings' ``IterableDataset._start_stop`` is the oracle: in the main process it sees one worker,
so posing as rank ``index`` of ``world_size = num_shards`` makes it compute shard ``index``.
"""

from __future__ import annotations

import pytest
from datadings.torch import IterableDataset as DatadingsIterableDataset
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.compat.datadings.shards import (
    batch_count,
    check_last_batch,
    round_robin_taken,
    shard_bounds,
    shard_index,
)
from shardstream.errors import ConfigError, UnevenShardsError


def datadings_bounds(n: int, num_shards: int, index: int, batch_size=None) -> tuple[int, int]:
    oracle = DatadingsIterableDataset(range(n), batch_size=batch_size)  # len() is all it reads
    oracle.rank, oracle.world_size = index, num_shards
    return oracle._start_stop()


@pytest.mark.parametrize(
    ("n", "num_shards", "expected"),
    [
        (10, 3, [(0, 3), (3, 7), (7, 10)]),  # 1 rank x 3 workers
        (10, 4, [(0, 2), (2, 5), (5, 8), (8, 10)]),  # 2 ranks x 2 workers
        (23, 2, [(0, 12), (12, 23)]),  # round(11.5) == 12 (ties to even)
        (5, 2, [(0, 2), (2, 5)]),  # round(2.5) == 2
        (2, 4, [(0, 0), (0, 1), (1, 2), (2, 2)]),  # more shards than samples: some empty
        (0, 3, [(0, 0), (0, 0), (0, 0)]),
    ],
)
def test_shard_bounds_exact_values(n, num_shards, expected):
    assert [shard_bounds(n, num_shards, i) for i in range(num_shards)] == expected
    assert [datadings_bounds(n, num_shards, i) for i in range(num_shards)] == expected


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 10**7), num_shards=st.integers(1, 97), data=st.data())
def test_shard_bounds_equal_datadings_and_partition_the_reader(n, num_shards, data):
    index = data.draw(st.integers(0, num_shards - 1), label="index")
    assert shard_bounds(n, num_shards, index) == datadings_bounds(n, num_shards, index)
    if num_shards <= 24:
        bounds = [shard_bounds(n, num_shards, i) for i in range(num_shards)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, no overlap
        lengths = [stop - start for start, stop in bounds]
        assert max(lengths) - min(lengths) <= 2 and sum(lengths) == n


@settings(max_examples=200, deadline=None)
@given(
    world_size=st.integers(1, 5),
    num_workers=st.integers(1, 4),
    epoch=st.integers(0, 50),
    data=st.data(),
)
def test_shard_index_rotates_ranks_by_epoch_and_is_a_bijection(
    world_size, num_workers, epoch, data
):
    rank = data.draw(st.integers(0, world_size - 1), label="rank")
    worker = data.draw(st.integers(0, num_workers - 1), label="worker")
    got = shard_index(
        rank=rank, epoch=epoch, num_workers=num_workers, worker_id=worker, world_size=world_size
    )
    assert got == ((rank + epoch) * num_workers + worker) % (world_size * num_workers)
    everyone = {
        shard_index(
            rank=r, epoch=epoch, num_workers=num_workers, worker_id=w, world_size=world_size
        )
        for r in range(world_size)
        for w in range(num_workers)
    }
    assert everyone == set(range(world_size * num_workers))
    if num_workers == 1:  # datadings in the main process: one worker
        oracle = DatadingsIterableDataset(range(10 * world_size))
        oracle.rank, oracle.world_size, oracle.epoch = rank, world_size, epoch
        assert oracle._start_stop() == shard_bounds(10 * world_size, world_size, got)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 5000), num_shards=st.integers(1, 12), batch_size=st.integers(1, 64))
def test_uneven_shard_error_exactly_when_datadings_raises(n, num_shards, batch_size):
    try:
        datadings_bounds(n, num_shards, 0, batch_size=batch_size)
        datadings_raised = False
    except RuntimeError:
        datadings_raised = True
    if datadings_raised:
        with pytest.raises(UnevenShardsError) as info:
            check_last_batch(n, num_shards, batch_size)
        assert isinstance(info.value, RuntimeError)
    else:
        check_last_batch(n, num_shards, batch_size)


def test_uneven_shard_error_message():
    # 13 samples in 6 shards: 2.1666...; % 2 = 0.1666... -> a worker's last batch may be empty
    with pytest.raises(RuntimeError) as info:
        check_last_batch(13, 6, 2)
    message = str(info.value)
    assert message.startswith(f"len(shard) % batch_size = {(13 / 6) % 2}")
    assert "13 samples in 6 shards" in message and "batch_size=2" in message
    assert message.endswith("change num_workers, batch_size, or world_size")
    check_last_batch(13, 6, None)  # no batch size, no check
    check_last_batch(12, 6, 2)  # exact: remainder 0


def simulate_round_robin(counts: list[int], batches: int) -> tuple[list[int], int]:
    """torch's loop: visit workers in a cycle, skip exhausted ones, take one batch each visit."""
    left = list(counts)
    taken = [0] * len(counts)
    worker = 0
    for _ in range(batches):
        while left[worker] == 0:
            worker = (worker + 1) % len(counts)
        left[worker] -= 1
        taken[worker] += 1
        worker = (worker + 1) % len(counts)
    while left[worker] == 0:
        worker = (worker + 1) % len(counts)
    return taken, worker


@settings(max_examples=300, deadline=None)
@given(counts=st.lists(st.integers(0, 9), min_size=1, max_size=6), data=st.data())
def test_round_robin_taken_equals_a_simulated_loader(counts, data):
    total = sum(counts)
    if total == 0:
        with pytest.raises(ConfigError):
            round_robin_taken(counts, 0)
        return
    batches = data.draw(st.integers(0, total - 1), label="batches")
    assert round_robin_taken(counts, batches) == simulate_round_robin(counts, batches)


def test_round_robin_taken_rejects_batches_past_the_end():
    with pytest.raises(ConfigError, match=r"batches=5 must lie in \[0, 5\)"):
        round_robin_taken([2, 3], 5)
    assert round_robin_taken([2, 3], 4) == ([2, 2], 1)


def test_batch_count():
    assert [batch_count(n, 4, False) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
    assert [batch_count(n, 4, True) for n in (0, 1, 4, 5, 8)] == [0, 0, 1, 1, 2]


def test_shard_bounds_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="num_shards must be >= 1"):
        shard_bounds(10, 0, 0)
    with pytest.raises(ConfigError, match=r"index=3 outside \[0, 3\)"):
        shard_bounds(10, 3, 3)
