"""ShardedWriter: rolling shards, the manifest, atomic replacement of the whole set."""

from __future__ import annotations

import pytest

from shardstream import MsgpackReader, ShardedReader
from shardstream.errors import (
    ConfigError,
    DatasetExistsError,
    DuplicateKeyError,
    InvalidKeyError,
    MissingKeyError,
    ReservedKeyError,
    WriterClosedError,
)
from shardstream.format.codec import packb
from shardstream.format.integrity import md5_file
from shardstream.format.manifest import load_manifest
from shardstream.format.set_offsets import SetOffsets
from shardstream.write.sharded import ShardedWriter, shard_name, sharded_output_paths

SIDECARS = ["", ".filter", ".key_hashes", ".keys", ".md5", ".offsets", ".xxh3"]


def samples(count: int, size: int = 100, prefix: str = "k") -> list[dict]:
    return [{"key": f"{prefix}{i:03d}", "data": bytes([i % 256]) * size} for i in range(count)]


def write_all(output, items, **kwargs) -> ShardedWriter:
    kwargs.setdefault("overwrite", True)
    kwargs.setdefault("disable", True)
    with ShardedWriter(output, **kwargs) as writer:
        for sample in items:
            writer.write(sample)
    return writer


def listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def shard_files(stem: str, count: int) -> list[str]:
    return sorted(shard_name(stem, i) + s for i in range(count) for s in SIDECARS)


def test_shards_roll_before_exceeding_the_size_and_the_manifest_lists_them(tmp_path):
    packed = len(packb(samples(1)[0]))  # every sample packs to the same size
    items = samples(10)
    writer = write_all(tmp_path / "set.msgpack", items, shard_size=3 * packed + 1)
    assert listing(tmp_path) == sorted([*shard_files("set", 4), "set.manifest", "set.set-offsets"])
    manifest = load_manifest(tmp_path / "set.manifest")
    assert [s.path for s in manifest.shards] == [shard_name("set", i) for i in range(4)]
    # every shard's offsets in one file, which the manifest names with its size and md5
    whole = (tmp_path / "set.set-offsets").read_bytes()
    assert whole == b"".join(
        (tmp_path / (shard_name("set", i) + ".offsets")).read_bytes() for i in range(4)
    )
    assert manifest.offsets == SetOffsets(
        "set.set-offsets", len(whole), md5_file(tmp_path / "set.set-offsets")
    )
    assert len(whole) == 8 * (10 + 4)
    assert [s.samples for s in manifest.shards] == [3, 3, 3, 1]
    assert [s.bytes for s in manifest.shards] == [3 * packed, 3 * packed, 3 * packed, packed]
    for shard in manifest.shards:
        assert shard.md5 == md5_file(tmp_path / shard.path)
    assert writer.shard_paths == [tmp_path / shard_name("set", i) for i in range(4)]
    assert writer.written == 10 and writer.bytes_written == 10 * packed
    with ShardedReader(tmp_path / "set.manifest") as reader:
        assert list(reader) == items
    with MsgpackReader(tmp_path / shard_name("set", 1)) as shard:
        assert [s["key"] for s in shard] == ["k003", "k004", "k005"]


def test_a_sample_larger_than_the_shard_size_gets_a_shard_of_its_own(tmp_path):
    items = [*samples(2, 10), {"key": "big", "data": b"x" * 500}, *samples(2, 10, "z")]
    write_all(tmp_path / "s", items, shard_size=100)
    manifest = load_manifest(tmp_path / "s.manifest")
    assert [s.samples for s in manifest.shards] == [2, 1, 2]
    with ShardedReader(tmp_path / "s.manifest") as reader:
        assert [s["key"] for s in reader] == ["k000", "k001", "big", "z000", "z001"]


def test_write_raw_and_write_give_the_same_files(tmp_path):
    items = samples(7)
    write_all(tmp_path / "a" / "x.manifest", items, shard_size=250)
    with ShardedWriter(tmp_path / "b" / "x", shard_size=250, disable=True) as writer:
        for sample in items:
            writer.write_raw(sample["key"], bytearray(packb(sample)))
    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    for name in listing(tmp_path / "a"):
        if not name.endswith(".key_hashes"):  # salted per file
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_output_names():
    for output in ("out/train.msgpack", "out/train.manifest", "out/train"):
        manifest, stem = sharded_output_paths(output)
        assert (str(manifest), stem) == ("out/train.manifest", "train")
    assert shard_name("a", 7) == "a-00007.msgpack"
    assert shard_name("a", 123456) == "a-123456.msgpack"
    with pytest.raises(ConfigError, match="needs a name"):
        sharded_output_paths("out/.msgpack")


def test_empty_dataset_is_one_empty_shard(tmp_path):
    write_all(tmp_path / "e", [], shard_size=10)
    assert [s.samples for s in load_manifest(tmp_path / "e.manifest").shards] == [0]
    with ShardedReader(tmp_path / "e.manifest") as reader:
        assert len(reader) == 0


def test_keys_are_unique_across_shards_and_checked(tmp_path):
    with ShardedWriter(tmp_path / "d", shard_size=50, disable=True) as writer:
        writer.write({"key": "a", "data": b"x" * 60})
        writer.write({"key": "b", "data": b"x" * 60})
        with pytest.raises(DuplicateKeyError, match="duplicate key 'a'"):
            writer.write({"key": "a", "data": b"y"})
        with pytest.raises(MissingKeyError):
            writer.write({"data": b"y"})
        with pytest.raises(InvalidKeyError):
            writer.write_raw(5, b"\x80")
        with pytest.raises(ReservedKeyError):
            writer.write({"key": "c", "nd": 1})
    assert [s.samples for s in load_manifest(tmp_path / "d.manifest").shards] == [1, 1]
    with pytest.raises(WriterClosedError):
        writer.write({"key": "z"})


def test_abort_removes_every_shard_and_keeps_the_previous_set(tmp_path):
    write_all(tmp_path / "set", samples(4), shard_size=250)
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    with (
        pytest.raises(RuntimeError, match="stop"),
        ShardedWriter(tmp_path / "set", shard_size=250, overwrite=True, disable=True) as writer,
    ):
        for sample in samples(9, prefix="n"):
            writer.write(sample)
        raise RuntimeError("stop")
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before


def test_replacing_with_fewer_shards_deletes_the_stale_ones(tmp_path):
    write_all(tmp_path / "set", samples(9), shard_size=250)
    assert len(load_manifest(tmp_path / "set.manifest").shards) == 5
    write_all(tmp_path / "set", samples(3, prefix="n"), shard_size=250)
    assert listing(tmp_path) == sorted([*shard_files("set", 2), "set.manifest", "set.set-offsets"])
    with ShardedReader(tmp_path / "set.manifest") as reader:
        assert [s["key"] for s in reader] == ["n000", "n001", "n002"]


def test_existing_set_is_not_replaced_without_overwrite(tmp_path):
    write_all(tmp_path / "set", samples(2), shard_size=250)
    with pytest.raises(DatasetExistsError, match="set.manifest"):
        ShardedWriter(tmp_path / "set", shard_size=250, disable=True)
    (tmp_path / "set.manifest").unlink()
    with pytest.raises(DatasetExistsError):  # a first shard alone also counts
        ShardedWriter(tmp_path / "set", shard_size=250, disable=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("size", [0, -5, 1.5, True, None])
def test_bad_shard_size(tmp_path, size):
    with pytest.raises(ConfigError, match="shard_size"):
        ShardedWriter(tmp_path / "x", shard_size=size, disable=True)
    assert listing(tmp_path) == []


def test_every_shards_checksum_file_is_committed_with_the_manifest(tmp_path, monkeypatch):
    from tests.write.test_writer import committed_records

    records = committed_records(monkeypatch)
    writer = write_all(tmp_path / "set.msgpack", samples(10), shard_size=3 * 120)
    manifest_records = [r for r in records if "set.manifest" in {e["final"] for e in r["files"]}]
    assert len(manifest_records) == 1
    finals = [entry["final"] for entry in manifest_records[0]["files"]]
    assert len(writer.shard_paths) == 4
    for shard in writer.shard_paths:
        assert f"{shard.name}.xxh3" in finals
        assert finals.index(f"{shard.name}.xxh3") < finals.index(f"{shard.name}.md5")
        with MsgpackReader(shard) as reader:
            assert reader.has_checksums and reader.damaged_samples() == []
