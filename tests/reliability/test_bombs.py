"""Decompression bombs and oversized samples are refused before they are read in full (issue 14.5).

The old code read a zip member, a tar.gz member or a file whole, whatever its size: a 1.1 MB zip
took 1.96 GB of memory, and a JPEG header followed by zeros was packed as one sample.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from shardstream import MsgpackReader
from shardstream.errors import BadSourceError, SampleTooLargeError, SourceTooLargeError
from shardstream.read import ZipFileReader
from shardstream.sets.imagefolder import scan_folder
from shardstream.sets.webdataset import webdataset_items
from shardstream.sets.zip import scan_zip
from shardstream.write.conversion import convert
from shardstream.write.loaders import DEFAULT_MAX_SAMPLE_BYTES, read_file
from shardstream.write.transcode import ImageFault, check_image
from tests.reliability.hostile_sources import (
    assert_clean_failure,
    cli,
    jpeg,
    make_tar,
    zip_of_zeros,
)

MiB = 1 << 20


def test_zip_member_past_the_sample_limit_is_refused_unread(tmp_path):
    good = jpeg((16, 16))
    bomb = zip_of_zeros(tmp_path / "b.zip", "cat/bomb.jpg", 4 * MiB, extra={"cat/ok.jpg": good})
    items = scan_zip(bomb, max_sample_bytes=MiB).items
    with pytest.raises(SourceTooLargeError, match=r"b\.zip:cat/bomb\.jpg: 4,194,304 bytes") as e:
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1)
    assert isinstance(e.value, SampleTooLargeError) and isinstance(e.value, BadSourceError)
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 1
    assert [s.source for s in report.skipped] == [f"{bomb}:cat/bomb.jpg"]
    assert "--max-sample-bytes" in report.skipped[0].reason
    with MsgpackReader(tmp_path / "o.msgpack") as reader:
        assert [(s["key"], s["image"]) for s in reader] == [("cat/ok.jpg", good)]


def test_zip_member_past_the_ratio_is_refused_with_the_default_limits(tmp_path):
    bomb = zip_of_zeros(tmp_path / "r.zip", "cat/bomb.jpg", 2 * MiB)
    with pytest.raises(SourceTooLargeError, match=r"compression ratio past 100:1"):
        convert(scan_zip(bomb).items, tmp_path / "o.msgpack", progress=False, workers=1)
    # a raised limit lets it through to the image check, which refuses zeros as no image
    items = scan_zip(bomb, max_ratio=10_000).items
    with pytest.raises(BadSourceError, match="not an image") as e:
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1)
    assert type(e.value) is BadSourceError
    # a small blank member (under the 1 MiB floor) is never refused for its ratio
    small = zip_of_zeros(tmp_path / "s.zip", "cat/small.jpg", 512 << 10)
    with ZipFileReader(small) as reader:
        assert reader.get(0)["data"] == bytes(512 << 10)


def test_zip_reader_applies_the_member_limits(tmp_path):
    bomb = zip_of_zeros(tmp_path / "b.zip", "cat/bomb.jpg", 3 * MiB)
    limited = ZipFileReader(bomb, max_member_bytes=MiB, max_ratio=1e9)
    with limited, pytest.raises(SourceTooLargeError, match=r"b\.zip:cat/bomb\.jpg: 3,145,728"):
        limited.get(0)
    with ZipFileReader(bomb) as reader, pytest.raises(SourceTooLargeError, match="ratio"):
        reader.get(0)


def test_zip_member_whose_header_understates_its_size_is_refused(tmp_path):
    bomb = zip_of_zeros(tmp_path / "lie.zip", "cat/bomb.jpg", 3 * MiB)
    with open(bomb, "rb") as f:
        data = bytearray(f.read())
    claimed = (3 * MiB).to_bytes(4, "little")
    assert data.count(claimed) == 2  # the local header and the central directory
    data = data.replace(claimed, (1000).to_bytes(4, "little"))
    with open(bomb, "wb") as f:
        f.write(data)
    items = scan_zip(bomb, max_sample_bytes=2000).items
    with pytest.raises(BadSourceError, match=r"lie\.zip:cat/bomb\.jpg: corrupt archive member"):
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1)


def test_tar_gz_member_past_the_sample_limit_is_skipped_unread(tmp_path):
    good = jpeg((16, 16))
    shard = make_tar(
        tmp_path / "b.tar.gz",
        [("a.jpg", good), ("a.cls", b"1"), ("b.jpg", bytes(3 * MiB)), ("c.jpg", good)],
        "w:gz",
    )
    items = webdataset_items([shard], max_sample_bytes=MiB, max_ratio=1e9)
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 2
    assert [(s.source, s.reason.split(",")[0]) for s in report.skipped] == [(f"{shard}:b", "3")]
    assert report.skipped[0].reason.startswith("3,145,728 bytes, larger than the largest sample")
    items = webdataset_items([shard], max_sample_bytes=MiB, max_ratio=1e9)
    with pytest.raises(SourceTooLargeError, match=r"b\.tar\.gz:b: 3,145,728 bytes"):
        convert(items, tmp_path / "p.msgpack", progress=False, workers=1)


def test_tar_gz_expanding_past_the_ratio_stops_the_conversion(tmp_path):
    shard = make_tar(tmp_path / "z.tar.gz", [("a.jpg", bytes(3 * MiB))], "w:gz")
    assert os.path.getsize(shard) < 20_000
    with pytest.raises(SourceTooLargeError, match=r"z\.tar\.gz: expands past .* more than 100"):
        # found by the listing pass, before anything is written
        items = webdataset_items([shard], max_sample_bytes=64 * MiB)
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert not (tmp_path / "o.msgpack").exists()


def test_plain_tar_member_past_the_sample_limit_is_refused(tmp_path):
    shard = make_tar(tmp_path / "p.tar", [("a.jpg", jpeg((8, 8))), ("b.jpg", bytes(2 * MiB))])
    items = webdataset_items([shard], max_sample_bytes=MiB)
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 1
    assert [s.source for s in report.skipped] == [f"{shard}:b"]
    assert report.skipped[0].reason.startswith("2,097,152 bytes or more, larger than")


def test_jpeg_header_followed_by_zeros_is_not_an_image(tmp_path):
    image = jpeg((32, 24))
    padded = image[:-2] + bytes(8 * MiB) + b"\xff\xd9"
    check_image(image)
    with pytest.raises(ImageFault) as e:
        check_image(padded)
    assert str(e.value).startswith(
        f"JPEG too large for its frame: {len(padded):,} bytes, while 32x24 pixels with 3 "
        "components take at most 4,2"
    )
    (tmp_path / "root" / "cat").mkdir(parents=True)
    (tmp_path / "root" / "cat" / "padded.jpg").write_bytes(padded)
    (tmp_path / "root" / "cat" / "ok.jpg").write_bytes(image)
    items = scan_folder(tmp_path / "root").items
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 1
    assert [s.source for s in report.skipped] == [str(tmp_path / "root" / "cat" / "padded.jpg")]


def test_default_sample_limit_refuses_a_huge_sparse_file_without_reading_it(tmp_path):
    path = tmp_path / "root" / "cat" / "huge.jpg"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:  # a sparse file: 300 MiB long, nothing allocated
        f.write(jpeg((8, 8))[:-2])
        f.truncate(300 * MiB)
    with pytest.raises(SourceTooLargeError, match=r"huge\.jpg: 314,572,800 bytes or more"):
        read_file(str(path))
    assert 256 * MiB == DEFAULT_MAX_SAMPLE_BYTES
    result = cli("write", "imagefolder", str(tmp_path / "root"), "-o", str(tmp_path / "o.msgpack"))
    line = assert_clean_failure(result, str(path))
    assert "larger than the largest sample allowed (268,435,456 bytes" in line
    raised = cli(
        "write", "imagefolder", str(tmp_path / "root"), "-o", str(tmp_path / "o.msgpack"),
        "--max-sample-bytes", "400M",
    )  # fmt: skip
    assert_clean_failure(raised, str(path), "JPEG too large for its frame")


def test_default_limits_keep_peak_memory_low_on_a_zip_bomb(tmp_path):
    """A zip of 300 MiB of zeros (~300 KB) converted with the default limits, measured in a fresh
    process: the old code decompressed the whole member (peak RSS > 300 MiB)."""
    bomb = zip_of_zeros(tmp_path / "bomb.zip", "cat/bomb.jpg", 300 * MiB)
    assert os.path.getsize(bomb) < 1 * MiB
    script = textwrap.dedent(
        f"""
        import resource
        from shardstream.errors import BadSourceError
        from shardstream.sets.zip import scan_zip
        from shardstream.write.conversion import convert
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            convert(scan_zip({bomb!r}).items, {str(tmp_path / "o.msgpack")!r}, workers=1,
                    progress=False)
        except BadSourceError as e:
            print(type(e).__name__, e)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before, after)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    error, sizes = result.stdout.splitlines()
    before, after = map(int, sizes.split())  # KiB on Linux
    assert after - before < 32 * 1024, (before, after)  # well under the 300 MiB member
    assert error.startswith("SourceTooLargeError ") and "cat/bomb.jpg" in error


def test_cli_refuses_bombs_with_one_line_and_the_flag_to_raise_the_limit(tmp_path):
    bomb = zip_of_zeros(tmp_path / "b.zip", "cat/bomb.jpg", 2 * MiB)
    out = str(tmp_path / "o.msgpack")
    line = assert_clean_failure(cli("write", "zip", bomb, "-o", out), f"{bomb}:cat/bomb.jpg")
    assert "compression ratio past 100:1" in line and "--max-ratio" in line
    line = assert_clean_failure(
        cli("write", "zip", bomb, "-o", out, "--max-ratio", "5000", "--max-sample-bytes", "1M"),
        f"{bomb}:cat/bomb.jpg",
    )
    assert "2,097,152 bytes, more than the largest sample allowed (1,048,576 bytes" in line
    shard = make_tar(tmp_path / "z.tar.gz", [("a.jpg", bytes(3 * MiB))], "w:gz")
    line = assert_clean_failure(cli("write", "webdataset", shard, "-o", out, "--quiet"), shard)
    assert "more than 100 times its compressed size" in line and "--max-ratio" in line
    raised = cli("write", "webdataset", shard, "-o", out, "--quiet", "--max-ratio", "1e6")
    assert "not an image" in assert_clean_failure(raised, f"{shard}:a")
    usage = cli("write", "zip", bomb, "-o", out, "--max-ratio", "0.5")
    assert usage.returncode == 2 and "must be at least 1" in usage.stderr
