"""Whole-shard tasks build each sample in place in the writer's buffer (InPlaceWriter): the files
equal RawWriter's byte for byte, file sources of every kind (bad ones included) give the
streamed engine's output and reports, and the JPEG check reads a buffer region as it reads bytes.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import SampleTooLargeError, WriterClosedError
from shardstream.write import RawWriter
from shardstream.write.conversion import Item, convert
from shardstream.write.loaders import given_bytes, read_file
from shardstream.write.shard_plan import ShardTask
from shardstream.write.shard_writer import InPlaceWriter
from shardstream.write.transcode import ImageFault, check_image, check_image_in
from tests.write.demo_tree import jpeg, png


def files_of(folder: Path) -> dict[str, bytes]:
    """Every visible file of a folder, by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


@settings(max_examples=30, deadline=None)
@given(
    samples=st.lists(st.tuples(st.binary(max_size=300), st.booleans()), min_size=0, max_size=24),
    buffering=st.integers(1, 200),
)
def test_in_place_writer_writes_raw_writers_files(tmp_path_factory, samples, buffering):
    """Samples built in place, or given to write(), in buffers smaller and larger than them."""
    folder = tmp_path_factory.mktemp("in-place")
    with RawWriter(folder / "raw" / "a.msgpack", disable=True) as raw:
        for index, (data, _) in enumerate(samples):
            raw.write(f"k{index}", data)
    with InPlaceWriter(folder / "ours" / "a.msgpack", buffering, disable=True) as ours:
        for index, (data, in_place) in enumerate(samples):
            if in_place:
                buffer, start = ours.room(len(data) + 3)  # more room than it takes
                buffer[start : start + len(data)] = data
                ours.append_room(f"k{index}", len(data))
            else:
                ours.write(f"k{index}", data)
        assert ours.bytes_written == sum(len(data) for data, _ in samples)
    assert files_of(folder / "ours") == files_of(folder / "raw")


def test_in_place_writer_refuses_more_than_the_room_lent_and_a_closed_writer(tmp_path):
    writer = InPlaceWriter(tmp_path / "a.msgpack", 64, disable=True)
    buffer, start = writer.room(10)
    with pytest.raises(SampleTooLargeError):
        writer.append_room("k", len(buffer) - start + 1)
    writer.close()
    with pytest.raises(WriterClosedError):
        writer.room(1)
    with pytest.raises(WriterClosedError):
        writer.append_room("k", 1)


def file_sources(folder: Path) -> list[Item]:
    """Items read with read_file: good JPEGs and PNGs, and every kind of bad file."""
    folder.mkdir()
    good = jpeg((40, 30))
    files = {
        "good.jpg": good,
        "big.jpg": jpeg((300, 200), seed=3),
        "image.png": png((20, 10)),
        "empty.jpg": b"",
        "truncated.jpg": good[: len(good) // 2],
        "headers-cut.jpg": good[:40],
        "text.jpg": b"plain text, not an image",
        "corrupt-marker.jpg": good[:2] + b"\xff\xe0\x00\x02\x00" + good[7:],
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "a-directory").mkdir()
    names = [*files, "a-directory", "missing.jpg", "good.jpg", "big.jpg"]
    items = []
    for index, name in enumerate(names):
        path = os.fspath(folder / name)
        limit = {"max_bytes": 1000} if index == len(names) - 1 else {}  # the last: too large
        label = None if index % 3 == 0 else index
        fields = {"class_name": f"c{index}"} if index % 2 else {}
        load = functools.partial(read_file, path, **limit)
        items.append(Item(f"k{index:02d}", label, path, load, fields))
    return items


@pytest.mark.parametrize("workers", [1, 2])
def test_file_sources_written_in_place_give_the_streamed_engines_files(tmp_path, workers):
    items = file_sources(tmp_path / "sources")
    options = {"shard_samples": 3, "on_error": "skip", "progress": False, "overwrite": True}
    streamed = convert(items, tmp_path / "streamed" / "set.manifest", whole_shards=False, **options)
    whole = convert(
        items, tmp_path / "whole" / "set.manifest", whole_shards=True, workers=workers, **options
    )
    assert files_of(tmp_path / "whole") == files_of(tmp_path / "streamed")
    assert whole.skipped == streamed.skipped
    assert (whole.written, whole.bytes) == (streamed.written, streamed.bytes)
    reasons = " | ".join(s.reason for s in whole.skipped)
    for expected in ("empty file", "truncated JPEG", "regular file", "No such file", "larger"):
        assert expected in reasons


def fault(check, *args) -> str | None:
    try:
        check(*args)
    except ImageFault as error:
        return str(error)
    return None


@settings(max_examples=150, deadline=None)
@given(
    cut=st.integers(0, 700),
    flip=st.integers(0, 700),
    value=st.integers(0, 255),
    before=st.binary(max_size=5),
    after=st.binary(max_size=5),
)
def test_the_jpeg_check_of_a_buffer_region_equals_the_check_of_its_bytes(
    cut, flip, value, before, after
):
    data = bytearray(jpeg((30, 20))[:cut])
    if flip < len(data):
        data[flip] = value
    data = bytes(data)
    buffer = bytearray(before + data + after)
    expected = fault(check_image, data)
    assert fault(check_image_in, buffer, len(before), len(before) + len(data)) == expected


def load_of(item: Item) -> tuple:
    load = item.load
    return (load.func, load.args, load.keywords) if isinstance(load, functools.partial) else load


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["plain", "limit", "other-limit", "fields"]), max_size=12),
    odd=st.booleans(),
)
def test_a_shard_task_pickles_to_the_same_items(kinds, odd):
    items = []
    for index, kind in enumerate(kinds):
        source = f"/images/{index}.jpg"
        limit = {"limit": {"max_bytes": 500}, "other-limit": {"max_bytes": 7}}.get(kind, {})
        load = functools.partial(read_file, source, **limit)
        fields = {"class_name": f"c{index}"} if kind == "fields" else {}
        items.append(Item(f"k{index}", None if index % 3 else index, source, load, fields))
    if odd and items:  # one item of another kind: the whole task is pickled as items
        items[-1] = Item("odd", 1, "odd", functools.partial(given_bytes, b"x"))
    task = ShardTask(index=3, name="set-00003.msgpack", items=tuple(items))
    copy = pickle.loads(pickle.dumps(task))
    assert (copy.index, copy.name) == (task.index, task.name)
    assert [(i.key, i.label, i.source, i.fields, load_of(i)) for i in copy.items] == [
        (i.key, i.label, i.source, i.fields, load_of(i)) for i in task.items
    ]
