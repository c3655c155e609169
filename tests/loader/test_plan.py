"""EpochPlan: epoch orders, the block shuffle, rank shares, batching and cursors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError
from shardstream.loader.plan import MEGABYTE, EpochPlan, block_shuffle, shuffle_window
from shardstream.order.samplers.global_order import epoch_order


def plan(**kwargs) -> EpochPlan:
    kwargs.setdefault("view", None)
    kwargs.setdefault("dataset_length", 10)
    kwargs.setdefault("seed", 7)
    return EpochPlan(**kwargs)


def test_unshuffled_order_is_the_view_order():
    assert plan().order(0).tolist() == list(range(10))
    view = np.array([5, 3, 3, 9], dtype=np.int64)
    assert plan(view=view).order(4).tolist() == [5, 3, 3, 9]
    assert len(plan(view=view)) == 4


def test_full_window_is_the_sampler_cores_epoch_order():
    p = plan(dataset_length=50, shuffle=True, window=50)
    for epoch in (0, 1, 5):
        expected = epoch_order(sample_count=50, seed=7, epoch=epoch)
        assert p.order(epoch).tolist() == expected.tolist()
    assert p.order(0).tolist() != p.order(1).tolist()


def test_shuffled_view_permutes_the_view_entries():
    view = np.arange(100, 140, dtype=np.int64)
    p = plan(view=view, dataset_length=200, shuffle=True, window=1000)
    order = p.order(3)
    assert sorted(order.tolist()) == list(range(100, 140))
    assert order.tolist() == (view[epoch_order(sample_count=40, seed=7, epoch=3)]).tolist()


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), window=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_block_shuffle_is_a_permutation_of_contiguous_runs(n, window, seed):
    out = block_shuffle(n, window, np.random.default_rng(seed))
    assert sorted(out.tolist()) == list(range(n))
    if window >= n:
        return
    full = n // window
    for k in range(full):
        block = np.sort(out[k * window : (k + 1) * window])
        assert block.tolist() == list(range(int(block[0]), int(block[0]) + window))
    tail = np.sort(out[full * window :])
    if len(tail):
        assert tail.tolist() == list(range(int(tail[0]), int(tail[0]) + len(tail)))


def test_block_shuffle_mixes_blocks_and_within_blocks():
    out = block_shuffle(1000, 10, np.random.default_rng(0))
    firsts = [int(np.min(out[k * 10 : (k + 1) * 10])) for k in range(100)]
    assert firsts != sorted(firsts)  # block order shuffled
    within = [out[k * 10 : (k + 1) * 10].tolist() for k in range(100)]
    assert sum(w == sorted(w) for w in within) <= 1  # blocks are permuted inside
    # every run start of range(1000) is a multiple of 10 here (no leftover)
    assert sorted(firsts) == list(range(0, 1000, 10))


def test_plan_order_with_small_window_is_deterministic_per_seed_and_epoch():
    p = plan(dataset_length=100, shuffle=True, window=8)
    assert p.order(2).tolist() == p.order(2).tolist()
    assert p.order(2).tolist() != p.order(3).tolist()
    assert (
        p.order(2).tolist()
        != plan(dataset_length=100, shuffle=True, window=8, seed=8).order(2).tolist()
    )


def test_shuffle_window_from_buffer_megabytes_and_mean_size():
    assert shuffle_window(1, 1000) == MEGABYTE // 1000
    assert shuffle_window(2048, 10_000) == 2048 * MEGABYTE // 10_000
    assert shuffle_window(0.0001, 10**9) == 1
    assert shuffle_window(1, 0) >= 2**62


@settings(max_examples=300, deadline=None)
@given(
    m=st.integers(0, 60),
    batch=st.integers(1, 7),
    world=st.integers(1, 4),
    drop_last=st.booleans(),
)
def test_batch_count_matches_deep_lake_len(m, batch, world, drop_last):
    counts = []
    for rank in range(world):
        p = plan(
            dataset_length=m, batch_size=batch, world_size=world, rank=rank, drop_last=drop_last
        )
        batches = list(p.batches(0))
        counts.append(len(batches))
        assert p.batch_count() == len(batches)
        if drop_last:
            assert all(len(b.indices) == batch for b in batches)
    expected = (math.floor if drop_last else math.ceil)(m / (batch * world))
    assert counts == [expected] * world


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_ranks_get_disjoint_strided_equal_shares(world, drop_last):
    m = 10
    shares = [
        plan(dataset_length=m, world_size=world, rank=r, drop_last=drop_last).rank_positions(0)
        for r in range(world)
    ]
    assert len({len(s) for s in shares}) == 1
    for r, share in enumerate(shares):
        assert share.tolist() == list(range(r, r + world * len(share), world))
    all_positions = np.concatenate(shares)
    assert len(set(all_positions.tolist())) == len(all_positions)  # disjoint
    if drop_last:
        assert len(all_positions) == m - m % world
        assert all_positions.max() < m
    else:
        # padding: positions past the end wrap to the start of the order
        assert len(all_positions) == world * math.ceil(m / world)
        assert set((all_positions % m).tolist()) == set(range(m))


def test_batches_carry_cursors_that_resume_exactly():
    p = plan(dataset_length=23, shuffle=True, window=4, batch_size=3, world_size=2, rank=1)
    full = list(p.batches(5))
    assert [b.last for b in full] == [False] * (len(full) - 1) + [True]
    for k in range(len(full) - 1):
        resumed = list(p.batches(5, full[k].cursor))
        assert len(resumed) == len(full) - k - 1
        for a, b in zip(resumed, full[k + 1 :]):
            assert a.indices.tolist() == b.indices.tolist()
            assert a.positions.tolist() == b.positions.tolist()
    # rank 0 of the same world resumes from the same cursor too
    other = plan(dataset_length=23, shuffle=True, window=4, batch_size=3, world_size=2, rank=0)
    assert other.cursor_after(int(list(other.batches(5))[0].positions[-1])) == full[0].cursor


def test_indices_follow_the_order_at_each_position():
    p = plan(dataset_length=30, shuffle=True, window=7, batch_size=4)
    order = p.order(1)
    for b in p.batches(1):
        assert b.indices.tolist() == order[b.positions % 30].tolist()


def test_unbatched_chunks():
    p = plan(dataset_length=10)
    chunks = list(p.batches(0, 0, chunk=4))
    assert [c.indices.tolist() for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [c.cursor for c in chunks] == [4, 8, 10]
    assert p.batch_count() == 10


def test_cursor_checks_and_argument_checks():
    p = plan()
    assert p.rank_positions(10).tolist() == []
    with pytest.raises(ConfigError, match="cursor 11"):
        p.rank_positions(11)
    with pytest.raises(ConfigError, match="rank=2"):
        plan(rank=2, world_size=2)
    with pytest.raises(ConfigError, match="window"):
        plan(window=0)
    with pytest.raises(ConfigError, match="seed"):
        plan(seed=2**32)
    with pytest.raises(ConfigError, match="block_shuffle"):
        block_shuffle(5, 0, np.random.default_rng(0))
