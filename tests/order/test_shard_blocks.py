"""The shard-block shuffle: a deterministic permutation whose blocks each draw on k shards, its
quality statistic, and the Loader's shuffle(order="blocks") over rank-independent positions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError
from shardstream.loader.plan import EpochPlan
from shardstream.order.shard_blocks import shard_block_order, shuffle_quality


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=12),
    k=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 3),
)
def test_blocks_are_a_permutation_each_block_from_k_shards(sizes, k, seed, epoch):
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    order = shard_block_order(starts, seed=seed, epoch=epoch, shards_per_block=k)
    assert sorted(order.tolist()) == list(range(int(starts[-1])))
    assert np.array_equal(
        order, shard_block_order(starts, seed=seed, epoch=epoch, shards_per_block=k)
    )
    shard_of = (np.searchsorted(starts, order, side="right") - 1).tolist()
    # cut the order where every shard begun so far is complete: each piece lies within one
    # block, so it holds whole shards, at most k of them
    left = {}
    for s in shard_of:
        if s not in left:
            left[s] = sizes[s]
        left[s] -= 1
        if not any(left.values()):
            assert len(left) <= k
            left = {}
    assert not left


def test_quality_statistic_of_known_orders():
    n = 20_000
    assert shuffle_quality(np.arange(n)) == pytest.approx({"spearman": 1.0, "displacement": 0.0})
    uniform = shuffle_quality(np.random.default_rng(0).permutation(n))
    assert abs(uniform["spearman"]) < 0.03 and abs(uniform["displacement"] - 1) < 0.03
    starts = np.arange(0, n + 1, 100)  # 200 shards of 100
    blocks = shuffle_quality(shard_block_order(starts, seed=1, epoch=0, shards_per_block=4))
    assert abs(blocks["spearman"]) < 0.2 and blocks["displacement"] > 0.8


def test_order_differs_by_epoch_and_refuses_bad_arguments():
    starts = np.array([0, 10, 20, 30])
    a = shard_block_order(starts, seed=3, epoch=0, shards_per_block=2)
    assert not np.array_equal(a, shard_block_order(starts, seed=3, epoch=1, shards_per_block=2))
    with pytest.raises(ConfigError, match="shards_per_block must be >= 1"):
        shard_block_order(starts, seed=3, epoch=0, shards_per_block=0)
    with pytest.raises(ConfigError, match="start at 0"):
        shard_block_order(np.array([1, 5]), seed=3, epoch=0, shards_per_block=1)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_plan_with_blocks_is_one_order_strided_over_ranks(world):
    starts = np.array([0, 7, 7, 19, 30, 41], dtype=np.int64)
    common = dict(
        view=None,
        dataset_length=41,
        seed=9,
        shuffle=True,
        shard_starts=starts,
        shards_per_block=2,
        batch_size=4,
    )
    order = EpochPlan(**common).order(2)
    assert np.array_equal(order, shard_block_order(starts, seed=9, epoch=2, shards_per_block=2))
    got = []
    for rank in range(world):
        plan = EpochPlan(**common, rank=rank, world_size=world)
        got += [i for b in plan.batches(2) for i in b.indices.tolist()]
    assert sorted(set(got)) == list(range(41))
