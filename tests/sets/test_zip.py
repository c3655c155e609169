"""The zip converter: members as samples, unsafe names refused, corrupt members reported."""

from __future__ import annotations

import zipfile

import pytest

from shardstream import MsgpackReader
from shardstream.errors import (
    BadSourceError,
    DatasetFormatError,
    DatasetNotFoundError,
    NothingToConvertError,
    UnsafeSourcePathError,
)
from shardstream.sets.zip import scan_zip
from shardstream.write.conversion import convert
from tests.write.demo_tree import CLASS_NAMES, demo_tree, jpeg, tree_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tree_files(demo_tree(tmp_path_factory.mktemp("demo")))


def make_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_members_become_samples_in_archive_order(files, tmp_path):
    archive = make_zip(tmp_path / "a.zip", files)
    scan = scan_zip(archive, class_names=True)
    assert [i.key for i in scan.items] == list(files)
    assert [i.label for i in scan.items] == [CLASS_NAMES.index(k.split("/")[0]) for k in files]
    assert [i.source for i in scan.items] == [f"{archive}:{k}" for k in files]
    assert scan.label_names == tuple(CLASS_NAMES)
    convert(scan.items, tmp_path / "z.msgpack", workers=2, progress=False)
    with MsgpackReader(tmp_path / "z.msgpack") as reader:
        samples = list(reader)
    assert [s["image"] for s in samples] == list(files.values())
    assert [s["class_name"] for s in samples] == [k.split("/")[0] for k in files]


def test_pattern_key_drops_components_before_the_label(tmp_path):
    archive = make_zip(
        tmp_path / "b.zip",
        {"data/train/b10/1.jpg": b"1", "data/train/b2/2.jpg": b"2", "data/val/b2/3.jpg": b"3"},
    )
    scan = scan_zip(archive, pattern="data/train/{LABEL}/*")
    assert [(i.key, i.label) for i in scan.items] == [("b10/1.jpg", 1), ("b2/2.jpg", 0)]
    assert scan.label_names == ("b2", "b10")


UNSAFE = ["../evil.jpg", "cat/../../x.jpg", "/abs/y.jpg"]


def unsafe_archive(tmp_path, files):
    members = dict(list(files.items())[:4])
    for name in UNSAFE:
        members[name] = jpeg((8, 8))
    return make_zip(tmp_path / "u.zip", members), list(members)[:4]


@pytest.mark.parametrize("workers", [1, 2])
def test_unsafe_members_are_refused_under_raise(files, tmp_path, workers):
    archive, _ = unsafe_archive(tmp_path, files)
    scan = scan_zip(archive)
    assert [i.key for i in scan.items[:3]] == UNSAFE
    assert ".." not in scan.label_names and "" not in scan.label_names
    out = tmp_path / "out"
    with pytest.raises(UnsafeSourcePathError) as caught:
        convert(scan.items, out / "u.msgpack", workers=workers, progress=False)
    assert caught.value.source == f"{archive}:../evil.jpg"
    assert "unsafe member name '../evil.jpg'" in str(caught.value)
    assert not out.exists() or list(out.iterdir()) == []
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_unsafe_members_are_listed_under_skip(files, tmp_path):
    archive, safe = unsafe_archive(tmp_path, files)
    report = convert(
        scan_zip(archive).items, tmp_path / "u.msgpack", on_error="skip", progress=False
    )
    assert [s.source for s in report.skipped] == [f"{archive}:{name}" for name in UNSAFE]
    assert "it is absolute" in report.skipped[2].reason
    assert "'..' would escape" in report.skipped[0].reason
    with MsgpackReader(tmp_path / "u.msgpack") as reader:
        assert [s["key"] for s in reader] == safe


def test_corrupt_member_is_a_bad_source(tmp_path):
    good = jpeg((16, 16))
    archive = make_zip(
        tmp_path / "c.zip", {"cat/a.jpg": good, "cat/b.jpg": good}, zipfile.ZIP_STORED
    )
    data = bytearray(archive.read_bytes())
    position = data.rindex(good) + 100  # inside the second member's stored bytes
    data[position] ^= 0xFF
    archive.write_bytes(bytes(data))
    report = convert(
        scan_zip(archive).items, tmp_path / "c.msgpack", on_error="skip", progress=False
    )
    assert report.written == 1
    assert report.skipped[0].source == f"{archive}:cat/b.jpg"
    assert report.skipped[0].reason.startswith("corrupt archive member: Bad CRC-32")
    with pytest.raises(BadSourceError, match="Bad CRC-32"):
        convert(scan_zip(archive).items, tmp_path / "d.msgpack", progress=False, workers=1)


def test_missing_empty_and_non_zip_archives(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        scan_zip(tmp_path / "missing.zip")
    (tmp_path / "not.zip").write_bytes(b"hello")
    with pytest.raises(DatasetFormatError, match="not a valid ZIP file"):
        scan_zip(tmp_path / "not.zip")
    make_zip(tmp_path / "e.zip", {"top.jpg": b"x"})
    with pytest.raises(NothingToConvertError, match="no member matches"):
        scan_zip(tmp_path / "e.zip")
