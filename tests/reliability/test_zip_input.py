"""A damaged ZIP file gives one typed error naming the file and the fault, at open and at read,
in the reader and in ``write zip`` (issue 14.9).

The old ZipFileReader let the stdlib's exceptions through: BadZipFile, zlib.error,
NotImplementedError, RuntimeError (encryption), ...
"""

from __future__ import annotations

import struct
import zipfile

import pytest

from shardstream.errors import BadSourceError, DatasetFormatError, ShardstreamError
from shardstream.read import ZipFileReader
from shardstream.sets.zip import scan_zip
from shardstream.write.conversion import convert
from tests.reliability.hostile_sources import assert_clean_failure, cli, jpeg, make_zip

IMAGE = jpeg((24, 24))


def damaged(tmp_path, name: str, patch) -> str:
    """cat/a.jpg (deflated) and cat/b.jpg; ``patch(bytearray, offsets)`` damages the second."""
    path = make_zip(tmp_path / name, {"cat/a.jpg": IMAGE, "cat/b.jpg": IMAGE})
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("cat/b.jpg")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    central = data.rindex(b"PK\x01\x02")  # the last central directory entry: cat/b.jpg
    patch(data, info.header_offset, central)
    with open(path, "wb") as f:
        f.write(data)
    return path


def set_method(data, local, central, method=99):
    struct.pack_into("<H", data, local + 8, method)
    struct.pack_into("<H", data, central + 10, method)


def set_encrypted(data, local, central):
    for offset in (local + 6, central + 8):
        flags = struct.unpack_from("<H", data, offset)[0]
        struct.pack_into("<H", data, offset, flags | 1)


def garble_deflate(data, local, central):
    start = local + 30 + struct.unpack_from("<HH", data, local + 26)[0]
    start += struct.unpack_from("<HH", data, local + 26)[1]
    data[start : start + 16] = b"\xff" * 16


def bad_header_offset(data, local, central):
    struct.pack_into("<I", data, central + 42, local + 7)


READ_FAULTS = {
    "method": (set_method, "compression method"),
    "encrypted": (set_encrypted, "encrypted"),
    "deflate": (garble_deflate, "cat/b.jpg"),
    "offset": (bad_header_offset, "Bad magic number"),
}


@pytest.mark.parametrize("fault", sorted(READ_FAULTS))
def test_damaged_member_raises_a_typed_error_naming_file_and_member(tmp_path, fault):
    patch, words = READ_FAULTS[fault]
    path = damaged(tmp_path, f"{fault}.zip", patch)
    with ZipFileReader(path) as reader:
        assert reader.get(0)["data"] == IMAGE
        with pytest.raises(DatasetFormatError) as e:
            reader.get(1)
    assert str(e.value).startswith(f"{path}: member 'cat/b.jpg': ")
    assert words in str(e.value)
    with pytest.raises(BadSourceError) as e:
        convert(scan_zip(path).items, tmp_path / "o.msgpack", progress=False, workers=1)
    assert e.value.source == f"{path}:cat/b.jpg"
    assert e.value.reason.startswith("corrupt archive member: ")
    failed = cli("write", "zip", path, "-o", str(tmp_path / "c.msgpack"), "--quiet")
    assert_clean_failure(failed, f"{path}:cat/b.jpg", "corrupt archive member")


def test_damaged_directory_raises_a_typed_error_at_open(tmp_path):
    path = make_zip(tmp_path / "t.zip", {"cat/a.jpg": IMAGE})
    with open(path, "rb") as f:
        data = f.read()
    for name, broken in {
        "cut.zip": data[: len(data) // 2],
        "count.zip": data[:-12] + struct.pack("<I", 1 << 31) + data[-8:],  # bad directory size
        "empty.zip": b"",
    }.items():
        bad = tmp_path / name
        bad.write_bytes(broken)
        with pytest.raises(DatasetFormatError, match=rf"{bad}: (not a valid|damaged) ZIP"):
            ZipFileReader(str(bad))
        with pytest.raises(ShardstreamError, match=str(bad)):
            scan_zip(bad)
        failed = cli("write", "zip", str(bad), "-o", str(tmp_path / "o.msgpack"), "--quiet")
        assert_clean_failure(failed, str(bad))
