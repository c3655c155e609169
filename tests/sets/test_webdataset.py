"""The webdataset converter: tar shards grouped by key, labels from .cls, brace patterns."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from shardstream import MsgpackReader
from shardstream.errors import BadSourceError, DuplicateKeyError, SourceNotFoundError
from shardstream.sets.webdataset import (
    expand_braces,
    find_shards,
    split_member_name,
    webdataset_items,
)
from shardstream.write.conversion import convert
from tests.write.demo_tree import jpeg, png


def make_tar(path, members: list[tuple[str, bytes]], mode: str = "w") -> str:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def shard_members(first: int, count: int) -> tuple[list[tuple[str, bytes]], dict[str, tuple]]:
    members, expected = [], {}
    for index in range(first, first + count):
        key = f"train/s{index:04d}"
        image = jpeg((10 + index, 8), seed=index) if index % 2 else png((8, 9 + index))
        extension = "jpg" if index % 2 else "PNG"  # extensions compare in lower case
        members += [
            (f"{key}.{extension}", image),
            (f"{key}.cls", f"{index % 3}\n".encode()),
            (f"{key}.json", b'{"ignored": true}'),
        ]
        expected[key] = (image, index % 3)
    return members, expected


@pytest.fixture
def shards(tmp_path):
    expected = {}
    for number in range(3):
        members, part = shard_members(number * 4, 4)
        make_tar(tmp_path / f"shard-{number:02d}.tar", members)
        expected.update(part)
    return tmp_path, expected


def convert_items(items, output):
    convert(items, output, workers=2, progress=False)
    with MsgpackReader(output) as reader:
        return {s["key"]: (s["image"], s["label"]) for s in reader}, [s["key"] for s in reader]


def test_samples_grouped_by_key_with_cls_labels(shards):
    root, expected = shards
    paths = find_shards([str(root / "shard-{00..02}.tar")])
    assert paths == [str(root / f"shard-{i:02d}.tar") for i in range(3)]
    items = webdataset_items(paths)
    assert isinstance(items, list)
    assert items[0].source == f"{paths[0]}:train/s0000"
    samples, order = convert_items(items, root / "w.msgpack")
    assert order == list(expected) and samples == expected


def test_compressed_shards_are_read_in_order(shards, tmp_path):
    root, expected = shards
    for number in range(3):
        with tarfile.open(root / f"shard-{number:02d}.tar") as source:
            members = [(m.name, source.extractfile(m).read()) for m in source]
        make_tar(tmp_path / f"z-{number}.tar.gz", members, "w:gz")
    items = webdataset_items(find_shards([str(tmp_path / "z-*.tar.gz")]), all_members=False)
    assert isinstance(items, list)  # listed once, up front, as uncompressed tars are
    samples, order = convert_items(items, tmp_path / "z.msgpack")
    assert order == list(expected) and samples == expected


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_compressed_tars_are_split_by_member_with_the_same_output(tmp_path, compression):
    """Each member of a compressed tar is read where its item is converted (not by the
    listing process), by a reader that decompresses forward; the output equals the
    uncompressed tar's byte for byte, whatever the number of workers."""
    members, _ = shard_members(0, 40)
    members = [(name, data * (1 + 2000 // len(data))) if name.endswith(".json") else (name, data)
               for name, data in members]  # fmt: skip
    plain = make_tar(tmp_path / "s.tar", members)
    packed = make_tar(tmp_path / f"s.tar.{compression}", members, f"w:{compression}")
    reference = webdataset_items([plain])
    items = webdataset_items([packed])
    assert [(i.key, i.label) for i in items] == [(i.key, i.label) for i in reference]
    loads = {item.load.args[2][-1][1].func.__name__ for item in items}  # the .json member's
    assert loads == {"read_stream_range"}
    convert(reference, tmp_path / "plain.msgpack", workers=1, progress=False)
    for workers in (1, 3):
        convert(items, tmp_path / f"{workers}.msgpack", workers=workers, progress=False)
        assert (tmp_path / f"{workers}.msgpack").read_bytes() == (
            tmp_path / "plain.msgpack"
        ).read_bytes()
    # damaged data is found by the listing pass, which reads the whole stream (and its CRC)
    data = Path(packed).read_bytes()
    damaged = bytearray(data)
    damaged[len(data) // 3 : len(data) // 3 + 64] = bytes(range(64))
    Path(tmp_path / f"d.tar.{compression}").write_bytes(bytes(damaged))
    with pytest.raises(BadSourceError, match=r"d\.tar\.\w+: not a readable tar file"):
        webdataset_items([str(tmp_path / f"d.tar.{compression}")])
    if compression != "gz":
        return  # one bzip2 or xz block: a cut tar loses every member
    # a tar cut short after it was listed: the members past the end are bad sources
    Path(packed).write_bytes(data[: len(data) // 2])
    os.utime(packed, ns=(1, 1))  # a changed file, also within the clock's resolution
    report = convert(items, tmp_path / "t.msgpack", workers=1, progress=False, on_error="skip")
    assert 0 < len(report.skipped) < 40 and report.written == 40 - len(report.skipped)
    assert all(s.source.startswith(f"{packed}:") for s in report.skipped)
    assert {s.reason.split(":")[0] for s in report.skipped} <= {
        "damaged compressed data",
        "truncated",
    }


def test_samples_without_image_or_with_a_bad_label_are_bad_sources(tmp_path):
    members = [
        ("a.jpg", jpeg((8, 8))),
        ("a.cls", b"1"),
        ("b.txt", b"caption only"),
        ("c.jpeg", jpeg((9, 9))),
        ("c.cls", b"cat"),
        ("d.webp", b"not really webp"),
        ("noext", b"ignored"),
        ("__meta__.json", b"ignored"),
    ]
    shard = make_tar(tmp_path / "bad.tar", members)
    items = webdataset_items([shard])
    assert [i.key for i in items] == ["a", "b", "c", "d"]
    with pytest.raises(BadSourceError, match=r"bad\.tar:b: no image member"):
        convert(items, tmp_path / "o.msgpack", progress=False)
    report = convert(items, tmp_path / "o.msgpack", progress=False, on_error="skip")
    assert report.written == 1
    assert [(s.source, s.reason) for s in report.skipped] == [
        (f"{shard}:b", "no image member (.jpg, .jpeg, .png, .webp) among .txt"),
        (f"{shard}:c", "the .cls member (3 bytes) is not an integer label"),
        (f"{shard}:d", "not an image (no image format recognised in its 15 bytes)"),
    ]


def test_repeated_keys_across_shards_need_a_prefix(tmp_path):
    one = make_tar(tmp_path / "one.tar", [("k.jpg", jpeg((8, 8))), ("k.cls", b"0")])
    two = make_tar(tmp_path / "two.tar", [("k.jpg", jpeg((9, 9))), ("k.cls", b"1")])
    with pytest.raises(DuplicateKeyError, match="--prefix-shard"):
        webdataset_items([one, two])
    items = webdataset_items([one, two], prefix_shard=True)
    assert [(i.key, i.label) for i in items] == [("one.tar/k", 0), ("two.tar/k", 1)]


def test_brace_patterns_expand_as_webdataset_does_with_braceexpand(tmp_path):
    assert expand_braces("s-{a,{b,c}}.tar") == ["s-a.tar", "s-b.tar", "s-c.tar"]
    assert expand_braces("{a..c}{0..10..5}") == [
        "a0",
        "a5",
        "a10",
        "b0",
        "b5",
        "b10",
        "c0",
        "c5",
        "c10",
    ]
    assert expand_braces("{-1..1}") == ["-1", "0", "1"]
    assert expand_braces("odd{name.tar") == ["odd{name.tar"]  # unbalanced: a literal name
    assert expand_braces("back\\slash{1,2}") == ["back\\slash1", "back\\slash2"]
    (tmp_path / "odd{name.tar").write_bytes(b"")
    assert find_shards([str(tmp_path / "odd{name.tar")]) == [str(tmp_path / "odd{name.tar")]


def test_shard_patterns_and_member_names(tmp_path):
    assert expand_braces("s-{000..003}.tar") == [f"s-{i:03d}.tar" for i in range(4)]
    assert expand_braces("{a,b}/{1..2}") == ["a/1", "a/2", "b/1", "b/2"]
    assert expand_braces("{9..7}") == ["9", "8", "7"]
    assert expand_braces("x{}y{z}") == ["x{}y{z}"]
    assert split_member_name("dir.v1/n01_10026.seg.png") == ("dir.v1/n01_10026", "seg.png")
    assert split_member_name("dir/noext") is None
    with pytest.raises(SourceNotFoundError, match="tar file not found"):
        find_shards([str(tmp_path / "missing-{0..1}.tar")])
    with pytest.raises(SourceNotFoundError, match="no tar file matches"):
        find_shards([str(tmp_path / "*.tar")])
    (tmp_path / "broken.tar").write_bytes(b"\x1f\x8b" + b"not gzip at all" * 40)
    with pytest.raises(BadSourceError, match="broken.tar: not a readable tar file"):
        list(webdataset_items([str(tmp_path / "broken.tar")]))
