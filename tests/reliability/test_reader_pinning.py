"""An open reader is pinned to the version it opened: it reads that version or raises, never a mix."""

from __future__ import annotations

import multiprocessing
import pickle
import time
from contextlib import contextmanager

import pytest

from shardstream import FileWriter, MsgpackReader, ShardedReader, ShardedWriter
from shardstream.errors import ShardstreamError

CTX = multiprocessing.get_context("fork")


@contextmanager
def raises_changed(match: str | None = None):
    """Expect ``DatasetChangedError`` (looked up by name: the tests also run on code without it)."""
    with pytest.raises(ShardstreamError, match=match) as info:
        yield info
    assert type(info.value).__name__ == "DatasetChangedError"


def make(prefix: str, n: int = 40) -> list[dict]:
    # same sizes for every prefix of one length: versions the size checks cannot tell apart
    return [{"key": f"{prefix}{i:03d}", "v": prefix * 8, "i": i} for i in range(n)]


def write(path, samples) -> None:
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


def write_sharded(path, samples) -> None:
    with ShardedWriter(path, shard_size=400, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


OLD, NEW = make("old"), make("new")


def test_replaced_set_is_not_mixed_into_an_open_reader(tmp_path):
    """The issue's case: data mapped, then the set replaced, then a key lookup."""
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    reader = MsgpackReader(path)
    assert reader.get(0) == OLD[0]  # offsets loaded, data mapped
    write(path, NEW)
    assert reader.get(10) == OLD[10]  # the mapped version
    with raises_changed(r"d\.msgpack\.key_hashes: replaced since"):
        reader.find_index("new010")
    with raises_changed(r"d\.msgpack\.keys: replaced since"):
        reader.find_key(10)
    with raises_changed():
        reader.verify_data()
    reader.close()
    with raises_changed(r"d\.msgpack: replaced since"):
        reader.get(0)  # the map is gone; the file under the name is another version
    with MsgpackReader(path) as fresh:
        assert fresh.find_index("new010") == 10 and fresh.get(10) == NEW[10]


def test_fully_loaded_reader_keeps_reading_its_version(tmp_path):
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    reader = MsgpackReader(path)
    assert reader.keys[3] == "old003" and "old004" in reader and reader.find_index("old005") == 5
    assert reader.get(0) == OLD[0]
    write(path, NEW)
    assert [reader.get(i) for i in range(len(reader))] == OLD
    assert reader.keys == [s["key"] for s in OLD]
    assert reader.find_index("old039") == 39 and "new001" not in reader
    assert list(reader.iter(0, 3, yield_key=True)) == [(s["key"], s) for s in OLD[:3]]


def test_reader_opened_before_a_replace_raises_rather_than_read_the_new_version(tmp_path):
    path = tmp_path / "d.msgpack"
    write(path, OLD)
    reader = MsgpackReader(path)
    state = pickle.dumps(reader)
    write(path, NEW)
    with raises_changed(r"d\.msgpack\.offsets: replaced since"):
        reader.get(0)
    with raises_changed():
        pickle.loads(state).get(0)  # a worker the reader was sent to checks the same pins


def test_sharded_reader_is_pinned_shard_by_shard(tmp_path):
    path = tmp_path / "s.manifest"
    write_sharded(path, OLD)
    reader = ShardedReader(path)
    assert len(reader.shards) >= 3
    assert reader.get(0) == OLD[0]
    write_sharded(path, NEW)
    assert reader.get(1) == OLD[1]
    with raises_changed(r"s-0000\d\.msgpack(\.offsets)?: replaced"):
        reader.get(len(reader) - 1)  # a shard not loaded yet
    with ShardedReader(path) as fresh:
        assert fresh.get(len(fresh) - 1) == NEW[-1]


def flip(path, seconds: float) -> None:
    """Replace the set again and again with two same-sized versions."""
    end = time.monotonic() + seconds
    versions = [make("aaa", 30), make("bbb", 30)]
    n = 0
    while time.monotonic() < end:
        write(path, versions[n % 2])
        n += 1


def test_readers_opened_during_replacements_see_one_version(tmp_path):
    path = tmp_path / "d.msgpack"
    write(path, make("aaa", 30))
    proc = CTX.Process(target=flip, args=(path, 2.0))
    proc.start()
    whole = changed = 0
    try:
        while proc.is_alive() or whole == 0:
            try:
                with MsgpackReader(path) as reader:
                    keys = reader.keys
                    samples = [reader.get(i) for i in range(len(reader))]
                    prefix = keys[0][:3]
                    assert keys == [f"{prefix}{i:03d}" for i in range(30)]
                    assert samples == make(prefix, 30)
                    assert reader.find_index(keys[7]) == 7
                whole += 1
            except ShardstreamError as e:
                assert type(e).__name__ == "DatasetChangedError", e
                changed += 1
    finally:
        proc.join(30)
    assert proc.exitcode == 0
    assert whole > changed and whole >= 10, (whole, changed)
