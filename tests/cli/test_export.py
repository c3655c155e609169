"""``shardstream export`` and the importers on the command line: round trips, one-line errors."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from shardstream import MsgpackReader
from shardstream.cli import main
from shardstream.write import FileWriter
from tests.write.demo_tree import NOT_AN_IMAGE, jpeg, png

pytest.importorskip("pyarrow")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


SAMPLES = [
    {"key": "a/1.jpg", "image": jpeg((9, 7)), "label": 2, "caption": "x", "mask": png((9, 7)),
     "emb": np.ones(3, np.float16), "Meta": {"k": [1, None]}},
    {"key": "b", "image": png((4, 4)), "label": 0},
]  # fmt: skip


@pytest.fixture
def packed(tmp_path) -> Path:
    path = tmp_path / "set.msgpack"
    with FileWriter(path, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    return path


def read(path: Path) -> list[dict]:
    with MsgpackReader(path) as reader:
        return list(reader)


def test_export_webdataset_and_back(packed, tmp_path):
    code, out, err = run("export", "webdataset", str(packed), str(tmp_path / "wds"), "-q")
    assert (code, err) == (0, "") and "2 samples -> 1 tar shard(s)" in out
    shard = tmp_path / "wds" / "set-000000.tar"
    compressed = tmp_path / "set-000000.tar.gz"
    compressed.write_bytes(gzip.compress(shard.read_bytes()))
    # every member is kept by default, from a plain or a compressed tar
    for source in (shard, compressed):
        back_path = tmp_path / f"back-{source.name}.msgpack"
        code, _, err = run("write", "webdataset", str(source), "-o", str(back_path), "-q")
        assert (code, err) == (0, "")
        original, back = read(packed), read(back_path)
        assert len(back) == 2
        for a, b in zip(original, back, strict=True):
            assert set(a) == set(b)
            np.testing.assert_array_equal(a.pop("emb", np.zeros(0)), b.pop("emb", np.zeros(0)))
            assert a == b
    assert (tmp_path / f"back-{shard.name}.msgpack").read_bytes() == (
        tmp_path / f"back-{compressed.name}.msgpack"
    ).read_bytes()
    # --image-label-only: datadings-style samples; --all-members is the default's old name
    code, _, err = run(
        "write", "webdataset", "--image-label-only", str(compressed),
        "-o", str(tmp_path / "only.msgpack"), "-q",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert [sorted(s) for s in read(tmp_path / "only.msgpack")] == [["image", "key", "label"]] * 2
    code, _, err = run(
        "write", "webdataset", "--all-members", str(shard), "-o", str(tmp_path / "all.msgpack"),
        "-q",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert (tmp_path / "all.msgpack").read_bytes() == (
        tmp_path / f"back-{shard.name}.msgpack"
    ).read_bytes()


def test_export_parquet_and_back(packed, tmp_path):
    code, out, _ = run("export", "parquet", str(packed), str(tmp_path / "set.parquet"), "-q")
    assert code == 0 and out.strip().endswith("set.parquet")
    code, _, err = run(
        "write", "parquet", str(tmp_path / "set.parquet"), "-o", str(tmp_path / "back.msgpack"),
        "-q",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert [s["key"] for s in read(tmp_path / "back.msgpack")] == ["a/1.jpg", "b"]
    assert read(tmp_path / "back.msgpack")[1] == SAMPLES[1]


def test_mismatched_parquet_schemas_are_one_line_on_stderr(packed, tmp_path):
    run("export", "parquet", str(packed), str(tmp_path / "a.parquet"), "-q")
    other = tmp_path / "other.msgpack"
    with FileWriter(other, disable=True) as writer:
        writer.write({"key": "z", "image": 5})
    run("export", "parquet", str(other), str(tmp_path / "b.parquet"), "-q")
    code, _, err = run(
        "write", "parquet", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"),
        "-o", str(tmp_path / "x.msgpack"), "-q",
    )  # fmt: skip
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"shardstream write: error: {tmp_path / 'b.parquet'}: its schema ")
    assert not (tmp_path / "x.msgpack").exists()


def tar_with(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_corrupt_image_member_is_one_line_naming_the_shard_and_key(tmp_path):
    shard = tar_with(
        tmp_path / "s.tar",
        [("ok.jpg", jpeg((4, 4))), ("ok.cls", b"1"), ("bad.jpg", NOT_AN_IMAGE), ("bad.txt", b"t")],
    )
    code, _, err = run("write", "webdataset", str(shard), "-o", str(tmp_path / "x.msgpack"), "-q")
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"shardstream write: error: {shard}:bad: ")


def test_a_truncated_tar_is_one_line_naming_the_file(tmp_path):
    shard = tar_with(tmp_path / "s.tar", [("a.jpg", jpeg((4, 4))), ("a.json", b"{}")])
    shard.write_bytes(shard.read_bytes()[:700])
    code, _, err = run("write", "webdataset", str(shard), "-o", str(tmp_path / "x.msgpack"), "-q")
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"shardstream write: error: {shard}")


def test_export_needs_a_format(packed):
    code, _, err = run("export")
    assert code == 2 and "name a FORMAT: parquet, webdataset" in err
    assert os.path.exists(packed)
