"""read.open: the one dispatch from a dataset argument to a reader."""

from __future__ import annotations

import zipfile

import pytest

from shardstream import MsgpackReader, ShardedReader, ShardedWriter
from shardstream.errors import ConfigTypeError, DatasetNotFoundError
from shardstream.read import DirectoryReader, ZipFileReader
from shardstream.read.open import data_files, is_glob, open_dataset, open_files
from tests.conftest import write_samples

SAMPLES = [{"key": f"s{i}", "label": i} for i in range(6)]


@pytest.fixture
def sharded(tmp_path):
    manifest = tmp_path / "set.manifest"
    with ShardedWriter(manifest, shard_size=60, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    return manifest


def _keys(reader):
    with reader:
        return [reader.get(i)["key"] for i in range(len(reader))]


def test_a_reader_passes_through_unchanged(tmp_path):
    write_samples(tmp_path / "a.msgpack", SAMPLES)
    reader = MsgpackReader(tmp_path / "a.msgpack")
    assert open_dataset(reader) is reader
    reader.close()


def test_a_data_file_or_any_sidecar_opens_as_one_msgpack_reader(tmp_path):
    write_samples(tmp_path / "a.msgpack", SAMPLES)
    for name in ("a.msgpack", "a.msgpack.offsets"):
        reader = open_dataset(tmp_path / name)
        assert type(reader) is MsgpackReader
        assert _keys(reader) == [s["key"] for s in SAMPLES]


def test_a_manifest_and_a_glob_of_its_shards_open_as_the_same_sharded_set(sharded, tmp_path):
    by_manifest = open_dataset(sharded)
    assert isinstance(by_manifest, ShardedReader) and len(by_manifest.shards) > 1
    pattern = str(tmp_path / "set-*.msgpack")
    assert is_glob(pattern) and not is_glob(sharded)
    assert [p.name for p in data_files(pattern)] == [p.name for p in data_files(sharded)]
    assert _keys(open_dataset(pattern)) == _keys(by_manifest) == [s["key"] for s in SAMPLES]


def test_a_glob_matching_no_data_file_names_the_pattern(tmp_path):
    (tmp_path / "x.txt").write_text("not a shard")
    with pytest.raises(DatasetNotFoundError, match=r"x\*\.txt.*glob pattern matches no data file"):
        open_dataset(str(tmp_path / "x*.txt"))


def test_neither_reader_nor_path_is_refused_naming_the_caller():
    with pytest.raises(ConfigTypeError, match=r"^Loader: source must be a Reader .* got int$"):
        open_dataset(3, caller="Loader")  # type: ignore[arg-type]


def test_open_files_reads_packed_sets_folders_and_zip_files(tmp_path, sharded):
    assert isinstance(open_files(str(sharded)), ShardedReader)
    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"\xff\xd8 not really")
    with open_files(str(tmp_path / "images")) as reader:
        assert isinstance(reader, DirectoryReader) and len(reader) == 1
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as archive:
        archive.write(folder / "a.jpg", "cat/a.jpg")
    with open_files(str(tmp_path / "images.zip")) as reader:
        assert isinstance(reader, ZipFileReader) and len(reader) == 1
    with pytest.raises(DatasetNotFoundError, match="no files found"):
        open_files(str(tmp_path / "empty-folder-that-does-not-exist" / "*.jpg"))
