"""make_data_loader: dinov2's sampler choice and DataLoader arguments, real iterations, resume."""

from __future__ import annotations

import contextlib
import itertools
import logging

import pytest
import torch
from torch.utils.data import DistributedSampler as TorchDistributedSampler
from torch.utils.data import SequentialSampler

from shardstream import (
    DistributedSampler,
    EpochSampler,
    InfiniteSampler,
    ShardedInfiniteSampler,
)
from shardstream.compat.dinov2.datasets import PackedDataset
from shardstream.compat.dinov2.loaders import (
    DatasetWithEnumeratedTargets,
    SamplerType,
    make_data_loader,
    make_dataset,
)
from shardstream.errors import ConfigError, UnsupportedOptionError

from ...contracts.dist_harness import process_group_of_one
from ...contracts.stateful import run_save_restore
from ...order.samplers.reference import Dinov2Sharded, dinov2_epoch, dinov2_infinite, take
from .data import NUM_CLASSES, IndexDataset, expected_thumbnail, thumbnail, write_packed

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*pin_memory.*:UserWarning", "ignore:# of dropped samples:UserWarning"
)

N = 10


@pytest.fixture(scope="module")
def packed_path(tmp_path_factory):
    """A packed file of N demo images, labels ``i % NUM_CLASSES``."""
    return write_packed(tmp_path_factory.mktemp("packed") / "train.msgpack", range(N))


def loader_indices(loader, batches):
    """The sample indices of the first ``batches`` batches of a loader over IndexDataset."""
    return [index for batch in itertools.islice(loader, batches) for index in batch.tolist()]


# --- sampler choice ----------------------------------------------------------------------------


def test_default_is_a_shuffled_infinite_sampler_and_dinov2s_loader_arguments():
    collate = torch.utils.data.default_collate
    loader = make_data_loader(
        dataset=IndexDataset(N), batch_size=4, num_workers=0, collate_fn=collate
    )
    sampler = loader.sampler
    assert type(sampler) is InfiniteSampler
    assert sampler.state_dict() == {
        "kind": "InfiniteSampler",
        "sample_count": N,
        "shuffle": True,
        "seed": 0,
        "step": 1,
        "advance": 0,
        "position": 0,
    }
    assert (loader.batch_size, loader.num_workers, loader.drop_last) == (4, 0, True)
    assert loader.pin_memory is True
    assert loader.persistent_workers is False
    assert loader.collate_fn is collate
    assert loader_indices(loader, 5) == take(
        dinov2_infinite(sample_count=N, shuffle=True, seed=0, start=0, step=1), 20
    )
    with pytest.raises(TypeError):
        len(loader)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("new", [False, True])
def test_sharded_infinite_variants(shuffle, new):
    kind = SamplerType.SHARDED_INFINITE_NEW if new else SamplerType.SHARDED_INFINITE
    loader = make_data_loader(
        dataset=IndexDataset(N),
        batch_size=3,
        num_workers=0,
        shuffle=shuffle,
        seed=5,
        sampler_type=kind,
    )
    assert type(loader.sampler) is ShardedInfiniteSampler
    assert loader.sampler.state_dict() == {
        "kind": "ShardedInfiniteSampler",
        "sample_count": N,
        "shuffle": shuffle,
        "seed": 5,
        "step": 1,
        "use_new_shuffle_tensor_slice": new,
        "advance": 0,
        "iter_count": 0,
        "offset": None,
    }
    oracle = Dinov2Sharded(sample_count=N, shuffle=shuffle, seed=5, start=0, step=1, new=new)
    assert loader_indices(loader, 8) == take(iter(oracle), 24)


@pytest.mark.parametrize(("size", "expected_size"), [(-1, N), (0, N), (7, 7), (25, 25)])
def test_epoch_sampler_size(size, expected_size):
    loader = make_data_loader(
        dataset=IndexDataset(N),
        batch_size=2,
        num_workers=0,
        seed=3,
        sampler_type=SamplerType.EPOCH,
        sampler_size=size,
        drop_last=False,
    )
    sampler = loader.sampler
    assert type(sampler) is EpochSampler
    assert sampler.state_dict()["size"] == expected_size
    assert sampler.state_dict()["sample_count"] == N
    assert len(sampler) == expected_size
    assert len(loader) == (expected_size + 1) // 2
    sampler.set_epoch(2)
    expected = dinov2_epoch(
        size=expected_size, sample_count=N, shuffle=True, seed=3, start=0, step=1, epoch=2
    )
    assert loader_indices(loader, len(loader)) == expected


def test_distributed_sampler_is_torchs_with_drop_last_false():
    with process_group_of_one():  # torch's sampler (and so dinov2's) needs one
        loader = make_data_loader(
            dataset=IndexDataset(N),
            batch_size=4,
            num_workers=0,
            seed=9,
            sampler_type=SamplerType.DISTRIBUTED,
            drop_last=False,
        )
    sampler = loader.sampler
    assert type(sampler) is DistributedSampler
    assert isinstance(sampler, TorchDistributedSampler)
    assert (sampler.num_replicas, sampler.rank, sampler.shuffle, sampler.seed) == (1, 0, True, 9)
    assert sampler.drop_last is False
    sampler.set_epoch(1)
    reference = TorchDistributedSampler(
        IndexDataset(N), num_replicas=1, rank=0, shuffle=True, seed=9, drop_last=False
    )
    reference.set_epoch(1)
    assert loader_indices(loader, 3) == list(reference)
    assert len(loader) == 3


def test_no_sampler_type_reads_in_order_and_ignores_shuffle():
    loader = make_data_loader(
        dataset=IndexDataset(N), batch_size=4, num_workers=0, shuffle=True, sampler_type=None
    )
    assert type(loader.sampler) is SequentialSampler
    assert [batch.tolist() for batch in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # drop_last


@pytest.mark.parametrize(
    ("kind", "options", "error", "message"),
    [
        (
            SamplerType.INFINITE,
            {"sampler_size": 5},
            ConfigError,
            "size=5 is invalid for the INFINITE",
        ),
        (SamplerType.SHARDED_INFINITE, {"sampler_size": 1}, ConfigError, "SHARDED_INFINITE"),
        (
            SamplerType.SHARDED_INFINITE_NEW,
            {"sampler_size": 2},
            ConfigError,
            "SHARDED_INFINITE_NEW",
        ),
        (SamplerType.DISTRIBUTED, {"sampler_size": 3}, ConfigError, "DISTRIBUTED"),
        (SamplerType.DISTRIBUTED, {"sampler_advance": 3}, ConfigError, "advance=3 is invalid"),
        (SamplerType.EPOCH, {"sampler_advance": 1}, UnsupportedOptionError, "advance=1 is not"),
        ("EPOCH", {}, ConfigError, "must be a SamplerType or None"),
        (SamplerType.EPOCH, {"batch_size": 0}, ConfigError, "batch_size must be >= 1, got 0"),
        (SamplerType.EPOCH, {"num_workers": -1}, ConfigError, "num_workers must be >= 0"),
        (SamplerType.EPOCH, {"num_workers": 1.5}, ConfigError, "num_workers must be an integer"),
        (SamplerType.EPOCH, {"persistent_workers": True}, ConfigError, "needs num_workers > 0"),
    ],
)
def test_refused_options_raise_what_dinov2_raises(kind, options, error, message):
    arguments = {"batch_size": 2, "num_workers": 0, **options}
    with pytest.raises(error, match=message) as info:
        make_data_loader(dataset=IndexDataset(N), sampler_type=kind, **arguments)
    builtin = NotImplementedError if error is UnsupportedOptionError else ValueError
    assert isinstance(info.value, builtin)


# --- sampler_advance and drop_last -------------------------------------------------------------


@pytest.mark.parametrize("advance", [1, 7, 13])
def test_infinite_advance_skips_the_first_indices(advance):
    loader = make_data_loader(
        dataset=IndexDataset(N), batch_size=2, num_workers=0, seed=4, sampler_advance=advance
    )
    stream = dinov2_infinite(sample_count=N, shuffle=True, seed=4, start=0, step=1)
    assert loader_indices(loader, 6) == take(itertools.islice(stream, advance, None), 12)


@pytest.mark.parametrize("advance", [3, 10, 23])
def test_sharded_advance_reduces_whole_passes_like_dinov2(advance):
    loader = make_data_loader(
        dataset=IndexDataset(N),
        batch_size=2,
        num_workers=0,
        seed=4,
        sampler_type=SamplerType.SHARDED_INFINITE,
        sampler_advance=advance,
    )
    oracle = Dinov2Sharded(sample_count=N, shuffle=True, seed=4, start=0, step=1, advance=advance)
    assert loader_indices(loader, 6) == take(iter(oracle), 12)
    state = loader.sampler.state_dict()
    assert (state["advance"], state["iter_count"]) == (
        advance % N,
        advance // N + (12 + advance % N) // N,
    )


@pytest.mark.parametrize(("drop_last", "sizes"), [(True, [4, 4]), (False, [4, 4, 2])])
def test_drop_last(drop_last, sizes):
    loader = make_data_loader(
        dataset=IndexDataset(N),
        batch_size=4,
        num_workers=0,
        shuffle=False,
        sampler_type=SamplerType.EPOCH,
        drop_last=drop_last,
    )
    batches = [batch.tolist() for batch in loader]
    assert [len(batch) for batch in batches] == sizes
    assert len(loader) == len(sizes)
    assert list(itertools.chain(*batches)) == list(range(sum(sizes)))


# --- real iterations over images ---------------------------------------------------------------


@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterates_packed_images_with_enumerated_targets(packed_path, num_workers):
    dataset = DatasetWithEnumeratedTargets(
        make_dataset(dataset_str=f"Packed:path={packed_path}", transform=thumbnail)
    )
    loader = make_data_loader(
        dataset=dataset,
        batch_size=3,
        num_workers=num_workers,
        seed=11,
        sampler_type=SamplerType.SHARDED_INFINITE,
    )
    expected = take(iter(Dinov2Sharded(sample_count=N, shuffle=True, seed=11, start=0, step=1)), 15)
    seen = []
    for images, (indices, labels) in itertools.islice(loader, 5):
        assert images.shape == (3, 3, 8, 8) and images.dtype == torch.uint8
        assert labels.tolist() == [i % NUM_CLASSES for i in indices.tolist()]
        for image, index in zip(images, indices.tolist()):
            assert torch.equal(image, expected_thumbnail(index))
        seen += indices.tolist()
    assert seen == expected


def test_persistent_workers_run_epochs(packed_path):
    dataset = PackedDataset(path=packed_path, transform=thumbnail)
    loader = make_data_loader(
        dataset=dataset,
        batch_size=4,
        num_workers=2,
        shuffle=False,
        sampler_type=SamplerType.EPOCH,
        persistent_workers=True,
    )
    for _ in range(2):
        labels = [label for _, batch_labels in loader for label in batch_labels.tolist()]
        assert labels == [i % NUM_CLASSES for i in range(8)]


def test_logs_like_dinov2(packed_path, caplog):
    caplog.set_level(logging.INFO, logger="shardstream")
    text = f"Packed:path={packed_path}"
    dataset = make_dataset(dataset_str=text)
    make_data_loader(dataset=dataset, batch_size=4, num_workers=0, sampler_type=SamplerType.EPOCH)
    make_data_loader(dataset=dataset, batch_size=4, num_workers=0)
    messages = [
        r.getMessage() for r in caplog.records if r.name == "shardstream.compat.dinov2.loaders"
    ]
    assert messages == [
        f'using dataset: "{text}"',
        "# of dataset samples: 10",
        "using PyTorch data loader",
        "# of batches: 2",
        "using PyTorch data loader",
        "infinite data loader",
    ]


def test_dinov2_training_call_runs_as_written(packed_path):
    """dinov2's train.py data setup (reference §B.8), adapted only in the import line."""
    from shardstream.compat.dinov2.loaders import SamplerType, make_data_loader, make_dataset

    class cfg:  # noqa: N801 - the config object train.py reads
        class train:  # noqa: N801
            dataset_path = f"Packed:path={packed_path}"
            batch_size_per_gpu = 4
            num_workers = 2

    start_iter = 0
    data_transform = thumbnail

    def collate_fn(samples):
        return torch.stack([image for image, _ in samples]), [target for _, target in samples]

    # setup data loader
    dataset = make_dataset(
        dataset_str=cfg.train.dataset_path,
        transform=data_transform,
        target_transform=lambda _: (),
    )
    # sampler_type = SamplerType.INFINITE
    sampler_type = SamplerType.SHARDED_INFINITE
    data_loader = make_data_loader(
        dataset=dataset,
        batch_size=cfg.train.batch_size_per_gpu,
        num_workers=cfg.train.num_workers,
        shuffle=True,
        seed=start_iter,  # TODO: Fix this -- cfg.train.seed
        sampler_type=sampler_type,
        sampler_advance=0,  # TODO(qas): fix this -- start_iter * cfg.train.batch_size_per_gpu,
        drop_last=True,
        collate_fn=collate_fn,
    )

    order = take(iter(Dinov2Sharded(sample_count=N, shuffle=True, seed=0, start=0, step=1)), 12)
    for step, (images, targets) in enumerate(itertools.islice(data_loader, 3)):
        assert targets == [(), (), (), ()]
        expected = torch.stack([expected_thumbnail(i) for i in order[4 * step : 4 * step + 4]])
        assert torch.equal(images, expected)


# --- resumption --------------------------------------------------------------------------------


class LoaderStage:
    """A loader as a save/restore stage: iterating yields batches, state is the sampler's."""

    def __init__(self, **options) -> None:
        self.loader = make_data_loader(dataset=IndexDataset(N), **options)

    def __iter__(self):
        return (batch.tolist() for batch in self.loader)

    def state_dict(self):
        return self.loader.sampler.state_dict()

    def load_state_dict(self, state):
        self.loader.sampler.load_state_dict(state)


@pytest.mark.parametrize(
    ("kind", "epoch_length"),
    [
        (SamplerType.INFINITE, None),
        (SamplerType.SHARDED_INFINITE, None),
        (SamplerType.SHARDED_INFINITE_NEW, None),
        (SamplerType.EPOCH, 4),
        (SamplerType.DISTRIBUTED, 4),
    ],
)
def test_sampler_state_resumes_the_loader_exactly(kind, epoch_length):
    def make_stage():
        return LoaderStage(batch_size=3, num_workers=0, seed=2, sampler_type=kind, drop_last=False)

    # DISTRIBUTED needs a process group, as in dinov2 (torch's sampler asks it for the rank)
    with process_group_of_one() if kind is SamplerType.DISTRIBUTED else contextlib.nullcontext():
        run_save_restore(make_stage, total=10, epoch_length=epoch_length)


def test_state_after_the_last_full_batch_resumes_into_the_dropped_tail():
    """drop_last: the sampler has not yet handed out the tail, so the resumed pass is empty."""
    options = {
        "batch_size": 3,
        "num_workers": 0,
        "shuffle": False,
        "sampler_type": SamplerType.EPOCH,
    }
    stage = LoaderStage(**options)
    iterator = iter(stage)
    assert [next(iterator) for _ in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    state = stage.state_dict()
    assert state["position"] == 9
    resumed = LoaderStage(**options)
    resumed.load_state_dict(state)
    assert list(resumed) == []  # index 9 alone is dropped
    assert list(resumed) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_with_workers_the_state_is_the_prefetched_batches_ahead():
    """With 2 workers (prefetch_factor 2) the sampler has handed out 4 batches more."""
    options = {"batch_size": 2, "num_workers": 2, "seed": 6, "sampler_type": SamplerType.INFINITE}
    uninterrupted = loader_indices(make_data_loader(dataset=IndexDataset(N), **options), 12)

    loader = make_data_loader(dataset=IndexDataset(N), **options)
    iterator = iter(loader)
    consumed = [next(iterator).tolist() for _ in range(3)]
    state = loader.sampler.state_dict()
    assert state["position"] == (3 + 2 * 2) * 2
    del iterator

    resumed = make_data_loader(dataset=IndexDataset(N), **options)
    resumed.sampler.load_state_dict(state)
    assert list(itertools.chain(*consumed)) == uninterrupted[:6]
    assert loader_indices(resumed, 5) == uninterrupted[14:24]


# --- a real two-rank run -----------------------------------------------------------------------


def test_two_ranks_get_dinov2s_rank_streams():
    """torch.distributed (gloo, 2 processes): every sampler type takes rank and world size."""
    from ...contracts.dist_harness import run_world
    from . import dist_jobs

    n, count = dist_jobs.SAMPLE_COUNT, dist_jobs.BATCH_SIZE * dist_jobs.BATCHES
    results = run_world(2, dist_jobs.loader_job)
    for rank, result in enumerate(results):
        common = {"sample_count": n, "shuffle": True, "seed": 7, "start": rank, "step": 2}
        torch_sampler = TorchDistributedSampler(
            IndexDataset(n), num_replicas=2, rank=rank, shuffle=True, seed=7, drop_last=False
        )
        expected = {
            "INFINITE": take(dinov2_infinite(**common), count),
            "SHARDED_INFINITE": take(iter(Dinov2Sharded(**common)), count),
            "SHARDED_INFINITE_NEW": take(iter(Dinov2Sharded(**common, new=True)), count),
            "EPOCH": dinov2_epoch(size=n, **common, epoch=0),
            "DISTRIBUTED": list(torch_sampler),
        }
        for workers in (0, 2):
            for name, indices in expected.items():
                got = result[f"{name}/{workers}"]
                assert got["placement"] == (rank, 2), (rank, name, workers)
                assert got["indices"] == indices, (rank, name, workers)
    epoch = [r["EPOCH/0"]["indices"] for r in results]
    assert sorted(epoch[0] + epoch[1]) == list(range(n))
