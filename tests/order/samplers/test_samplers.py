"""SamplerType, the factory, torch/helios parity, set_epoch and argument/state validation."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DistributedSampler as TorchDistributedSampler
from torch.utils.data import Sampler

from shardstream import (
    DistributedSampler,
    EpochSampler,
    GlobalOrderSampler,
    InfiniteSampler,
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSampler,
    ResumableSamplerType,
    ResumableSequentialSampler,
    SamplerType,
    ShardedInfiniteSampler,
    make_sampler,
)
from shardstream.errors import (
    ConfigError,
    NoProcessGroupError,
    StateMismatchError,
    UnsupportedOptionError,
)

from ...contracts.dist_harness import process_group_of_one
from .reference import helios_distributed, helios_random, take

ROOT = Path(__file__).resolve().parents[3]


def test_sampler_type_has_dinov2s_members_and_values():
    assert [(m.name, m.value) for m in SamplerType] == [
        ("DISTRIBUTED", 0),
        ("EPOCH", 1),
        ("INFINITE", 2),
        ("SHARDED_INFINITE", 3),
        ("SHARDED_INFINITE_NEW", 4),
    ]


def test_make_sampler_builds_dinov2s_choices():
    data = range(10)
    assert make_sampler(dataset=data, type=None, shuffle=True) is None
    infinite = make_sampler(
        dataset=data, type=SamplerType.INFINITE, shuffle=True, seed=3, advance=2
    )
    assert isinstance(infinite, InfiniteSampler)
    assert take(iter(infinite), 5) == take(
        iter(InfiniteSampler(sample_count=10, shuffle=True, seed=3, advance=2)), 5
    )
    for kind, new in (
        (SamplerType.SHARDED_INFINITE, False),
        (SamplerType.SHARDED_INFINITE_NEW, True),
    ):
        sharded = make_sampler(dataset=data, type=kind, shuffle=True, seed=3)
        assert sharded.state_dict()["use_new_shuffle_tensor_slice"] is new
    epoch = make_sampler(dataset=data, type=SamplerType.EPOCH, shuffle=True, size=-1)
    assert len(epoch) == 10 and epoch.state_dict()["size"] == 10
    assert len(make_sampler(dataset=data, type=SamplerType.EPOCH, size=25)) == 25
    with process_group_of_one():  # DISTRIBUTED needs one, as in dinov2
        distributed = make_sampler(dataset=data, type=SamplerType.DISTRIBUTED, shuffle=True, seed=2)
    assert isinstance(distributed, DistributedSampler) and distributed.drop_last is False
    assert list(distributed) == list(TorchDistributedSampler(data, num_replicas=1, rank=0, seed=2))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"type": SamplerType.INFINITE, "size": 5}, ConfigError, "size=5"),
        ({"type": SamplerType.SHARDED_INFINITE_NEW, "size": 1}, ConfigError, "size=1"),
        ({"type": SamplerType.DISTRIBUTED, "size": 3}, ConfigError, "size=3"),
        ({"type": SamplerType.DISTRIBUTED, "advance": 3}, ConfigError, "advance=3"),
        ({"type": SamplerType.EPOCH, "advance": 1}, UnsupportedOptionError, "advance=1"),
        ({"type": 2}, ConfigError, "SamplerType"),
    ],
)
def test_make_sampler_refuses_what_dinov2_refuses(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_sampler(dataset=range(4), **kwargs)


def test_errors_keep_dinov2s_builtin_types():
    with pytest.raises(ValueError):
        make_sampler(dataset=range(4), type=SamplerType.INFINITE, size=2)
    with pytest.raises(NotImplementedError):
        make_sampler(dataset=range(4), type=SamplerType.EPOCH, advance=2)


def test_every_sampler_is_a_torch_sampler():
    for sampler in (
        EpochSampler(size=3, sample_count=3),
        InfiniteSampler(sample_count=3),
        ShardedInfiniteSampler(sample_count=3),
        DistributedSampler(range(3), num_replicas=1, rank=0),
        ResumableRandomSampler(range(3)),
    ):
        assert isinstance(sampler, Sampler)
    assert isinstance(ResumableSequentialSampler(range(3)), ResumableSamplerType)
    resumable = ResumableDistributedSampler(range(3), num_replicas=1, rank=0)
    assert isinstance(resumable, ResumableSamplerType)
    assert isinstance(resumable, TorchDistributedSampler)


def test_infinite_samplers_have_no_len():
    with pytest.raises(TypeError):
        len(InfiniteSampler(sample_count=3))
    with pytest.raises(TypeError):
        len(ShardedInfiniteSampler(sample_count=3))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 30),
    num_replicas=st.integers(1, 5),
    rank_frac=st.floats(0, 0.999),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 5),
    drop_last=st.booleans(),
)
def test_distributed_sampler_equals_torchs(
    n, num_replicas, rank_frac, shuffle, seed, epoch, drop_last
):
    rank = int(rank_frac * num_replicas)
    ours = DistributedSampler(range(n), num_replicas, rank, shuffle, seed, drop_last)
    theirs = TorchDistributedSampler(range(n), num_replicas, rank, shuffle, seed, drop_last)
    ours.set_epoch(epoch)
    theirs.set_epoch(epoch)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    num_replicas=st.integers(1, 4),
    rank_frac=st.floats(0, 0.999),
    seed=st.integers(0, 100),
    epoch=st.integers(0, 3),
    drop_last=st.booleans(),
    batch_size=st.integers(1, 4),
    start_iter=st.integers(0, 5),
)
def test_helios_samplers_equal_the_reference(
    n, num_replicas, rank_frac, seed, epoch, drop_last, batch_size, start_iter
):
    rank = int(rank_frac * num_replicas)
    random = ResumableRandomSampler(range(n), seed=seed, batch_size=batch_size)
    random.start_iter = start_iter
    random.set_epoch(epoch)
    assert list(random) == helios_random(
        n=n, seed=seed, epoch=epoch, batch_size=batch_size, start_iter=start_iter
    )
    assert len(random) == n
    sequential = ResumableSequentialSampler(range(n), batch_size=batch_size)
    sequential.start_iter = start_iter
    sequential.set_epoch(epoch)
    assert list(sequential) == list(range(n))[start_iter * batch_size :]
    distributed = ResumableDistributedSampler(
        range(n), num_replicas, rank, True, seed, drop_last, batch_size
    )
    distributed.start_iter = start_iter
    distributed.set_epoch(epoch)
    assert list(distributed) == helios_distributed(
        n=n,
        num_replicas=num_replicas,
        rank=rank,
        shuffle=True,
        seed=seed,
        epoch=epoch,
        drop_last=drop_last,
        batch_size=batch_size,
        start_iter=start_iter,
    )


def test_helios_start_iter_applies_to_every_later_epoch():
    sampler = ResumableRandomSampler(range(6), seed=1, batch_size=2)
    sampler.start_iter = 1
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        assert list(sampler) == helios_random(n=6, seed=1, epoch=epoch, batch_size=2, start_iter=1)


def test_helios_seed_is_seed_plus_epoch():
    a = ResumableRandomSampler(range(9), seed=0)
    a.set_epoch(1)
    b = ResumableRandomSampler(range(9), seed=1)
    assert list(a) == list(b)


def test_helios_state_records_positions_inside_a_batch():
    sampler = ResumableRandomSampler(range(9), seed=2, batch_size=4)
    sampler.set_epoch(3)
    iterator = iter(sampler)
    head = [next(iterator) for _ in range(5)]
    state = sampler.state_dict()
    assert state == {
        "kind": "ResumableRandomSampler",
        "batch_size": 4,
        "sample_count": 9,
        "seed": 2,
        "epoch": 3,
        "start_iter": 0,
        "position": 5,
    }
    restored = ResumableRandomSampler(range(9), seed=2, batch_size=4)
    restored.load_state_dict(state)
    restored.set_epoch(3)  # helios' loop sets the epoch again: the position stays
    assert head + list(restored) == helios_random(n=9, seed=2, epoch=3, batch_size=4, start_iter=0)
    restored.set_epoch(4)  # the next epoch starts at its beginning
    assert list(restored) == helios_random(n=9, seed=2, epoch=4, batch_size=4, start_iter=0)


def test_a_custom_resumable_sampler_only_needs_epoch_indices():
    class Reversed(ResumableSampler):
        def __len__(self):
            return 5

        def epoch_indices(self):
            return list(range(4, -1, -1))

    sampler = Reversed(batch_size=2)
    sampler.start_iter = 1
    assert list(sampler) == [2, 1, 0]
    with pytest.raises(NotImplementedError):
        list(ResumableSampler(batch_size=1))


def test_epoch_sampler_set_epoch_keeps_a_restored_position_only_for_the_same_epoch():
    sampler = EpochSampler(size=8, sample_count=8, shuffle=True, seed=2, start=0, step=1)
    sampler.set_epoch(1)
    full = list(sampler)
    restored = EpochSampler(size=8, sample_count=8, shuffle=True, seed=2, start=0, step=1)
    restored.load_state_dict({**sampler.state_dict(), "position": 3})
    restored.set_epoch(1)
    assert list(restored) == full[3:]
    assert list(restored) == full  # a later iterator starts the epoch over, as in torch
    restored.load_state_dict({**sampler.state_dict(), "position": 3})
    restored.set_epoch(2)
    assert len(list(restored)) == 8 and restored.state_dict()["epoch"] == 2


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: EpochSampler(size=0, sample_count=3), "size"),
        (lambda: EpochSampler(size=3, sample_count=0), "sample_count"),
        (lambda: EpochSampler(size=3, sample_count=3, seed=-1), "seed"),
        (lambda: EpochSampler(size=3, sample_count=3, start=2, step=2), "start=2"),
        (lambda: EpochSampler(size=3, sample_count=3, step=0), "step"),
        (lambda: EpochSampler(size=3, sample_count=3, shuffle="yes"), "shuffle"),
        (lambda: InfiniteSampler(sample_count=3, seed=2**64), "seed"),
        (lambda: InfiniteSampler(sample_count=3, advance=-1), "advance"),
        (lambda: InfiniteSampler(sample_count=2, start=2, step=3), "no samples"),
        (
            lambda: ShardedInfiniteSampler(sample_count=2, shuffle=True, start=0, step=3),
            "smaller than step",
        ),
        (lambda: ShardedInfiniteSampler(sample_count=2, start=2, step=3), "no samples"),
        (lambda: DistributedSampler(range(3), num_replicas=2, rank=2), "rank=2"),
        (lambda: DistributedSampler(iter(range(3)), num_replicas=1, rank=0), "length"),
        (lambda: ResumableRandomSampler(range(3), batch_size=0), "batch_size"),
        (lambda: ResumableDistributedSampler(range(3), 1, 0, batch_size=0), "batch_size"),
    ],
)
def test_constructors_refuse_bad_arguments_with_config_error(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()


def test_dinov2_samplers_are_keyword_only():
    with pytest.raises(TypeError):
        InfiniteSampler(3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        EpochSampler(3, 3)  # type: ignore[misc]


def test_set_epoch_and_start_iter_refuse_negative_values():
    with pytest.raises(ConfigError, match="epoch"):
        EpochSampler(size=3, sample_count=3).set_epoch(-1)
    with pytest.raises(ConfigError, match="start_iter"):
        ResumableRandomSampler(range(3)).start_iter = -2


@pytest.mark.parametrize(
    ("sampler", "change", "field"),
    [
        (lambda: EpochSampler(size=4, sample_count=4, seed=1), {"seed": 2}, "seed"),
        (lambda: EpochSampler(size=4, sample_count=4, step=2), {"step": 3}, "step"),
        (lambda: EpochSampler(size=4, sample_count=4), {"position": 5}, "position"),
        (lambda: InfiniteSampler(sample_count=4), {"sample_count": 5}, "sample_count"),
        (lambda: InfiniteSampler(sample_count=4), {"position": -1}, "position"),
        (
            lambda: ShardedInfiniteSampler(sample_count=4, shuffle=True),
            {"use_new_shuffle_tensor_slice": True},
            "use_new",
        ),
        (lambda: ShardedInfiniteSampler(sample_count=4, shuffle=True), {"offset": 5}, "offset"),
        (lambda: DistributedSampler(range(4), 2, 0), {"num_replicas": 3}, "num_replicas"),
        (
            lambda: DistributedSampler(range(4), 2, 0),
            {"kind": "InfiniteSampler"},
            "InfiniteSampler",
        ),
        (lambda: ResumableDistributedSampler(range(4), 2, 0), {"start_iter": -1}, "start_iter"),
        (lambda: ResumableRandomSampler(range(4), seed=3), {"batch_size": 2}, "batch_size"),
        (lambda: ResumableSequentialSampler(range(4)), {"epoch": 1.5}, "epoch"),
    ],
)
def test_load_state_dict_names_the_mismatching_field_and_changes_nothing(sampler, change, field):
    target = sampler()
    before = target.state_dict()
    with pytest.raises(StateMismatchError, match=field):
        target.load_state_dict({**before, **change})
    assert target.state_dict() == before


def test_a_state_of_one_sampler_kind_does_not_load_into_another():
    state = ResumableRandomSampler(range(4)).state_dict()
    with pytest.raises(StateMismatchError, match="ResumableRandomSampler"):
        ResumableSequentialSampler(range(4)).load_state_dict(state)


def test_sharded_state_before_any_iterator_starts_fresh_with_advance():
    sampler = ShardedInfiniteSampler(
        sample_count=10, shuffle=True, seed=1, start=0, step=2, advance=13
    )
    state = sampler.state_dict()
    assert (state["advance"], state["iter_count"], state["offset"]) == (13, 0, None)
    restored = ShardedInfiniteSampler(sample_count=10, shuffle=True, seed=1, start=0, step=2)
    restored.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 10 % 2 == 0: nothing dropped, no warning
        assert take(iter(restored), 9) == take(iter(sampler), 9)


def test_rank_and_world_size_come_from_the_process_group():
    with process_group_of_one():
        sampler = DistributedSampler(range(5))
    assert (sampler.rank, sampler.num_replicas) == (0, 1)
    # dinov2's own samplers take rank 0 of 1 without a group; the distributed one refuses
    assert len(EpochSampler(size=5, sample_count=5)) == 5
    with pytest.raises(NoProcessGroupError):
        DistributedSampler(range(5))


def test_the_numpy_only_names_do_not_import_torch():
    code = (
        "import sys; from shardstream import GlobalOrderSampler, SamplerType, sample_seed;"
        "list(GlobalOrderSampler(sample_count=3)); assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


RANKED = [
    lambda r: EpochSampler(size=10, sample_count=10, shuffle=True, seed=1, start=r, step=3),
    lambda r: InfiniteSampler(sample_count=10, shuffle=True, seed=1, start=r, step=3),
    lambda r: InfiniteSampler(sample_count=10, start=r, step=3, advance=2),
    lambda r: ShardedInfiniteSampler(sample_count=10, shuffle=True, seed=1, start=r, step=3),
    lambda r: ShardedInfiniteSampler(sample_count=10, start=r, step=3, advance=2),
    lambda r: DistributedSampler(range(10), 3, r, seed=1),
    lambda r: GlobalOrderSampler(sample_count=10, seed=1, rank=r, world_size=3),
]


@pytest.mark.parametrize("make", RANKED)
def test_states_of_a_lock_step_run_fit_every_rank(make):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="# of dropped samples")
        streams = [take(iter(make(r)), 8) for r in range(3)]
        samplers = [make(r) for r in range(3)]
        iterators = [iter(s) for s in samplers]
        for iterator in iterators:
            take(iterator, 2)  # every rank consumes the same count
        states = [s.state_dict() for s in samplers]
        assert states[0] == states[1] == states[2]
        for r in range(3):
            restored = make(r)
            restored.load_state_dict(states[0])
            assert take(iter(restored), 6) == streams[r][2:8]
