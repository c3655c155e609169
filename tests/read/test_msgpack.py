"""MsgpackReader: conformance, compatibility with datadings 3.4.7 both ways, and bad input."""

from __future__ import annotations

import os
import shutil
import warnings

import msgpack
import numpy as np
import pytest
from datadings.reader import MsgpackReader as DatadingsReader
from datadings.writer import FileWriter as DatadingsWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstream import (
    ChecksumWarning,
    MsgpackReader,
    ShardedReader,
    convert_legacy_index,
    unpackb,
)
from shardstream.errors import (
    CorruptIndexError,
    CorruptSampleError,
    DatasetNotFoundError,
    IndexMismatchError,
    MissingIndexError,
    NotADatasetFileError,
    OffsetsOrderError,
    TruncatedDataError,
    UnsafeDataError,
)
from tests.conftest import write_samples
from tests.contracts.reader_conformance import assert_samples_equal, run_reader_conformance

INDEX_SUFFIXES = [".offsets", ".keys", ".key_hashes", ".filter"]


def write_with_datadings(path, samples):
    with DatadingsWriter(path, overwrite=True, disable=True) as writer:
        for sample in samples:
            writer.write(sample)


def test_conformance(dataset, samples):
    run_reader_conformance(lambda: MsgpackReader(dataset), [(s["key"], s) for s in samples])


def test_conformance_empty(tmp_path):
    write_samples(tmp_path / "e.msgpack", [])
    run_reader_conformance(lambda: MsgpackReader(tmp_path / "e.msgpack"), [])


def test_conformance_large_enough_for_chunked_getitem(tmp_path):
    samples = [{"key": f"k{i}", "v": i} for i in range(600)]
    write_samples(tmp_path / "l.msgpack", samples)
    run_reader_conformance(
        lambda: MsgpackReader(tmp_path / "l.msgpack"), [(s["key"], s) for s in samples]
    )


# --- compatibility with datadings ------------------------------------------------------------


def test_reads_what_datadings_writes(tmp_path, samples):
    path = tmp_path / "dd.msgpack"
    write_with_datadings(path, samples)
    with MsgpackReader(path) as ours, DatadingsReader(path) as theirs:
        assert len(ours) == len(theirs)
        for i, sample in enumerate(samples):
            assert_samples_equal(ours.get(i), sample)
            assert_samples_equal(ours.get(i), theirs.get(i))
            assert ours.find_index(sample["key"]) == theirs.find_index(sample["key"]) == i
            assert ours.find_key(i) == theirs.find_key(i)
            assert ours.get(i, raw=True) == theirs.get(i, raw=True)
        assert ours.verify_data() and ours.verify_index()


def test_datadings_reads_what_we_write(dataset, samples):
    with DatadingsReader(dataset) as theirs:
        assert len(theirs) == len(samples)
        for i, sample in enumerate(samples):
            assert_samples_equal(theirs.get(i), sample)
            assert theirs.find_index(sample["key"]) == i
            assert sample["key"] in theirs
        assert theirs.verify_data()


def test_index_files_are_byte_identical_to_datadings(tmp_path, samples, dataset):
    write_with_datadings(tmp_path / "dd.msgpack", samples)
    for suffix in ["", *INDEX_SUFFIXES]:
        ours = (tmp_path / f"varied.msgpack{suffix}").read_bytes()
        assert ours == (tmp_path / f"dd.msgpack{suffix}").read_bytes(), suffix
    ours_md5 = (tmp_path / "varied.msgpack.md5").read_text().replace("varied", "dd")
    assert ours_md5 == (tmp_path / "dd.msgpack.md5").read_text()


def test_open_by_sidecar_path(dataset, samples):
    with MsgpackReader(f"{dataset}.offsets") as reader:
        assert reader.path == dataset and len(reader) == len(samples)


# --- laziness --------------------------------------------------------------------------------


def test_open_reads_neither_keys_nor_hashes(dataset, samples):
    (dataset.parent / "varied.msgpack.keys").write_bytes(b"\xc1garbage")  # would fail to parse
    with MsgpackReader(dataset) as reader:
        assert len(reader) == len(samples)
        assert samples[3]["key"] in reader  # needs only filter + hashes
        assert reader.find_index(samples[3]["key"]) == 3
        assert_samples_equal(reader.get(3), samples[3])
        with pytest.raises(CorruptIndexError, match=r"varied\.msgpack\.keys"):
            reader.find_key(0)


def test_copy_false_returns_views_without_copying(dataset):
    with MsgpackReader(dataset) as reader:
        raw = reader.get(5, raw=True, copy=False)
        assert isinstance(raw, memoryview) and raw.readonly
        assert raw.tobytes() == reader.get(5, raw=True)
        views = list(reader.iter(raw=True, copy=False))
        assert all(isinstance(v, memoryview) for v in views)
        del raw, views


def test_missing_optional_index_files_warn_but_work(dataset, samples):
    for suffix in (".keys", ".filter", ".key_hashes"):
        os.unlink(f"{dataset}{suffix}")
    with pytest.warns(UserWarning, match="not found, some functionality may not be available"):
        reader = MsgpackReader(dataset)
    with reader:
        assert_samples_equal(reader.get(0), samples[0])
        with pytest.raises(MissingIndexError, match="keys"):
            reader.find_key(0)


# --- legacy index ----------------------------------------------------------------------------


def make_legacy(path, samples):
    """A dataset as old datadings wrote it: data, a key->offset map index, and md5 of both."""
    write_samples(path, samples)
    offsets = np.fromfile(f"{path}.offsets", dtype=">u8").tolist()
    index = msgpack.packb(dict(zip([s["key"] for s in samples], offsets[:-1])))
    with open(f"{path}.index", "wb") as f:
        f.write(index)
    for suffix in INDEX_SUFFIXES:
        os.unlink(f"{path}{suffix}")
    from shardstream.format.integrity import format_md5_file, md5_file

    entries = [(path.name, md5_file(path)), (f"{path.name}.index", md5_file(f"{path}.index"))]
    with open(f"{path}.md5", "w") as f:
        f.write(format_md5_file(entries))


def test_legacy_index_is_read(tmp_path, samples):
    path = tmp_path / "old.msgpack"
    make_legacy(path, samples)
    with MsgpackReader(path) as reader:
        run_reader_conformance(lambda: MsgpackReader(path), [(s["key"], s) for s in samples])
        assert reader.verify_index() and reader.verify_data()


def test_legacy_index_conversion_matches_writer_output(tmp_path, samples):
    path = tmp_path / "old.msgpack"
    make_legacy(path, samples)
    written = convert_legacy_index(path)
    assert [p.name for p in written] == [f"old.msgpack{s}" for s in [*INDEX_SUFFIXES, ".md5"]]
    write_samples(tmp_path / "new.msgpack", samples)
    for suffix in INDEX_SUFFIXES:
        assert (tmp_path / f"old.msgpack{suffix}").read_bytes() == (
            tmp_path / f"new.msgpack{suffix}"
        ).read_bytes()
    md5_names = [
        line.split("  ")[1] for line in (tmp_path / "old.msgpack.md5").read_text().splitlines()
    ]
    assert md5_names == ["old.msgpack", "old.msgpack.index"] + [
        f"old.msgpack{s}" for s in INDEX_SUFFIXES
    ]
    with MsgpackReader(path) as reader:
        assert reader.verify_index() and reader.verify_data()
        with DatadingsReader(path) as theirs:
            assert theirs.find_index(samples[7]["key"]) == 7


def test_legacy_conversion_to_other_directory(tmp_path, samples):
    path = tmp_path / "old.msgpack"
    make_legacy(path, samples)
    out = tmp_path / "out"
    convert_legacy_index(f"{path}.index", outdir=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"old.msgpack{s}" for s in [*INDEX_SUFFIXES, ".md5"]
    )


# --- bad input: one test each ----------------------------------------------------------------


def test_truncated_data_file(dataset):
    size = dataset.stat().st_size
    with open(dataset, "r+b") as f:
        f.truncate(size - 10)
    with pytest.raises(
        TruncatedDataError, match=rf"varied\.msgpack: data file is {size - 10} bytes.*truncated"
    ):
        MsgpackReader(dataset)


def test_missing_index(dataset):
    os.unlink(f"{dataset}.offsets")
    with pytest.raises(MissingIndexError, match=r"need at least one of varied\.msgpack\.offsets"):
        MsgpackReader(dataset)


def test_missing_data_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"nothing\.msgpack: not found"):
        MsgpackReader(tmp_path / "nothing.msgpack")


def test_offsets_not_matching_data_size(tmp_path, dataset, samples):
    write_samples(tmp_path / "other.msgpack", samples[:3])
    shutil.copy(tmp_path / "other.msgpack.offsets", f"{dataset}.offsets")
    with pytest.raises(IndexMismatchError, match=r"varied\.msgpack\.offsets: index ends at byte"):
        MsgpackReader(dataset)


def test_offsets_file_of_odd_size(dataset):
    with open(f"{dataset}.offsets", "ab") as f:
        f.write(b"\0\0\0")
    with pytest.raises(IndexMismatchError, match="must hold len"):
        MsgpackReader(dataset)


def test_offsets_not_ascending(dataset):
    offsets = np.fromfile(f"{dataset}.offsets", dtype=">u8")
    offsets[[3, 4]] = offsets[[4, 3]]
    offsets.tofile(f"{dataset}.offsets")
    reader = MsgpackReader(dataset)  # open is O(1): only ends are checked
    with pytest.raises(
        OffsetsOrderError, match=r"varied\.msgpack\.offsets: offsets not ascending: sample 3"
    ):
        reader.get(0)


def test_key_hashes_size_mismatch(dataset):
    with open(f"{dataset}.key_hashes", "ab") as f:
        f.write(b"\0" * 8)
    with pytest.raises(IndexMismatchError, match=r"key_hashes: key hashes file is"):
        MsgpackReader(dataset)


def test_keys_count_mismatch(dataset):
    with open(f"{dataset}.keys", "wb") as f:
        f.write(msgpack.packb(["only", "two"]))
    with pytest.raises(IndexMismatchError, match="2 keys for 40 samples"):
        MsgpackReader(dataset)  # found at open from the keys file's header (O(1))


def test_corrupt_filter(dataset, samples):
    with open(f"{dataset}.filter", "wb") as f:
        f.write(b"NOTBLOOM" + b"\0" * 40)
    with (
        MsgpackReader(dataset) as reader,
        pytest.raises(CorruptIndexError, match=r"\.filter: not a valid"),
    ):
        samples[0]["key"] in reader  # noqa: B015


def test_corrupt_sample_bytes(tmp_path):
    path = tmp_path / "c.msgpack"
    write_samples(path, [{"key": "a", "x": b"1234"}, {"key": "b"}])
    data = bytearray(path.read_bytes())
    data[1] = 0xC1  # the one byte msgpack never uses
    path.write_bytes(bytes(data))
    with MsgpackReader(path) as reader:
        with pytest.raises(
            CorruptSampleError, match=r"c\.msgpack: sample 0 \(bytes 0-\d+\) does not decode"
        ):
            reader.get(0)
        assert reader.get(1) == {"key": "b"}


def test_sample_with_trailing_garbage(tmp_path):
    path = tmp_path / "g.msgpack"
    write_samples(path, [{"key": "a"}, {"key": "b"}])
    offsets = np.fromfile(f"{path}.offsets", dtype=">u8")
    np.array([0, offsets[2]], dtype=">u8").tofile(f"{path}.offsets")  # two messages as one sample
    (tmp_path / "g.msgpack.keys").write_bytes(msgpack.packb(["a"]))  # a count that fits
    os.unlink(f"{path}.key_hashes")
    os.unlink(f"{path}.xxh3")  # the index was edited by hand: the checksums no longer fit
    with pytest.warns(UserWarning, match="key_hashes not found"):
        reader = MsgpackReader(path)
    with reader, pytest.raises(CorruptSampleError, match="sample 0.*ExtraData"):
        reader.get(0)


def test_pickled_array_in_file_is_refused(tmp_path):
    path = tmp_path / "p.msgpack"
    from shardstream import RawWriter

    hostile = msgpack.packb(
        {
            "key": "evil",
            "x": {
                b"nd": True,
                b"type": "|O",
                b"kind": b"O",
                b"shape": [1],
                b"data": b"cos\nsystem\n",
            },
        }
    )
    with RawWriter(path, disable=True) as w:
        w.write("evil", hostile)
    with (
        MsgpackReader(path) as reader,
        pytest.raises(UnsafeDataError, match=r"p\.msgpack: sample 0"),
    ):
        reader.get(0)


def test_md5_mismatch(dataset):
    with open(dataset, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with MsgpackReader(dataset) as reader:
        with pytest.warns(
            ChecksumWarning, match=r"varied\.msgpack: md5 [0-9a-f]{32} != [0-9a-f]{32}"
        ):
            assert reader.verify_data() is False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert reader.verify_index() is True


def test_index_md5_mismatch_names_the_index_file(dataset):
    with open(f"{dataset}.keys", "ab") as f:
        f.write(b"\0")
    with pytest.warns(ChecksumWarning, match=r"varied\.msgpack\.keys: md5"):
        assert MsgpackReader(dataset).verify_index() is False


def test_missing_md5_file(dataset):
    os.unlink(f"{dataset}.md5")
    with pytest.raises(MissingIndexError, match="md5 file not found"):
        MsgpackReader(dataset).verify_data()


def test_path_is_a_directory(tmp_path):
    (tmp_path / "dir.msgpack").mkdir()
    with pytest.raises(NotADatasetFileError, match=r"dir\.msgpack: is a directory"):
        MsgpackReader(tmp_path / "dir.msgpack")


def test_getitems_out_of_range(dataset):
    with MsgpackReader(dataset) as reader, pytest.raises(IndexError, match="index 40 out of range"):
        reader.getitems([0, 40])


# --- property: any samples round-trip through every access path ------------------------------

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=64),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)
arrays = st.builds(
    lambda n, dt: np.arange(n).astype(dt),
    st.integers(0, 20),
    st.sampled_from(["<u1", ">i2", "<f4", "<f8", "<i8"]),
)
field_names = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("key", "nd", "complex"))
sample_lists = st.lists(
    st.tuples(st.text(max_size=12), st.dictionaries(field_names, values | arrays, max_size=4)),
    unique_by=lambda t: t[0],
    max_size=30,
).map(lambda items: [{**fields, "key": key} for key, fields in items])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(samples=sample_lists, shards=st.integers(1, 4))
def test_round_trip_property(tmp_path_factory, samples, shards):
    directory = tmp_path_factory.mktemp("rt")
    path = directory / "rt.msgpack"
    write_samples(path, samples)
    with MsgpackReader(path) as reader:
        assert len(reader) == len(samples)
        got_get = [reader.get(i) for i in range(len(samples))]
        got_slice = list(reader.slice(0, len(samples)))
        got_iter = list(reader.iter(chunk_size=3))
        got_raw = [reader.get(i, raw=True) for i in range(len(samples))]
        got_views = [unpackb(v) for v in reader.iter(raw=True, copy=False)]
        got_decoded_views = list(reader.iter(copy=False))
        assert len(got_views) == len(got_decoded_views) == len(samples)
        got = zip(samples, got_get, got_slice, got_iter, got_raw, got_views, got_decoded_views)
        for sample, a, b, c, raw, view, decoded_view in got:
            assert_samples_equal(a, sample)
            assert_samples_equal(b, sample)
            assert_samples_equal(c, sample)
            assert_samples_equal(unpackb(raw), sample)
            assert_samples_equal(view, sample)
            assert_samples_equal(decoded_view, sample)
        if samples:
            order = np.random.default_rng(0).permutation(len(samples)).tolist()
            for i, got in zip(order, reader.getitems(order)):
                assert_samples_equal(got, samples[i])
    # the same samples split into k shards read back identically through a ShardedReader
    bounds = np.linspace(0, len(samples), shards + 1).astype(int)
    paths = []
    for k in range(shards):
        shard_path = directory / f"shard-{k:02d}.msgpack"
        write_samples(shard_path, samples[bounds[k] : bounds[k + 1]])
        paths.append(shard_path)
    with ShardedReader(str(directory / "shard-*.msgpack")) as sharded:
        assert len(sharded) == len(samples)
        for sample, a, b in zip(
            samples, [sharded.get(i) for i in range(len(samples))], sharded.iter()
        ):
            assert_samples_equal(a, sample)
            assert_samples_equal(b, sample)
        for i, sample in enumerate(samples):
            assert sharded.find_index(sample["key"]) == i


def test_pickles_after_use_without_its_map(dataset, samples):
    import pickle

    reader = MsgpackReader(dataset)
    reader.get(3, raw=True, copy=False)
    reader.find_key(0)
    assert samples[2]["key"] in reader
    blob = pickle.dumps(reader)
    assert len(blob) < 1000  # no data, offsets or keys travel
    clone = pickle.loads(blob)
    assert_samples_equal(clone.get(3), samples[3])
    assert clone.find_index(samples[5]["key"]) == 5
    assert clone.find_key(7) == samples[7]["key"]


def mapped_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping header line
                inside = fields[-1] == str(path)
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def test_release_pages_unmaps_what_was_read_and_keeps_views_valid(tmp_path):
    path = tmp_path / "big.msgpack"
    rng = np.random.default_rng(0)
    samples = [{"key": str(i), "x": rng.bytes(20_000)} for i in range(500)]  # ~10 MB
    write_samples(path, samples)
    with MsgpackReader(path) as reader:
        view = reader.get(7, raw=True, copy=False)
        for _ in reader.iter(raw=True):  # copying reads (and so maps) every page
            pass
        assert mapped_kib(path) > 8_000
        reader.release_pages()
        assert mapped_kib(path) < 1_000
        assert unpackb(view)["x"] == samples[7]["x"]  # refaults from the page cache
        assert reader.get(499)["x"] == samples[499]["x"]
        del view
