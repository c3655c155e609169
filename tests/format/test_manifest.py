"""Manifests: a sharded dataset opened as one through ShardedReader."""

from __future__ import annotations

import json

import pytest

from shardstream import ShardedReader
from shardstream.errors import CorruptIndexError, DatasetNotFoundError, IndexMismatchError
from shardstream.format.integrity import md5_file
from shardstream.format.manifest import ShardEntry, load_manifest, write_manifest
from tests.conftest import write_samples
from tests.contracts.reader_conformance import run_reader_conformance


@pytest.fixture
def manifest(tmp_path, samples):
    entries = []
    for k, (a, b) in enumerate([(0, 15), (15, 40)]):
        path = tmp_path / f"set-{k:05d}.msgpack"
        write_samples(path, samples[a:b])
        entries.append(ShardEntry(path.name, b - a, path.stat().st_size, md5_file(path)))
    return write_manifest(tmp_path / "set.manifest", entries)


def test_manifest_opens_as_one_dataset(manifest, samples):
    document = json.loads(manifest.read_text())
    assert document["format"] == "shardstream.manifest" and document["samples"] == 40
    assert [s["path"] for s in document["shards"]] == ["set-00000.msgpack", "set-00001.msgpack"]
    run_reader_conformance(lambda: ShardedReader(manifest), [(s["key"], s) for s in samples])
    assert load_manifest(manifest).samples == 40


def test_missing_shard(manifest, tmp_path):
    (tmp_path / "set-00001.msgpack").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"set-00001\.msgpack: shard listed in set\.manifest"
    ):
        ShardedReader(manifest)


def test_shard_length_differs_from_manifest(manifest, tmp_path, samples):
    write_samples(tmp_path / "set-00001.msgpack", samples[15:20])
    with pytest.raises(IndexMismatchError, match="shard holds 5 samples but the manifest says 25"):
        ShardedReader(manifest)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "manifest is not JSON"),
        ('{"format": "other"}', "not a shardstream manifest"),
        ('{"format": "shardstream.manifest", "version": 9}', "unsupported manifest version 9"),
        ('{"format": "shardstream.manifest", "version": 1, "samples": 1}', "malformed"),
        (
            '{"format": "shardstream.manifest", "version": 1, "samples": 0, "shards": '
            '[{"path": "../x.msgpack", "samples": 0, "bytes": 0, "md5": ""}]}',
            "must be relative",
        ),
    ],
)
def test_bad_manifest(tmp_path, content, problem):
    path = tmp_path / "bad.manifest"
    path.write_text(content)
    with pytest.raises(CorruptIndexError, match=problem):
        ShardedReader(path)


def test_total_mismatch(manifest):
    document = json.loads(manifest.read_text())
    document["samples"] = 41
    manifest.write_text(json.dumps(document))
    with pytest.raises(IndexMismatchError, match="manifest says 41 samples but its shards hold 40"):
        load_manifest(manifest)


def test_absolute_shard_paths_are_refused_on_write(tmp_path):
    with pytest.raises(ValueError, match="must be relative"):
        write_manifest(tmp_path / "x.manifest", [ShardEntry("/etc/passwd", 1, 1, "")])
    assert list(tmp_path.iterdir()) == []
