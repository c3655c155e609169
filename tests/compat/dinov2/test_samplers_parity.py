"""dinov2 parity: the samplers yield dinov2's sequences for the same seed, rank and world size.

Compared against the per-element re-implementations in ``reference.py`` (written from the
behaviour notes) and against short sequences recorded from them as literals.
"""

from __future__ import annotations

import itertools
import warnings

import pytest

from shardstream import EpochSampler, InfiniteSampler, ShardedInfiniteSampler
from shardstream.compat.dinov2._torch_streams import fast_paths_verified

from ...order.samplers.reference import Dinov2Sharded, dinov2_epoch, dinov2_infinite, take


@pytest.fixture(autouse=True)
def _quiet_dropped_sample_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        yield


def test_the_bulk_shuffles_are_verified_on_this_torch():
    assert fast_paths_verified() is True


# --- literals recorded from the reference loops ------------------------------------------------

RECORDED_INFINITE = [
    (
        dict(sample_count=7, seed=0, start=0, step=1),
        [4, 0, 5, 3, 2, 6, 1, 3, 2, 5, 4, 6, 1, 0, 2, 3, 1, 0, 6, 4, 5],
    ),
    (dict(sample_count=10, seed=42, start=1, step=3), [6, 4, 9, 5, 3, 0, 0, 1, 2, 4, 9, 6]),
]

RECORDED_SHARDED = [
    (dict(sample_count=20, seed=5, start=1, step=3), [18, 0, 12, 19, 4, 3, 19, 0, 4, 12, 18, 3]),
    (
        dict(sample_count=20, seed=5, start=0, step=2, use_new_shuffle_tensor_slice=True),
        [9, 8, 16, 5, 14, 19, 11, 3, 4, 1, 19, 4, 16, 9, 1, 3, 8, 14, 11, 5],
    ),
    (dict(sample_count=20, seed=5, start=2, step=4, advance=23), [9, 1, 14, 19, 9, 16, 1]),
]


@pytest.mark.parametrize(("kwargs", "expected"), RECORDED_INFINITE)
def test_infinite_sampler_matches_recorded_sequences(kwargs, expected):
    sampler = InfiniteSampler(shuffle=True, **kwargs)
    assert take(iter(sampler), len(expected)) == expected


@pytest.mark.parametrize(("kwargs", "expected"), RECORDED_SHARDED)
def test_sharded_infinite_sampler_matches_recorded_sequences(kwargs, expected):
    sampler = ShardedInfiniteSampler(shuffle=True, **kwargs)
    assert take(iter(sampler), len(expected)) == expected


def test_epoch_sampler_matches_a_recorded_sequence():
    sampler = EpochSampler(size=12, sample_count=5, shuffle=True, seed=3, start=1, step=2)
    sampler.set_epoch(2)
    assert list(sampler) == [2, 2, 0, 4, 3, 3]


# --- against the per-element reference loops --------------------------------------------------

INFINITE_CASES = [
    dict(sample_count=1, shuffle=True, seed=0, start=0, step=1),
    dict(sample_count=13, shuffle=True, seed=7, start=0, step=1),
    dict(sample_count=13, shuffle=True, seed=7, start=2, step=3),
    dict(sample_count=13, shuffle=True, seed=-5, start=1, step=4, advance=9),
    dict(sample_count=50, shuffle=True, seed=2**40 + 3, start=3, step=5, advance=123),
    dict(sample_count=13, shuffle=False, seed=7, start=2, step=3, advance=5),
    dict(sample_count=2000, shuffle=True, seed=11, start=1, step=2),
]


@pytest.mark.parametrize("kwargs", INFINITE_CASES)
def test_infinite_sampler_equals_the_reference_over_several_passes(kwargs):
    count = 3 * kwargs["sample_count"] + 7
    expected = take(dinov2_infinite(**kwargs), count)
    assert take(iter(InfiniteSampler(**kwargs)), count) == expected


SHARDED_CASES = [
    dict(sample_count=1, shuffle=True, seed=0, start=0, step=1),
    dict(sample_count=20, shuffle=True, seed=3, start=0, step=1),
    dict(sample_count=20, shuffle=True, seed=3, start=2, step=3),
    dict(sample_count=23, shuffle=True, seed=9, start=1, step=4, advance=30),
    dict(sample_count=23, shuffle=True, seed=9, start=1, step=4, advance=5),
    dict(sample_count=23, shuffle=False, seed=9, start=1, step=4, advance=30),
    dict(sample_count=3000, shuffle=True, seed=-2, start=0, step=1),
]


@pytest.mark.parametrize("new", [False, True])
@pytest.mark.parametrize("kwargs", SHARDED_CASES)
def test_sharded_sampler_equals_the_reference_over_several_passes(kwargs, new):
    count = 3 * kwargs["sample_count"] + 5
    reference = Dinov2Sharded(new=new, **kwargs)
    sampler = ShardedInfiniteSampler(use_new_shuffle_tensor_slice=new, **kwargs)
    assert take(iter(sampler), count) == take(iter(reference), count)


@pytest.mark.parametrize("new", [False, True])
def test_sharded_sampler_carries_advance_and_pass_counter_into_new_iterators(new):
    kwargs = dict(sample_count=17, shuffle=True, seed=4, start=1, step=3, advance=40)
    reference = Dinov2Sharded(new=new, **kwargs)
    sampler = ShardedInfiniteSampler(use_new_shuffle_tensor_slice=new, **kwargs)
    for count in (7, 5, 11, 5):  # 5 = one whole pass, left suspended at its end
        assert take(iter(sampler), count) == take(iter(reference), count)
    assert sampler.state_dict()["advance"] == reference.advance == 40 - 2 * 17
    assert sampler.state_dict()["iter_count"] == reference.iter_count


def test_sharded_advance_is_reduced_in_units_of_the_sample_count():
    # advance=23 with 20 samples skips a whole pass (5 items per rank) plus 3 items: 8, not 23
    plain = take(
        iter(ShardedInfiniteSampler(sample_count=20, shuffle=True, seed=5, start=2, step=4)), 30
    )
    advanced = ShardedInfiniteSampler(
        sample_count=20, shuffle=True, seed=5, start=2, step=4, advance=23
    )
    assert take(iter(advanced), 10) == plain[8:18]


def test_sharded_shuffles_repeat_every_256_passes():
    sampler = ShardedInfiniteSampler(sample_count=8, shuffle=True, seed=1, start=0, step=1)
    stream = take(iter(sampler), 8 * 257)
    assert stream[-8:] == stream[:8]  # seed + (256 << 24) == seed + 2**32: same low 32 bits
    assert stream[8:16] != stream[:8]


def test_sharded_sampler_warns_about_dropped_samples_once_per_pass_like_dinov2():
    kwargs = dict(sample_count=10, shuffle=True, seed=3, start=1, step=3, advance=4)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        take(iter(ShardedInfiniteSampler(**kwargs)), 7)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        take(iter(Dinov2Sharded(**kwargs)), 7)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert [str(w.message) for w in ours] == ["# of dropped samples: 1"] * 4


def test_unshuffled_sharded_sampler_drops_nothing():
    sampler = ShardedInfiniteSampler(sample_count=10, start=1, step=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert take(iter(sampler), 8) == [1, 4, 7, 1, 4, 7, 1, 4]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(size=10, sample_count=10, shuffle=True, seed=0, start=0, step=1),
        dict(size=10, sample_count=10, shuffle=True, seed=5, start=1, step=3),
        dict(size=25, sample_count=7, shuffle=True, seed=2, start=2, step=4),
        dict(size=4, sample_count=9, shuffle=False, seed=2, start=0, step=2),
        dict(size=25, sample_count=7, shuffle=False, seed=2, start=1, step=2),
    ],
)
def test_epoch_sampler_equals_the_reference_for_several_epochs(kwargs):
    sampler = EpochSampler(**kwargs)
    for epoch in (0, 1, 2, 5):
        sampler.set_epoch(epoch)
        expected = dinov2_epoch(epoch=epoch, **kwargs)
        assert list(sampler) == expected
        assert len(sampler) == len(expected)


def test_epoch_sampler_seed_times_epoch_quirk():
    def epoch_order(seed, epoch):
        sampler = EpochSampler(size=9, sample_count=9, shuffle=True, seed=seed, start=0, step=1)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_order(3, 0) == epoch_order(8, 0)  # epoch 0: numpy seed 0 for every seed
    assert epoch_order(2, 3) == epoch_order(3, 2)  # 2 * 3 == 3 * 2
    assert epoch_order(0, 4) == epoch_order(1, 4)  # seed 0 uses the epoch alone
    assert epoch_order(2, 3) != epoch_order(2, 4)


def test_infinite_sampler_ranks_share_each_permutation():
    n, world = 11, 3
    per_rank = [len(range(r, n, world)) for r in range(world)]
    streams = [
        take(
            iter(InfiniteSampler(sample_count=n, shuffle=True, seed=8, start=r, step=world)),
            3 * per_rank[r],
        )
        for r in range(world)
    ]
    for p in range(3):
        chunks = [streams[r][p * per_rank[r] : (p + 1) * per_rank[r]] for r in range(world)]
        assert sorted(itertools.chain(*chunks)) == list(range(n))
