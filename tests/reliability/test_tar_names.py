"""Tar members named ``../x`` or ``/abs`` are refused like unsafe zip members, by the same check,
and a member name that is not UTF-8 is a typed bad source (issue 14.11, 14.9).

The old code made such members keys (``../x``, ``/etc/y``), while the zip converter refused them
with UnsafeSourcePathError; a non-UTF-8 name died in the writer with a UnicodeEncodeError.
"""

from __future__ import annotations

import os

import pytest

from shardstream import MsgpackReader
from shardstream.errors import BadSourceError, UnsafeSourcePathError
from shardstream.sets.imagefolder import scan_folder
from shardstream.sets.webdataset import webdataset_items
from shardstream.sets.zip import scan_zip
from shardstream.write.conversion import convert
from shardstream.write.loaders import unsafe_reason
from tests.reliability.hostile_sources import assert_clean_failure, cli, jpeg, make_tar, make_zip

IMAGE = jpeg((8, 8))
UNSAFE = ["../x.jpg", "/abs/y.jpg", "a/../../z.jpg"]


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_unsafe_tar_members_are_refused_like_zip_members(tmp_path, mode):
    shard = make_tar(
        tmp_path / ("s.tar" if mode == "w" else "s.tar.gz"),
        [("ok.jpg", IMAGE), ("ok.cls", b"3")] + [(name, IMAGE) for name in UNSAFE],
        mode,
    )
    items = list(webdataset_items([shard]))
    assert [i.key for i in items] == ["ok", *UNSAFE]
    with pytest.raises(UnsafeSourcePathError, match=r"s\.tar(\.gz)?:\.\./x\.jpg: unsafe member"):
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1)
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 1
    tar_reasons = [(s.source, s.reason) for s in report.skipped]
    assert tar_reasons == [(f"{shard}:{name}", unsafe_reason(name)) for name in UNSAFE]
    with MsgpackReader(tmp_path / "o.msgpack") as reader:
        assert [(s["key"], s["label"]) for s in reader] == [("ok", 3)]

    # the zip converter gives the same reasons for the same names
    archive = make_zip(tmp_path / "s.zip", {"cat/ok.jpg": IMAGE, **{n: IMAGE for n in UNSAFE}})
    zipped = scan_zip(archive, pattern="**").items
    report = convert(zipped, tmp_path / "z.msgpack", progress=False, workers=1, on_error="skip")
    assert sorted(s.reason for s in report.skipped) == sorted(r for _, r in tar_reasons)


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_non_utf8_member_name_is_a_typed_bad_source(tmp_path, mode):
    name = b"caf\xe9.jpg".decode("utf-8", "surrogateescape")
    shard = make_tar(
        tmp_path / ("n.tar" if mode == "w" else "n.tar.gz"),
        [(name, IMAGE), ("ok.jpg", IMAGE)],
        mode,
    )
    items = list(webdataset_items([shard]))
    with pytest.raises(BadSourceError, match=r"caf\\xe9\.jpg. is not valid UTF-8") as e:
        convert(items, tmp_path / "o.msgpack", progress=False, workers=1)
    assert e.value.source == f"{shard}:caf\\xe9.jpg"
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 1
    assert [s.source for s in report.skipped] == [f"{shard}:caf\\xe9.jpg"]
    assert report.report.read_text(encoding="utf-8").count("caf\\xe9.jpg") == 2  # source, reason

    failed = cli("write", "webdataset", shard, "-o", str(tmp_path / "c.msgpack"), "--quiet")
    assert_clean_failure(failed, "caf\\xe9.jpg", "not valid UTF-8")


def test_cli_refuses_unsafe_tar_member_without_traceback(tmp_path):
    shard = make_tar(tmp_path / "u.tar", [("ok.jpg", IMAGE), ("../evil.jpg", IMAGE)])
    failed = cli("write", "webdataset", shard, "-o", str(tmp_path / "o.msgpack"), "--quiet")
    assert_clean_failure(failed, f"{shard}:../evil.jpg", "'..' would escape")
    assert not (tmp_path / "o.msgpack").exists()


def test_non_utf8_file_name_in_a_folder_is_a_typed_bad_source(tmp_path):
    root = tmp_path / "root"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "ok.jpg").write_bytes(IMAGE)
    with open(os.path.join(os.fsencode(root / "cat"), b"caf\xe9.jpg"), "wb") as f:
        f.write(IMAGE)
    shown = f"{root / 'cat'}/caf\\xe9.jpg"
    items = scan_folder(root).items
    assert [i.key for i in items] == ["cat/caf\\xe9.jpg", "cat/ok.jpg"]
    report = convert(items, tmp_path / "o.msgpack", progress=False, workers=1, on_error="skip")
    assert report.written == 1
    assert [(s.source, s.reason) for s in report.skipped] == [
        (shown, "name 'cat/caf\\xe9.jpg' is not valid UTF-8, which sample keys must be; refused")
    ]
    failed = cli("write", "imagefolder", str(root), "-o", str(tmp_path / "c.msgpack"), "--quiet")
    assert_clean_failure(failed, shown, "not valid UTF-8")
