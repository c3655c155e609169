"""GlobalOrderSampler: (seed, epoch) orders, the split by position, pad/drop, elastic resume."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import ConfigError, StateMismatchError
from shardstream.order.samplers import (
    GlobalOrderSampler,
    epoch_order,
    epoch_seed,
    sample_rng,
    sample_seed,
    split_for_worker,
)


def ranks(n, world_size, **kwargs):
    return [
        GlobalOrderSampler(sample_count=n, rank=r, world_size=world_size, **kwargs)
        for r in range(world_size)
    ]


def test_epoch_order_is_a_pcg64_permutation_from_seed_and_epoch():
    expected = np.random.Generator(np.random.PCG64(np.random.SeedSequence([5, 2]))).permutation(50)
    order = epoch_order(sample_count=50, seed=5, epoch=2)
    assert order.dtype == np.int64
    assert order.tolist() == expected.tolist()
    assert epoch_order(sample_count=50, seed=5, epoch=3).tolist() != order.tolist()
    assert epoch_order(sample_count=50, seed=6, epoch=2).tolist() != order.tolist()
    assert epoch_order(sample_count=4, seed=5, epoch=2, shuffle=False).tolist() == [0, 1, 2, 3]


def test_epoch_order_is_a_recorded_sequence():
    assert epoch_order(sample_count=10, seed=0, epoch=0).tolist() == (
        np.random.default_rng(np.random.SeedSequence([0, 0])).permutation(10).tolist()
    )
    assert epoch_order(sample_count=8, seed=1, epoch=1).tolist() == [6, 1, 4, 0, 3, 2, 5, 7]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [1, 7, 12])
def test_ranks_interleave_the_order_and_pad_from_its_start(n, world_size):
    samplers = ranks(n, world_size, seed=3)
    order = samplers[0].order().tolist()
    per_rank = -(-n // world_size)
    padded = (order * (world_size + 1))[: per_rank * world_size]
    streams = [list(s) for s in samplers]
    for r, stream in enumerate(streams):
        assert stream == padded[r::world_size]
        assert len(stream) == len(samplers[r]) == per_rank
    counts = Counter(i for s in streams for i in s)
    assert sorted(counts) == list(range(n))
    assert sorted(i for i, c in counts.items() if c > 1) == sorted(
        set(order[: per_rank * world_size - n])
    )


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [3, 7, 12])
def test_drop_last_cuts_the_end_so_ranks_stay_equal(n, world_size):
    samplers = ranks(n, world_size, seed=3, drop_last=True)
    order = samplers[0].order().tolist()
    per_rank = n // world_size
    streams = [list(s) for s in samplers]
    assert [len(s) for s in streams] == [per_rank] * world_size == [len(s) for s in samplers]
    assert sorted(i for s in streams for i in s) == sorted(order[: per_rank * world_size])


def test_an_exhausted_epoch_moves_to_the_next_and_set_epoch_rules():
    sampler = GlobalOrderSampler(sample_count=6, seed=1)
    first, second = list(sampler), list(sampler)
    assert first == epoch_order(sample_count=6, seed=1, epoch=0).tolist()
    assert second == epoch_order(sample_count=6, seed=1, epoch=1).tolist()
    assert (sampler.epoch, sampler.cursor) == (2, 0)
    sampler.set_epoch(2)  # the current epoch: nothing changes
    iterator = iter(sampler)
    head = [next(iterator), next(iterator)]
    sampler.set_epoch(2)
    assert sampler.cursor == 2
    assert head + list(sampler) == epoch_order(sample_count=6, seed=1, epoch=2).tolist()
    sampler.set_epoch(0)  # another epoch: from its start
    assert list(sampler) == first


def test_state_moves_by_world_size_per_item_and_rolls_over_at_the_end():
    sampler = GlobalOrderSampler(sample_count=10, seed=2, rank=1, world_size=3)
    iterator = iter(sampler)
    assert sampler.state_dict()["cursor"] == 0
    next(iterator)
    assert sampler.state_dict() == {
        "kind": "GlobalOrderSampler",
        "sample_count": 10,
        "shuffle": True,
        "seed": 2,
        "drop_last": False,
        "epoch": 0,
        "cursor": 3,
    }
    rest = list(iterator)
    assert len(rest) == 3
    assert (sampler.state_dict()["epoch"], sampler.state_dict()["cursor"]) == (1, 0)


def elastic_run(n, seed, drop_last, before, after, k):
    """``before`` ranks consume k items each; ``after`` ranks resume and finish the epoch."""
    first = ranks(n, before, seed=seed, drop_last=drop_last)
    iterators = [iter(s) for s in first]
    consumed = [[next(it) for _ in range(k)] for it in iterators]
    states = [s.state_dict() for s in first]
    assert all(state == states[0] for state in states)
    second = ranks(n, after, seed=seed, drop_last=drop_last)
    for sampler in second:
        sampler.load_state_dict(states[0])
    resumed = [list(s) for s in second]
    return first[0].order().tolist(), consumed, resumed, states[0]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    drop_last=st.booleans(),
    sizes=st.sampled_from([(2, 3), (3, 2), (1, 4), (4, 1), (2, 2)]),
    k_frac=st.floats(0, 1),
)
def test_elastic_resume_loses_and_repeats_nothing_within_the_epoch(
    n, seed, drop_last, sizes, k_frac
):
    before, after = sizes
    per_rank = n // before if drop_last else -(-n // before)
    k = int(k_frac * per_rank)
    if k == per_rank:
        k = max(0, k - 1)  # a finished epoch would resume in the next one
    order, consumed, resumed, state = elastic_run(n, seed, drop_last, before, after, k)
    assert state["cursor"] == before * k
    # the global consumption order is the epoch order position by position
    taken = [consumed[r][t] for t in range(k) for r in range(before)]
    taken += [resumed[r][t] for t in range(len(resumed[0])) for r in range(after)]
    assert len({len(s) for s in resumed}) == 1  # equal counts after the resume too
    if drop_last:
        assert taken == order[: len(taken)]
        assert n - len(taken) < after  # at most after - 1 dropped, at the very end
    else:
        assert taken[:n] == order
        assert taken[n:] == [order[p % n] for p in range(n, len(taken))]  # repeats the start
        assert len(taken) - n < after


def test_elastic_2_to_3_and_3_to_2_cover_the_epoch_exactly_once():
    order, consumed, resumed, _ = elastic_run(12, 9, False, 2, 3, 3)
    assert sorted(sum(consumed, []) + sum(resumed, [])) == list(range(12))
    assert resumed == [order[6::3], order[7::3], order[8::3]]
    order, consumed, resumed, _ = elastic_run(12, 9, False, 3, 2, 2)
    assert sorted(sum(consumed, []) + sum(resumed, [])) == list(range(12))
    assert resumed == [order[6::2], order[7::2]]


def test_rank_positions_mark_padding_and_give_sample_seeds():
    sampler = GlobalOrderSampler(sample_count=5, seed=1, rank=2, world_size=3)
    positions, order = sampler.rank_positions(), sampler.order()
    assert positions.dtype == np.int64
    assert positions.tolist() == [2, 5]  # 5 is padding: order[0]
    assert list(sampler) == [order[2], order[0]]


def test_sample_seed_is_the_positionth_child_of_the_epoch_seed():
    child = np.random.SeedSequence([4, 1]).spawn(8)[7]
    ours = sample_seed(4, 1, 7)
    assert ours.entropy == child.entropy and ours.spawn_key == child.spawn_key == (7,)
    assert ours.generate_state(4).tolist() == child.generate_state(4).tolist()
    assert (
        epoch_seed(4, 1).generate_state(2).tolist()
        == np.random.SeedSequence([4, 1]).generate_state(2).tolist()
    )
    a = sample_rng(4, 1, 7).integers(0, 2**32, 3).tolist()
    assert a == sample_rng(4, 1, 7).integers(0, 2**32, 3).tolist()
    assert a != sample_rng(4, 1, 8).integers(0, 2**32, 3).tolist()
    assert a != sample_rng(4, 2, 7).integers(0, 2**32, 3).tolist()
    # position 0's stream is not the epoch order's stream
    assert (
        sample_seed(4, 1, 0).generate_state(4).tolist()
        != epoch_seed(4, 1).generate_state(4).tolist()
    )


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((2**32, 0, 0), "seed"),
        ((0, 2**32, 0), "epoch"),
        ((-1, 0, 0), "seed"),
        ((0, 0, -1), "position"),
    ],
)
def test_seed_derivation_refuses_out_of_range_values(args, name):
    with pytest.raises(ConfigError, match=name):
        sample_seed(*args)


@pytest.mark.parametrize("num_workers", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_split_for_worker_round_robin_rebuilds_the_stream(num_workers, batch_size):
    values = np.arange(100, 123)
    parts = [
        split_for_worker(values, worker_id=w, num_workers=num_workers, batch_size=batch_size)
        for w in range(num_workers)
    ]
    batches = [
        [p[i : i + batch_size].tolist() for i in range(0, len(p), batch_size)] for p in parts
    ]
    merged = []
    for round_ in range(max(len(b) for b in batches)):
        for b in batches:
            if round_ < len(b):
                merged += b[round_]
    assert merged == values.tolist()
    assert split_for_worker(values, worker_id=1, num_workers=2, batch_size=2).tolist()[:4] == [
        102,
        103,
        106,
        107,
    ]


def test_split_for_worker_refuses_a_worker_out_of_range():
    with pytest.raises(ConfigError, match="worker_id=2"):
        split_for_worker(np.arange(4), worker_id=2, num_workers=2)


def test_order_is_read_only_numpy_and_not_pickled():
    sampler = GlobalOrderSampler(sample_count=1000, seed=3)
    order = sampler.order()
    assert order.dtype == np.int64 and not order.flags.writeable
    iterator = iter(sampler)
    [next(iterator) for _ in range(10)]
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone._cache is None
    assert clone.state_dict() == sampler.state_dict()
    assert list(clone) == list(iterator)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": 4}, "seed"),
        ({"sample_count": 11}, "sample_count"),
        ({"drop_last": True}, "drop_last"),
        ({"shuffle": False}, "shuffle"),
        ({"cursor": 10}, "cursor"),
        ({"cursor": -1}, "cursor"),
        ({"epoch": "1"}, "epoch"),
        ({"kind": "EpochSampler"}, "EpochSampler"),
    ],
)
def test_load_state_dict_names_the_mismatching_field(change, field):
    sampler = GlobalOrderSampler(sample_count=10, seed=3)
    state = {**sampler.state_dict(), **change}
    with pytest.raises(StateMismatchError, match=field):
        sampler.load_state_dict(state)
    assert sampler.state_dict()["cursor"] == 0


def test_load_state_dict_refuses_missing_and_unknown_keys():
    sampler = GlobalOrderSampler(sample_count=10)
    state = sampler.state_dict()
    del state["cursor"]
    with pytest.raises(StateMismatchError, match="lacks cursor"):
        sampler.load_state_dict(state)
    with pytest.raises(StateMismatchError, match="unknown keys world_size"):
        sampler.load_state_dict({**sampler.state_dict(), "world_size": 2})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_count": 0}, "sample_count"),
        ({"sample_count": 5, "seed": 2**32}, "seed"),
        ({"sample_count": 5, "seed": -1}, "seed"),
        ({"sample_count": 5, "rank": 2, "world_size": 2}, "rank=2"),
        ({"sample_count": 5, "world_size": 0}, "world_size"),
        ({"sample_count": 5, "shuffle": 1}, "shuffle"),
        ({"sample_count": 5.0}, "sample_count"),
    ],
)
def test_constructor_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GlobalOrderSampler(**kwargs)


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        GlobalOrderSampler(10)  # type: ignore[misc]
