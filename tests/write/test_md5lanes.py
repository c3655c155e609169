"""md5 of several buffers at once (shardstream.write.md5lanes and its C extension): every
path gives hashlib's digests, for any number of buffers of any lengths and kinds; shard groups
hashed that way write the same files as shards hashed one by one."""

from __future__ import annotations

import hashlib
import mmap
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import BadSourceError, ConfigError, WriterClosedError
from shardstream.write import RawWriter, md5lanes, shard_plan
from shardstream.write.sample_conversion import _Options
from shardstream.write.shard_plan import ShardTask, plan_groups
from shardstream.write.shard_writer import InPlaceWriter
from tests.write.demo_tree import demo_tree
from tests.write.test_whole_shards import make_items

#: lengths around md5's block (64) and padding (56) edges
EDGES = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192, 1000]

OPTIONS = _Options(image_field="image", transcode=False, max_side=None, quality=None)
#: the files of a shard next to its data file
SHARD_FILES = ["msgpack", "msgpack.filter", "msgpack.key_hashes", "msgpack.keys", "msgpack.md5",
               "msgpack.offsets", "msgpack.xxh3"]  # fmt: skip

lengths = st.one_of(st.sampled_from(EDGES), st.integers(0, 5000))


def expected(buffers) -> list[str]:
    return [hashlib.md5(buffer).hexdigest() for buffer in buffers]


def data(length: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(length)


@pytest.fixture(params=["lanes", "scalar C", "hashlib"])
def path(request, monkeypatch):
    """Each way md5lanes.hexdigests hashes: AVX2 lanes, the extension's scalar code, and the
    fallback without the extension."""
    if request.param == "hashlib":
        monkeypatch.setattr(md5lanes, "_md5lanes", None)
    elif md5lanes._md5lanes is None:
        pytest.skip("the _md5lanes extension is not built")
    return request.param != "scalar C"


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(lengths, min_size=1, max_size=8), seed=st.integers(0, 2**32))
def test_one_to_eight_buffers_give_hashlibs_digests(sizes, seed):
    buffers = [data(size, seed + position) for position, size in enumerate(sizes)]
    for lanes in (True, False):
        assert md5lanes.hexdigests(buffers, lanes=lanes) == expected(buffers)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(lengths, min_size=9, max_size=30), seed=st.integers(0, 2**32))
def test_more_buffers_than_lanes_take_the_lanes_in_turn(sizes, seed):
    buffers = [data(size, seed + position) for position, size in enumerate(sizes)]
    assert md5lanes.hexdigests(buffers) == expected(buffers)


def test_every_path_hashes_megabytes_of_very_unequal_lengths(path):
    sizes = [3_000_017, 0, 64, 1_000_000, 55, 2_500_001, 7, 999_999, 4_194_304, 120, 1]
    buffers = [data(size, size) for size in sizes]
    assert md5lanes.hexdigests(buffers, lanes=path) == expected(buffers)
    equal = [data(1 << 20, seed) for seed in range(8)]  # lanes that end together
    assert md5lanes.hexdigests(equal, lanes=path) == expected(equal)
    assert md5lanes.hexdigests([], lanes=path) == []
    assert md5lanes.hexdigests([b"abc"], lanes=path) == ["900150983cd24fb0d6963f7d28e17f72"]


def test_bytearrays_memoryviews_and_maps_are_hashed_in_place(path, tmp_path):
    content = data(200_000, 5)
    file = tmp_path / "f"
    file.write_bytes(content)
    with open(file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(content)[13:150_013]  # a slice: contiguous, not at the start
        buffers = [bytearray(content[:777]), view, mapped, memoryview(bytearray(65))]
        assert md5lanes.hexdigests(buffers, lanes=path) == expected(buffers)


def test_a_buffer_that_is_not_contiguous_or_bytes_is_refused():
    if md5lanes._md5lanes is None:
        pytest.skip("the _md5lanes extension is not built")
    with pytest.raises(BufferError):
        md5lanes.hexdigests([b"a", memoryview(bytes(100))[::2]])
    with pytest.raises(TypeError):
        md5lanes.hexdigests([b"a", "text"])  # type: ignore[list-item]


def test_files_are_hashed_from_their_maps(tmp_path):
    sizes = [0, 1, 63, 64, 300_000, 5]
    paths = []
    for size in sizes:
        paths.append(tmp_path / f"f{size}")
        paths[-1].write_bytes(data(size, size))
    assert md5lanes.file_hexdigests(paths) == expected(p.read_bytes() for p in paths)
    with pytest.raises(FileNotFoundError):
        md5lanes.file_hexdigests([paths[0], tmp_path / "missing"])


def test_lanes_are_available_where_the_extension_finds_avx2():
    if md5lanes._md5lanes is None:
        assert md5lanes.LANES_AVAILABLE is False
    else:
        assert md5lanes._md5lanes.avx2() == md5lanes.LANES_AVAILABLE
        assert md5lanes._md5lanes.LANES == md5lanes.LANES == 8
        flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        if flags:
            assert (" avx2" in flags) == md5lanes.LANES_AVAILABLE


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def summary(outcomes) -> list[tuple]:
    """What shard results say, each checked to be one."""
    assert all(isinstance(outcome, shard_plan.ShardResult) for outcome in outcomes)
    return [(r.index, r.samples, r.bytes, r.md5, r.skipped) for r in outcomes]


def tasks(count: int) -> list[ShardTask]:
    return [ShardTask(index=i, name=f"s-{i:05d}.msgpack", items=()) for i in range(count)]


@pytest.mark.parametrize(
    ("count", "workers", "sizes"),
    [
        (20, 2, [5, 5, 5, 5]),
        (16, 2, [8, 8]),
        (17, 2, [5, 4, 4, 4]),
        (3, 2, [2, 1]),
        (1, 4, [1]),
        (9, 1, [5, 4]),
        (100, 2, [8, 8] + [7] * 12),
        (0, 2, []),
    ],
)
def test_groups_are_runs_of_at_most_eight_balanced_over_workers(count, workers, sizes):
    planned = tasks(count)
    groups = plan_groups(planned, workers)
    if not md5lanes.LANES_AVAILABLE:
        sizes = [1] * count
    assert [len(group) for group in groups] == sizes
    assert [task for group in groups for task in group] == planned


def test_a_writer_hashed_by_its_caller_writes_raw_writers_files(tmp_path):
    samples = [(f"k{i}", data(i * 37 % 5000, i)) for i in range(40)]
    with RawWriter(tmp_path / "raw" / "a.msgpack", disable=True) as raw:
        for key, packed in samples:
            raw.write(key, packed)
    writer = InPlaceWriter(tmp_path / "later" / "a.msgpack", 1000, disable=True, hash_data=False)
    for key, packed in samples:
        writer.write(key, packed)
    staged = writer.close_data()
    assert staged.parent == tmp_path / "later" and staged != writer.path
    assert writer.close_data() == staged  # once closed, the same file
    with pytest.raises(WriterClosedError):
        writer.write("more", b"x")
    (md5,) = md5lanes.file_hexdigests([staged])
    writer.close(data_md5=md5)
    files = {p.name: p.read_bytes() for p in sorted((tmp_path / "raw").iterdir())}
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "later").iterdir())} == files


def test_a_writer_hashed_by_its_caller_needs_the_md5(tmp_path):
    writer = InPlaceWriter(tmp_path / "a.msgpack", disable=True, hash_data=False)
    writer.write("k", b"\x90")
    with pytest.raises(ConfigError):
        writer.close()
    assert os.listdir(tmp_path) == []  # aborted: nothing left


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return demo_tree(tmp_path_factory.mktemp("md5lanes-demo"))


def test_a_group_of_shards_writes_the_files_of_shards_written_one_by_one(tree, tmp_path):
    items = make_items(tree, 14)
    planned = shard_plan.plan_shards(items, "set", 4)  # 4, 4, 4, 2 items
    one, group = tmp_path / "one", tmp_path / "group"
    one.mkdir()
    group.mkdir()
    singles = [shard_plan.write_shard(task, OPTIONS, "raise", os.fspath(one)) for task in planned]
    together = shard_plan.write_shards(planned, OPTIONS, "raise", os.fspath(group))
    assert summary(together) == summary(singles)
    assert folder_files(group) == folder_files(one)
    for task in planned:  # --resume trusts each of them
        assert shard_plan.finished_shard(task, group) is not None


def test_a_bad_source_ends_the_group_after_its_earlier_shards(tree, tmp_path):
    items = make_items(tree, 12, bad=frozenset({5}))
    planned = shard_plan.plan_shards(items, "set", 4)
    outcomes = shard_plan.write_shards(planned, OPTIONS, "raise", os.fspath(tmp_path))
    assert len(outcomes) == 2
    first, error = outcomes
    assert isinstance(first, shard_plan.ShardResult) and first.samples == 4
    assert isinstance(error, BadSourceError) and error.source == "source-5"
    assert shard_plan.finished_shard(planned[0], tmp_path) is not None
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        ["set-00000.msgpack.done.json"] + [f"set-00000.{s}" for s in SHARD_FILES]
    )
