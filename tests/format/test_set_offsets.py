"""The set offsets file: every shard's ``.offsets`` in one, named by the manifest."""

from __future__ import annotations

import hashlib
import json

import pytest

from shardstream import MsgpackReader, ShardedReader, ShardedWriter
from shardstream.errors import CorruptIndexError
from shardstream.format.manifest import ShardEntry, load_manifest, manifest_bytes
from shardstream.format.set_offsets import (
    SetOffsets,
    encode_set_offsets,
    parse_set_offsets_entry,
    set_offsets_path,
    split_set_offsets,
)


def _write(path, count: int, shard_size: int):
    with ShardedWriter(path, shard_size=shard_size, disable=True) as writer:
        for i in range(count):
            writer.write({"key": f"k{i:03d}", "data": b"x" * (10 + i)})
    return load_manifest(path.with_suffix(".manifest"))


def test_the_writer_names_every_shards_offsets_in_one_file(tmp_path):
    manifest = _write(tmp_path / "set.msgpack", 30, shard_size=200)
    assert len(manifest.shards) > 3
    data = (tmp_path / "set.set-offsets").read_bytes()
    assert manifest.offsets == SetOffsets(
        "set.set-offsets", len(data), hashlib.md5(data).hexdigest()
    )
    parts = split_set_offsets(
        "set.set-offsets", data, [s.samples for s in manifest.shards], manifest.offsets
    )
    for shard, part in zip(manifest.shards, parts):
        assert part == (tmp_path / (shard.path + ".offsets")).read_bytes()
        with MsgpackReader(tmp_path / shard.path) as reader:  # each shard as before
            assert part == reader.offsets.astype(">u8").tobytes()
    with ShardedReader(tmp_path / "set.manifest") as reader:
        assert [s["key"] for s in reader] == [f"k{i:03d}" for i in range(30)]


def test_a_manifest_without_the_entry_still_loads(tmp_path):
    manifest = _write(tmp_path / "set.msgpack", 5, shard_size=200)
    document = json.loads((tmp_path / "set.manifest").read_bytes())
    del document["offsets"]
    (tmp_path / "set.manifest").write_text(json.dumps(document))
    assert load_manifest(tmp_path / "set.manifest").offsets is None
    assert load_manifest(tmp_path / "set.manifest").shards == manifest.shards


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ([], "'offsets' is no object"),
        ({"path": "x.set-offsets", "bytes": -1, "md5": "0"}, "field 'bytes' is -1"),
        ({"path": "x.set-offsets", "bytes": 8}, "field 'md5' is None"),
        ({"path": "../x.set-offsets", "bytes": 8, "md5": "0"}, "leaves the manifest's folder"),
        ({"path": "/x.set-offsets", "bytes": 8, "md5": "0"}, "leaves the manifest's folder"),
    ],
)
def test_a_malformed_entry_is_a_corrupt_manifest(tmp_path, entry, problem):
    _write(tmp_path / "set.msgpack", 3, shard_size=200)
    document = json.loads((tmp_path / "set.manifest").read_bytes())
    document["offsets"] = entry
    (tmp_path / "set.manifest").write_text(json.dumps(document))
    with pytest.raises(CorruptIndexError, match=problem):
        load_manifest(tmp_path / "set.manifest")
    assert parse_set_offsets_entry("m", {}) is None


def test_split_checks_size_md5_and_the_manifests_counts():
    parts = [(0).to_bytes(8, "big") + (5).to_bytes(8, "big"), (0).to_bytes(8, "big")]
    data = encode_set_offsets(parts)
    entry = SetOffsets.of("s.set-offsets", data)
    assert split_set_offsets("s", data, [1, 0], entry) == parts
    with pytest.raises(CorruptIndexError, match="differ from the manifest's size and md5"):
        split_set_offsets("s", data[:-8] + (1).to_bytes(8, "big"), [1, 0], entry)
    with pytest.raises(CorruptIndexError, match="the manifest's shards need 32"):
        split_set_offsets("s", data, [2, 0], entry)
    with pytest.raises(ValueError, match="shard 1: an offsets file of 3 bytes"):
        encode_set_offsets([parts[0], b"abc"])


def test_names_and_the_manifest_entry(tmp_path):
    assert set_offsets_path(tmp_path / "train.manifest") == tmp_path / "train.set-offsets"
    entry = SetOffsets.of("train.set-offsets", b"\0" * 8)
    shards = [ShardEntry("train-00000.msgpack", 0, 0, hashlib.md5(b"").hexdigest())]
    document = json.loads(manifest_bytes(tmp_path / "train.manifest", shards, entry))
    assert document["offsets"] == {"path": "train.set-offsets", "bytes": 8, "md5": entry.md5}
    assert "offsets" not in json.loads(manifest_bytes(tmp_path / "train.manifest", shards))
    with pytest.raises(ValueError, match="relative to the manifest"):
        manifest_bytes(tmp_path / "train.manifest", shards, SetOffsets("/a", 8, entry.md5))
