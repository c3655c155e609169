"""ShardedReader: global indexing over several shards."""

from __future__ import annotations

import numpy as np
import pytest

from shardstream import MsgpackReader, ShardedReader
from shardstream.errors import DatasetNotFoundError
from tests.conftest import write_samples
from tests.contracts.reader_conformance import assert_samples_equal, run_reader_conformance


@pytest.fixture
def shard_paths(tmp_path, samples):
    bounds = [0, 7, 7, 25, 40]  # includes an empty shard
    paths = []
    for k in range(4):
        path = tmp_path / f"part-{k}.msgpack"
        write_samples(path, samples[bounds[k] : bounds[k + 1]])
        paths.append(path)
    return paths


def test_conformance_from_glob(tmp_path, shard_paths, samples):
    run_reader_conformance(
        lambda: ShardedReader(tmp_path / "part-*.msgpack"), [(s["key"], s) for s in samples]
    )


def test_conformance_from_readers_and_paths(shard_paths, samples):
    run_reader_conformance(
        lambda: ShardedReader([MsgpackReader(shard_paths[0]), *map(str, shard_paths[1:])]),
        [(s["key"], s) for s in samples],
    )


def test_locate_maps_global_to_shard_and_local(shard_paths):
    with ShardedReader(shard_paths) as reader:
        assert reader.starts.tolist() == [0, 7, 7, 25, 40]
        assert reader.locate(0) == (0, 0)
        assert reader.locate(6) == (0, 6)
        assert reader.locate(7) == (2, 0)
        assert reader.locate(24) == (2, 17)
        assert reader.locate(-1) == (3, 14)
        with pytest.raises(IndexError, match="index 40 out of range for length 40 reader"):
            reader.locate(40)


def test_iteration_spans_shards(shard_paths, samples):
    with ShardedReader(shard_paths) as reader:
        got = list(reader.iter(5, 27))
        assert [s["key"] for s in got] == [s["key"] for s in samples[5:27]]
        assert reader.position == 27


def test_getitems_across_shards(shard_paths, samples):
    order = np.random.default_rng(3).integers(0, 40, size=100)
    with ShardedReader(shard_paths) as reader:
        for i, got in zip(order.tolist(), reader.getitems(order, yield_key=True)):
            assert got[0] == samples[i]["key"]
            assert_samples_equal(got[1], samples[i])


def test_duplicate_keys_across_shards_find_first(tmp_path):
    write_samples(tmp_path / "a.msgpack", [{"key": "x", "v": 1}])
    write_samples(tmp_path / "b.msgpack", [{"key": "y"}, {"key": "x", "v": 2}])
    with ShardedReader([tmp_path / "a.msgpack", tmp_path / "b.msgpack"]) as reader:
        assert reader.find_index("x") == 0
        assert reader.find_index("y") == 1
        with pytest.raises(KeyError):
            reader.find_index("z")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="need either msgpack path or Reader instance"):
        ShardedReader([3])
    with pytest.raises(
        DatasetNotFoundError, match="none-\\*\\.msgpack: glob pattern matches no shard"
    ):
        ShardedReader(str(tmp_path / "none-*.msgpack"))
