"""Dataset and IterableDataset in real DataLoaders, against datadings 3.4.7 as the oracle.

Ranks are posed by setting ``rank`` / ``world_size`` (public attributes in datadings too) on
both implementations; real ``torch.distributed`` runs are in ``test_distributed.py``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from datadings.reader import ListReader as DatadingsListReader
from datadings.reader import MsgpackReader as DatadingsMsgpackReader
from datadings.torch import Dataset as DatadingsDataset
from datadings.torch import IterableDataset as DatadingsIterableDataset
from torch.utils.data import DataLoader

from shardstream import ListReader, MsgpackReader
from shardstream.compat.datadings.shards import shard_bounds
from shardstream.compat.datadings.torch_data import Compose, Dataset, IterableDataset
from shardstream.errors import ConfigError, MissingFieldError, UnevenShardsError
from shardstream.order.samplers import GlobalOrderSampler

from ....order.readers import LoggingReader
from .common import first_error, make_loader, numbered_dataset, run_epochs, write_numbered


def rng(sample):
    """Deterministic parameters derived from the sample (the same for both implementations)."""
    return {"number": sample["i"] % 5, "value": 3}


def add(v, number):
    return v + number


def sub(x, value):
    return x - value


TRANSFORMS = {"i": Compose(add, sub), "j": Compose(add)}


def samples(n):
    return [{"key": f"k{i}", "i": i, "j": 10 * i} for i in range(n)]


def test_dataset_applies_dict_transforms_with_rng_like_datadings():
    ours = Dataset(ListReader(samples(9)), transforms=TRANSFORMS, rng=rng)
    theirs = DatadingsDataset(DatadingsListReader(samples(9)), transforms=TRANSFORMS, rng=rng)
    assert len(ours) == len(theirs) == 9
    for i in range(9):
        expected = {
            "key": f"k{i}",
            "i": i + i % 5 - 3,
            "j": 10 * i + i % 5,
            "__params__": {"number": i % 5, "value": 3},
        }
        assert ours[i] == theirs[i] == expected
    assert ours.__getitems__([4, 0, 4]) == [ours[4], ours[0], ours[4]]


def test_dataset_transform_forms():
    reader = ListReader(samples(4))
    assert Dataset(reader)[2] == {"key": "k2", "i": 2, "j": 20}  # no transforms: as read
    whole = Dataset(reader, transforms=lambda s: (s["key"], s["j"]))
    assert [whole[i] for i in range(4)] == [("k0", 0), ("k1", 10), ("k2", 20), ("k3", 30)]
    plain = Dataset(reader, transforms={"j": Compose(lambda v: -v)})  # no rng: no params
    assert plain[3] == {"key": "k3", "i": 3, "j": -30, "__params__": {}}
    over_datadings = Dataset(DatadingsListReader(samples(4)), transforms=TRANSFORMS, rng=rng)
    assert over_datadings.__getitems__([1, 2]) == [over_datadings[1], over_datadings[2]]
    with pytest.raises(IndexError):
        Dataset(reader)[4]


def test_dataset_argument_and_field_errors():
    reader = ListReader(samples(3))
    with pytest.raises(MissingFieldError) as info:
        Dataset(reader, transforms={"image": Compose(add)}, rng=rng)[1]
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "transforms has an entry for the field 'image', but sample 'k1' has only the fields "
        "['__params__', 'i', 'j', 'key']"
    )
    with pytest.raises(ConfigError, match=r"transforms\['i'\] must be callable"):
        Dataset(reader, transforms={"i": 3})
    with pytest.raises(ConfigError, match="transforms must be None, a callable"):
        Dataset(reader, transforms=[add])
    with pytest.raises(ConfigError, match="rng must be callable"):
        Dataset(reader, rng={"number": 1})
    with pytest.raises(ConfigError, match="reader must be a Reader"):
        Dataset([1, 2, 3])
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        IterableDataset(reader, batch_size=0)
    with pytest.raises(ConfigError, match="epoch must be >= 0"):
        IterableDataset(reader, epoch=-1)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataset_with_global_order_sampler_in_a_loader(tmp_path, num_workers):
    path = write_numbered(tmp_path / "n.msgpack", 21)
    dataset = Dataset(
        MsgpackReader(path), transforms={"i": Compose(add)}, rng=lambda s: {"number": 100}
    )
    sampler = GlobalOrderSampler(sample_count=21, seed=3)
    loader = DataLoader(
        dataset,
        sampler=sampler,
        batch_size=4,
        num_workers=num_workers,
        multiprocessing_context="fork" if num_workers else None,
    )
    for epoch in range(2):
        sampler.set_epoch(epoch)
        order = sampler.order().tolist()
        batches = list(loader)
        assert [b["i"].tolist() for b in batches] == [
            [i + 100 for i in order[j : j + 4]] for j in range(0, 21, 4)
        ]
        assert sum((b["key"] for b in batches), []) == [f"{i:05d}" for i in order]


def datadings_epochs(path, *, rank, world_size, num_workers, batch_size, epochs, **kwargs):
    dataset = DatadingsIterableDataset(DatadingsMsgpackReader(path), **kwargs)
    dataset.rank, dataset.world_size = rank, world_size
    return run_epochs(make_loader(dataset, num_workers=num_workers, batch_size=batch_size), epochs)


@pytest.mark.parametrize("n", [13, 24])
def test_iterable_dataset_batches_equal_datadings_for_ranks_and_workers(tmp_path, n):
    path = write_numbered(tmp_path / "n.msgpack", n)
    for world_size, num_workers in itertools.product((1, 2, 3), (0, 2)):
        covered = [[] for _ in range(3)]
        for rank in range(world_size):
            ours = run_epochs(
                make_loader(
                    numbered_dataset(path, rank=rank, world_size=world_size),
                    num_workers=num_workers,
                    batch_size=2,
                ),
                3,
            )
            theirs = datadings_epochs(
                path,
                rank=rank,
                world_size=world_size,
                num_workers=num_workers,
                batch_size=2,
                epochs=3,
            )
            assert ours == theirs, (n, world_size, num_workers, rank)
            for epoch in range(3):
                covered[epoch] += sum(ours[epoch], [])
        for epoch in range(3):  # each epoch: every sample exactly once across ranks and workers
            assert sorted(covered[epoch]) == list(range(n)), (world_size, num_workers, epoch)


def test_three_workers_and_transforms_equal_datadings(tmp_path):
    path = write_numbered(tmp_path / "n.msgpack", 25)
    kwargs = dict(transforms={"i": Compose(add)}, rng=lambda s: {"number": 1000})
    ours = numbered_dataset(path, **kwargs)
    got = run_epochs(make_loader(ours, num_workers=3, batch_size=3), 4)
    expected = datadings_epochs(
        path, rank=0, world_size=1, num_workers=3, batch_size=3, epochs=4, **kwargs
    )
    assert got == expected
    assert sorted(sum(got[0], [])) == [1000 + i for i in range(25)]


def worker_shards(batches, num_workers, batch_size):
    """Split one epoch's batches back into the streams of the workers (round robin)."""
    streams = [[] for _ in range(num_workers)]
    for j, batch in enumerate(batches):
        streams[j % num_workers] += batch
    return streams


def test_epochs_rotate_shards_with_persistent_workers(tmp_path):
    n, workers = 24, 2
    path = write_numbered(tmp_path / "n.msgpack", n)
    for world_size in (1, 2, 3):
        num_shards = world_size * workers
        for rank in range(world_size):
            dataset = numbered_dataset(path, rank=rank, world_size=world_size)
            epochs = run_epochs(make_loader(dataset, num_workers=workers, batch_size=2), 4)
            assert dataset.epoch == 0  # workers iterate copies; this object does not move
            for epoch, batches in enumerate(epochs):
                for worker, stream in enumerate(worker_shards(batches, workers, 2)):
                    index = ((rank + epoch) * workers + worker) % num_shards
                    assert stream == list(range(*shard_bounds(n, num_shards, index)))


def test_without_persistent_workers_every_epoch_repeats_unless_set_epoch(tmp_path):
    path = write_numbered(tmp_path / "n.msgpack", 12)
    dataset = numbered_dataset(path, rank=1, world_size=2)
    loader = make_loader(dataset, num_workers=2, batch_size=2, persistent=False)
    first, second = run_epochs(loader, 2)
    assert first == second == [[6, 7], [9, 10], [8], [11]]  # datadings: shards never rotate
    dataset.set_epoch(1)
    assert run_epochs(loader, 1)[0] == [[0, 1], [3, 4], [2], [5]]  # rank 1, epoch 1 = shards 0, 1


def test_main_process_iteration_counts_epochs_lazily(tmp_path):
    path = write_numbered(tmp_path / "n.msgpack", 10)
    dataset = numbered_dataset(path, rank=1, world_size=2, epoch=3)
    assert len(dataset) == 5 and dataset.shard() == (0, 5)  # (1 + 3) % 2 = shard 0
    iterator = iter(dataset)
    assert dataset.epoch == 3  # as datadings: the epoch moves on the first next()
    assert next(iterator)["i"] == 0 and dataset.epoch == 4
    assert [s["i"] for s in iterator] == [1, 2, 3, 4]
    assert [s["i"] for s in dataset] == [5, 6, 7, 8, 9]
    loader = make_loader(dataset, num_workers=0, batch_size=4)
    assert run_epochs(loader, 2) == [[[0, 1, 2, 3], [4]], [[5, 6, 7, 8], [9]]]
    assert dataset.epoch == 7


def test_empty_reader_and_more_shards_than_samples(tmp_path):
    empty = IterableDataset(ListReader([]))
    assert list(empty) == [] and empty.epoch == 1 and len(empty) == 0
    path = write_numbered(tmp_path / "n.msgpack", 3)
    dataset = numbered_dataset(path)
    loader = make_loader(dataset, num_workers=2, batch_size=None)  # shards [0, 2) and [2, 3)
    assert run_epochs(loader, 1) == [[[0], [2], [1]]]
    tiny = numbered_dataset(path, rank=2, world_size=4)  # shard_len 0.75: rank 2 gets [2, 2)
    assert list(tiny) == [] and [s["i"] for s in tiny] == [2]  # epoch 1: shard 3 = [2, 3)


def test_uneven_shards_raise_datadings_runtime_error(tmp_path):
    path = write_numbered(tmp_path / "n.msgpack", 13)
    dataset = numbered_dataset(path, batch_size=2)
    assert len(dataset) == 13  # 13 % 2 = 1: fine with one worker
    error = first_error(make_loader(dataset, num_workers=2, batch_size=2))  # 13 / 2 % 2 = 0.5
    assert isinstance(error, UnevenShardsError) and isinstance(error, RuntimeError)
    assert "len(shard) % batch_size = 0.5 for 13 samples in 2 shards" in str(error)
    dataset.world_size = 6
    with pytest.raises(UnevenShardsError, match="change num_workers, batch_size, or world_size"):
        len(dataset)
    oracle = DatadingsIterableDataset(DatadingsMsgpackReader(path), batch_size=2)
    oracle.world_size = 6
    with pytest.raises(RuntimeError, match=r"len\(shard\) % batch_size = 0\.16666"):
        len(oracle)


def test_worker_shards_are_read_in_blocks_with_the_reader_released_between_them(tmp_path):
    path = write_numbered(tmp_path / "n.msgpack", 50)
    reader = MsgpackReader(path)
    sizes = np.diff(reader.offsets)
    dataset = IterableDataset(reader)
    dataset.release_bytes = int(sizes[:7].sum())  # about 7 samples per block
    blocks = list(dataset._blocks(3, 50))
    assert blocks[0] == (3, 10) and blocks[-1][1] == 50
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    dataset.release_bytes = 1  # smaller than a sample: one sample per block
    assert list(dataset._blocks(0, 3)) == [(0, 1), (1, 2), (2, 3)]
    listed = IterableDataset(ListReader(samples(10)))  # no offsets: blocks of samples
    listed.release_samples = 4
    assert list(listed._blocks(1, 10)) == [(1, 5), (5, 9), (9, 10)]
    for ours, theirs in ((dataset, DatadingsMsgpackReader(path)), (listed, None)):
        got = run_epochs(make_loader(ours, num_workers=2, batch_size=3), 2)
        if theirs is not None:  # released blocks do not change what the workers yield
            oracle = DatadingsIterableDataset(theirs)
            assert got == run_epochs(make_loader(oracle, num_workers=2, batch_size=3), 2)
        else:
            assert sorted(sum(got[0], [])) == list(range(10))
    logging = LoggingReader(samples(10))
    in_main = IterableDataset(logging)
    in_main.release_samples = 4
    assert [s["i"] for s in in_main] == list(range(10))
    assert logging.slices == [(0, 10)] and logging.closed == 1  # main process: one block
