"""Per-sample checksums (``X.xxh3``): damage is named per sample, by readers, ``verify`` and the
Loader, for single and sharded sets; stale or mismatched checksum files are refused; datadings
still reads sets that have one; sets without one get one atomically with ``--add-checksums``."""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest
import xxhash
from datadings.reader import MsgpackReader as DatadingsReader
from datadings.writer import FileWriter as DatadingsWriter
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream import FileWriter, Loader, MsgpackReader, RawWriter, ShardedReader, ShardedWriter
from shardstream.cli import main as cli_main
from shardstream.errors import (
    ChecksumMismatchError,
    ConfigError,
    CorruptIndexError,
    DatasetChangedError,
    IndexMismatchError,
    MissingIndexError,
    SampleChecksumError,
    SampleError,
)
from shardstream.format.codec import packb
from shardstream.write import add_checksums

N = 20


def make(n: int = N, prefix: str = "k") -> list[dict]:
    return [
        {"key": f"{prefix}{i:03d}", "blob": bytes([i]) * (40 + 7 * i), "i": i} for i in range(n)
    ]


SAMPLES = make()


def write(path, samples=SAMPLES) -> None:
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


def flip(path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        value = f.read(1)[0]
        f.seek(position)
        f.write(bytes([value ^ 0x01]))


def span(path, index: int) -> tuple[int, int]:
    with MsgpackReader(path) as reader:
        return int(reader.offsets[index]), int(reader.offsets[index + 1])


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "d.msgpack"
    write(path)
    return path


# --- the file -----------------------------------------------------------------------------------


def test_the_file_holds_the_documented_layout(dataset):
    content = (dataset.parent / "d.msgpack.xxh3").read_bytes()
    assert len(content) == 32 + 8 * N
    magic, version, algorithm, reserved, count, data_bytes, table = struct.unpack_from(
        "<4sBBHQQQ", content
    )
    assert (magic, version, algorithm, reserved, count) == (b"SSCK", 1, 1, 0, N)
    assert data_bytes == dataset.stat().st_size
    assert table == xxhash.xxh3_64_intdigest(content[32:])
    digests = np.frombuffer(content, dtype="<u8", offset=32).tolist()
    assert digests == [xxhash.xxh3_64_intdigest(packb(s)) for s in SAMPLES]
    # the .md5 file stays what datadings writes: it does not list the checksum file
    assert "xxh3" not in (dataset.parent / "d.msgpack.md5").read_text()


def test_raw_and_sharded_writers_write_it_too(tmp_path):
    with RawWriter(tmp_path / "r.msgpack", overwrite=True, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample["key"], packb(sample))
    assert (tmp_path / "r.msgpack.xxh3").read_bytes() == (
        _written(tmp_path / "f.msgpack").read_bytes()
    )
    with ShardedWriter(tmp_path / "s.msgpack", shard_size=300, overwrite=True, disable=True) as w:
        for sample in SAMPLES:
            w.write(sample)
    assert len(w.shard_paths) > 3
    for shard in w.shard_paths:
        with MsgpackReader(shard) as reader:
            assert reader.has_checksums and reader.damaged_samples() == []
    with ShardedReader(tmp_path / "s.manifest") as reader:
        assert reader.has_checksums and reader.damaged_samples() == []


def _written(path):
    write(path)
    return path.with_name(path.name + ".xxh3")


# --- naming the damaged sample ------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, N - 1), where=st.floats(0, 1, exclude_max=True))
def test_one_flipped_byte_names_exactly_that_sample(tmp_path_factory, index, where):
    path = tmp_path_factory.mktemp("flip") / "d.msgpack"
    write(path)
    start, stop = span(path, index)
    flip(path, start + int(where * (stop - start)))
    with MsgpackReader(path) as reader:
        assert reader.damaged_samples() == [index]
        assert [reader.verify_sample(i) for i in range(N)] == [i != index for i in range(N)]
        with pytest.raises(SampleChecksumError) as info:
            reader.check_sample(index)
        reader.check_sample(index - 1)  # the neighbours are fine
    error = info.value
    assert isinstance(error, ChecksumMismatchError) and isinstance(error, ValueError)
    assert (error.path, error.index, error.key) == (str(path), index, f"k{index:03d}")
    assert str(error).startswith(f"{path}: sample {index} (key 'k{index:03d}') is damaged: ")


def test_verify_names_the_sample_of_a_sharded_set(tmp_path, capsys):
    manifest = tmp_path / "s.manifest"
    with ShardedWriter(manifest, shard_size=400, overwrite=True, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    with ShardedReader(manifest) as reader:
        shard, local = reader.locate(13)
        shard_path = reader.shards[shard].path
    start, stop = span(shard_path, local)
    flip(shard_path, (start + stop) // 2)
    with ShardedReader(manifest) as reader:
        assert reader.damaged_samples() == [13]
        assert not reader.verify_sample(13) and reader.verify_sample(12)
        with pytest.raises(SampleChecksumError, match=f"sample {local} .key 'k013'."):
            reader.check_sample(13)
    capsys.readouterr()
    assert cli_main(["verify", "-q", "--quick", str(manifest)]) == 1
    damaged = [line for line in capsys.readouterr().out.splitlines() if "damaged" in line]
    assert len(damaged) == 1
    assert damaged[0].startswith(f"FAULT  {shard_path}: sample {local} (key 'k013') is damaged")


# --- refusing checksum files that do not belong -------------------------------------------------


@pytest.mark.parametrize("change", [-8, 8, -1, 3])
def test_a_checksum_file_of_the_wrong_size_is_refused_at_open(dataset, change):
    sidecar = dataset.parent / "d.msgpack.xxh3"
    content = sidecar.read_bytes()
    sidecar.write_bytes(content[:change] if change < 0 else content + b"\0" * change)
    with pytest.raises(IndexMismatchError, match="checksum file is .* bytes") as info:
        MsgpackReader(dataset)
    assert info.value.path == str(sidecar)
    assert "--add-checksums" in str(info.value)


def test_a_checksum_file_of_another_set_is_refused_at_open(tmp_path):
    write(tmp_path / "a.msgpack")
    write(tmp_path / "b.msgpack", make(N + 1))
    shutil.copyfile(tmp_path / "b.msgpack.xxh3", tmp_path / "a.msgpack.xxh3")
    with pytest.raises(IndexMismatchError, match=f"expected {32 + 8 * N} for {N} samples"):
        MsgpackReader(tmp_path / "a.msgpack")


def test_a_stale_checksum_file_left_by_datadings_is_refused_on_use(dataset):
    # datadings' writer replaces the set but knows nothing of the checksum file
    other = [{**s, "blob": s["blob"] + b"!"} for s in SAMPLES]
    with DatadingsWriter(dataset, overwrite=True, disable=True) as writer:
        for sample in other:
            writer.write(sample)
    # the same count: it opens, and the header tells the checksum file is stale
    with MsgpackReader(dataset) as reader, pytest.raises(IndexMismatchError, match="stale"):
        reader.verify_sample(0)
    assert cli_main(["verify", "-q", str(dataset)]) == 1
    assert cli_main(["verify", "-q", "--add-checksums", str(dataset)]) == 1  # reported, mended
    assert cli_main(["verify", "-q", str(dataset)]) == 0
    with MsgpackReader(dataset) as reader:
        assert reader.damaged_samples() == [] and reader.get(3) == other[3]


def test_a_damaged_checksum_file_is_told_from_damaged_samples(dataset):
    flip(dataset.parent / "d.msgpack.xxh3", 32 + 8 * 5 + 2)
    with MsgpackReader(dataset) as reader, pytest.raises(CorruptIndexError, match="is damaged"):
        reader.damaged_samples()
    flip(dataset.parent / "d.msgpack.xxh3", 1)
    with MsgpackReader(dataset) as reader, pytest.raises(CorruptIndexError, match="magic"):
        reader.verify_sample(0)


def test_the_checksum_file_is_pinned_with_the_set(dataset):
    reader = MsgpackReader(dataset)
    write(dataset, make(N, "n"))  # the same count: only pinning tells the versions apart
    with pytest.raises(DatasetChangedError, match="d.msgpack.xxh3"):
        reader.verify_sample(0)
    reader.close()


# --- sets without checksums ---------------------------------------------------------------------


def test_datadings_reads_sets_with_the_checksum_file(dataset):
    reader = DatadingsReader(dataset)
    assert len(reader) == N
    assert [reader.get(i) for i in range(N)] == SAMPLES
    assert reader.find_index("k007") == 7
    assert reader.verify_data()


def test_datadings_written_set_verifies_by_md5_and_gets_checksums_added(tmp_path, capsys):
    path = tmp_path / "dd.msgpack"
    with DatadingsWriter(path, overwrite=True, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    with MsgpackReader(path) as reader:
        assert not reader.has_checksums
        with pytest.raises(MissingIndexError, match="--add-checksums"):
            reader.verify_sample(0)
    with pytest.raises(ConfigError, match="verify=True needs per-sample checksums"):
        Loader(path, verify=True)
    capsys.readouterr()
    assert cli_main(["verify", "-q", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note   dd.msgpack: no per-sample checksums (dd.msgpack.xxh3)" in out
    before = sorted(os.listdir(tmp_path))
    assert cli_main(["verify", "-q", "--add-checksums", str(path)]) == 0
    assert f"ok     dd.msgpack.xxh3 written: {N} per-sample checksums" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == sorted([*before, "dd.msgpack.xxh3"])
    assert (tmp_path / "dd.msgpack.xxh3").read_bytes() == _written(
        tmp_path / "f.msgpack"
    ).read_bytes()
    start, stop = span(path, 11)
    flip(path, start + 5)
    assert cli_main(["verify", "-q", str(path)]) == 1
    faults = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAULT")]
    assert len(faults) == 2 and faults[0].startswith(f"FAULT  {path}: md5 ")
    assert faults[1].startswith(f"FAULT  {path}: sample 11 (key 'k011') is damaged: ")
    assert DatadingsReader(path).get(2) == SAMPLES[2]  # datadings still reads it


def test_add_checksums_refuses_data_that_fails_its_md5(tmp_path, capsys):
    path = tmp_path / "dd.msgpack"
    with DatadingsWriter(path, overwrite=True, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    flip(path, 30)
    assert cli_main(["verify", "-q", "--add-checksums", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"FAULT  {path}.xxh3: not added: dd.msgpack does not match a recorded md5" in out
    assert not (tmp_path / "dd.msgpack.xxh3").exists()


def test_add_checksums_function_replaces_atomically_and_leaves_no_temporaries(dataset):
    sidecar = dataset.parent / "d.msgpack.xxh3"
    good = sidecar.read_bytes()
    sidecar.write_bytes(good[:-8])
    assert add_checksums(dataset) == sidecar
    assert sidecar.read_bytes() == good
    assert not [n for n in os.listdir(dataset.parent) if n.startswith(".")]


# --- the Loader ---------------------------------------------------------------------------------


def damaged_set(path, index: int = 7):
    write(path)
    start, stop = span(path, index)
    flip(path, start + 30)  # inside the blob: the sample still unpacks
    return path


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_verify_raises_naming_the_damaged_sample(tmp_path, workers):
    path = damaged_set(tmp_path / "d.msgpack")
    loader = Loader(path, seed=0, verify=True).batch(4).numpy(num_workers=workers)
    with pytest.raises(SampleError, match="key 'k007'") as info:
        list(loader)
    loader.close()
    cause = info.value.__cause__
    assert isinstance(cause, SampleChecksumError)
    assert (cause.path, cause.index, cause.key) == (str(path), 7, "k007")
    # without verify the damage goes unnoticed: the bytes still unpack
    plain = Loader(path, seed=0).batch(4).numpy()
    assert sum(len(b["key"]) for b in plain) == N
    plain.close()


def test_loader_verify_with_ignore_errors_skips_and_counts(tmp_path):
    path = damaged_set(tmp_path / "d.msgpack", 7)
    loader = Loader(path, seed=0, verify=True, ignore_errors=True).batch(4).numpy()
    keys = [k for batch in loader for k in batch["key"]]
    assert keys == [f"k{i:03d}" for i in range(N) if i != 7]
    assert loader.stats()["skipped"] == 1
    loader.close()


def test_loader_verify_on_a_sharded_set_and_through_dataloader(tmp_path):
    manifest = tmp_path / "s.manifest"
    with ShardedWriter(manifest, shard_size=400, overwrite=True, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    reader = ShardedReader(manifest)
    clean = reader.dataloader(seed=0, verify=True).batch(5).numpy()
    assert [k for b in clean for k in b["key"]] == [s["key"] for s in SAMPLES]
    clean.close()
    shard, local = reader.locate(16)
    start, stop = span(reader.shards[shard].path, local)
    flip(reader.shards[shard].path, stop - 1)
    damaged = Loader(manifest, seed=0, verify=True).batch(5).numpy()
    with pytest.raises(SampleError) as info:
        list(damaged)
    damaged.close()
    assert isinstance(info.value.__cause__, SampleChecksumError)
    assert info.value.__cause__.key == "k016"
    assert info.value.__cause__.path == str(reader.shards[shard].path)
    reader.close()


def test_a_pickled_reader_reloads_the_checksums_it_pinned(dataset):
    import pickle

    start, _ = span(dataset, 4)
    flip(dataset, start + 20)
    reader = MsgpackReader(dataset)
    assert reader.damaged_samples() == [4]  # loads the digests, which are not pickled
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.has_checksums and copy._digests is None
    assert copy.damaged_samples() == [4]
    copy.close()
    reader.close()


def test_a_legacy_index_set_gets_checksums_added(tmp_path):
    import msgpack

    path = tmp_path / "legacy.msgpack"
    write(path)
    with MsgpackReader(path) as reader:
        keys, offsets = reader.keys, reader.offsets[:-1].tolist()
    for suffix in (".offsets", ".keys", ".key_hashes", ".filter", ".xxh3"):
        os.remove(f"{path}{suffix}")
    (tmp_path / "legacy.msgpack.index").write_bytes(msgpack.packb(dict(zip(keys, offsets))))
    with MsgpackReader(path) as reader:
        assert not reader.has_checksums
    add_checksums(path)
    with MsgpackReader(path) as reader:
        assert reader.has_checksums and reader.damaged_samples() == []
        assert reader.get(5) == SAMPLES[5]
