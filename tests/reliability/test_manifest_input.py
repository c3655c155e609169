"""Hostile manifests and index files raise typed errors naming the file; verify checks entries."""

from __future__ import annotations

import json
import os

import msgpack
import pytest

from shardstream import FileWriter, MsgpackReader, ShardedReader, ShardedWriter
from shardstream.cli import main as cli_main
from shardstream.errors import CorruptIndexError
from shardstream.format.manifest import load_manifest


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "s.manifest"
    with ShardedWriter(path, shard_size=200, disable=True) as writer:
        for i in range(30):
            writer.write({"key": f"k{i:02d}", "v": "x" * 20})
    assert len(json.loads(path.read_text())["shards"]) >= 3
    return path


def samples_field(value: str) -> str:
    return (
        '{"format": "shardstream.manifest", "version": 1, "samples": ' + value + ', "shards": []}'
    )


HOSTILE = {
    "Infinity": (samples_field("Infinity"), "holds Infinity"),
    "NaN": (samples_field("NaN"), "holds NaN"),
    "1e400": (samples_field("1e400"), "holds the number 1e400, out of range"),
    "huge int": (samples_field("1" + "0" * 5000), "integer of 5001 digits"),
    "deep": ('{"format": "shardstream.manifest", "shards": ' + "[" * 100000, "nested too deep"),
    "bool count": (samples_field("true"), "'samples' is True, not a count"),
    "float count": (samples_field("2.5"), "'samples' is 2.5, not a count"),
    "negative bytes": (
        '{"format": "shardstream.manifest", "version": 1, "samples": 0, "shards": '
        '[{"path": "a.msgpack", "samples": 0, "bytes": -1, "md5": ""}]}',
        "shard 0 field 'bytes' is -1",
    ),
    "not utf-8": (b'{"format": "\xff"}', "not JSON"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_manifest_is_a_typed_error_naming_the_file(tmp_path, case, capsys):
    content, problem = HOSTILE[case]
    path = tmp_path / "bad.manifest"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    for load in (load_manifest, ShardedReader):
        with pytest.raises(CorruptIndexError, match=problem) as info:
            load(path)
        assert info.value.path == str(path)
    capsys.readouterr()
    assert cli_main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert "bad.manifest" in err and problem.split(",")[0] in err
    assert "Traceback" not in err


def rewrite(path, change) -> None:
    document = json.loads(path.read_text())
    change(document["shards"])
    document["samples"] = sum(s["samples"] for s in document["shards"])
    path.write_text(json.dumps(document))


def test_verify_reports_a_duplicated_entry(manifest, capsys):
    count = len(json.loads(manifest.read_text())["shards"])
    rewrite(manifest, lambda shards: shards.append(dict(shards[0])))
    assert cli_main(["verify", "-q", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert f"FAULT  {manifest}: shard {count} (s-00000.msgpack) repeats shard 0" in out


def test_verify_reports_swapped_entries(manifest, capsys):
    def swap(shards):
        shards[0], shards[1] = shards[1], shards[0]

    rewrite(manifest, swap)
    with ShardedReader(manifest) as reader:
        assert reader.find_key(0) != "k00"  # readable, but not the dataset that was written
    assert cli_main(["verify", "-q", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert "shard 1 (s-00000.msgpack) is listed after s-00001.msgpack: entries out of order" in out


def test_bytes_keys_without_key_hashes_are_a_typed_error(tmp_path):
    path = tmp_path / "d.msgpack"
    with FileWriter(path, disable=True) as writer:
        for i in range(5):
            writer.write({"key": f"k{i}"})
    (tmp_path / "d.msgpack.keys").write_bytes(msgpack.packb([f"k{i}".encode() for i in range(5)]))
    os.unlink(tmp_path / "d.msgpack.key_hashes")
    with pytest.warns(UserWarning, match="key_hashes not found"):
        reader = MsgpackReader(path)
    with reader, pytest.raises(CorruptIndexError, match=r"d\.msgpack\.keys: holds a bytes key"):
        reader.find_index("k1")
