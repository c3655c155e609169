"""``shardstream convert-index`` through the real console script, on a legacy-indexed demo set."""

from __future__ import annotations

import os

import msgpack
import numpy as np
import pytest

from shardstream.format.integrity import format_md5_file, md5_file
from tests.cli.demo_data import demo_samples, keys_of, shardstream, write_packed

NEW_SUFFIXES = (".offsets", ".keys", ".key_hashes", ".filter")


@pytest.fixture(scope="module")
def samples():
    return demo_samples(num_images=24)


@pytest.fixture
def legacy(tmp_path, samples):
    """A dataset as old datadings wrote it: data, a key -> offset map ``.index``, and md5."""
    path = write_packed(tmp_path / "old.msgpack", samples)
    offsets = np.fromfile(f"{path}.offsets", dtype=">u8").tolist()
    index = msgpack.packb(dict(zip([s["key"] for s in samples], offsets[:-1])))
    with open(f"{path}.index", "wb") as f:
        f.write(index)
    for suffix in NEW_SUFFIXES:
        os.unlink(f"{path}{suffix}")
    entries = [(path.name, md5_file(path)), (f"{path.name}.index", md5_file(f"{path}.index"))]
    with open(f"{path}.md5", "w") as f:
        f.write(format_md5_file(entries))
    return path


def test_writes_the_index_files_a_writer_writes(legacy, samples, tmp_path):
    reference = write_packed(tmp_path / "ref" / "new.msgpack", samples)
    result = shardstream("convert-index", legacy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote {legacy}{suffix}" for suffix in (*NEW_SUFFIXES, ".md5")
    ]
    for suffix in NEW_SUFFIXES:
        assert (tmp_path / f"old.msgpack{suffix}").read_bytes() == (
            reference.with_name(f"new.msgpack{suffix}").read_bytes()
        )
    md5_names = [
        line.split("  ")[1] for line in (tmp_path / "old.msgpack.md5").read_text().splitlines()
    ]
    assert md5_names == ["old.msgpack", "old.msgpack.index"] + [
        f"old.msgpack{s}" for s in NEW_SUFFIXES
    ]
    assert keys_of(legacy) == [s["key"] for s in samples]
    verify = shardstream("verify", legacy, "-q")
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.splitlines()[-1] == "verify: OK, 6 files and 24 samples checked"


def test_outdir_and_index_path_argument(legacy, tmp_path):
    outdir = tmp_path / "converted"
    result = shardstream("convert-index", f"{legacy}.index", "-o", outdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote {outdir / 'old.msgpack'}{suffix}" for suffix in (*NEW_SUFFIXES, ".md5")
    ]
    assert sorted(p.name for p in outdir.iterdir()) == sorted(
        f"old.msgpack{s}" for s in (*NEW_SUFFIXES, ".md5")
    )
    assert not (tmp_path / "old.msgpack.offsets").exists()


def test_errors(tmp_path):
    plain = write_packed(tmp_path / "new.msgpack", [{"key": "a"}])
    result = shardstream("convert-index", plain)
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream convert-index: error: {plain}.index: legacy index file not found\n"
    )
    result = shardstream("convert-index", tmp_path / "absent.msgpack")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream convert-index: error: {tmp_path / 'absent.msgpack'}: not found\n"
    )
    assert shardstream("convert-index").returncode == 2
    help_text = shardstream("convert-index", "--help")
    assert help_text.returncode == 0 and "--outdir" in help_text.stdout
