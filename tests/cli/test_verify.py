"""``shardstream verify`` through the real console script: clean data, flipped bytes, bad samples."""

from __future__ import annotations

import re
import shutil

import pytest

from shardstream import RawWriter
from shardstream.format.codec import packb
from tests.cli.demo_data import demo_samples, shardstream, write_packed, write_sharded

SUFFIXES = ("", ".offsets", ".keys", ".key_hashes", ".filter")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verify")
    samples = demo_samples()
    return write_packed(folder / "demo.msgpack", samples), samples


@pytest.fixture
def demo(pristine, tmp_path):
    """A private copy of the packed demo set that a test may damage."""
    source, samples = pristine
    for suffix in (*SUFFIXES, ".xxh3", ".md5"):
        shutil.copyfile(f"{source}{suffix}", tmp_path / f"demo.msgpack{suffix}")
    return tmp_path / "demo.msgpack", samples


def flip_byte(path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        value = f.read(1)[0]
        f.seek(position)
        f.write(bytes([value ^ 0x01]))


def ok_lines(name: str, samples: int) -> list[str]:
    return [f"ok     {name}{s} (md5)" for s in SUFFIXES] + [
        f"ok     {name}: {samples} samples match their checksums",
        f"ok     {name}: {samples} samples decode",
    ]


def test_clean_dataset_passes(demo):
    path, _ = demo
    result = shardstream("verify", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        *ok_lines("demo.msgpack", 48),
        "verify: OK, 5 files and 48 samples checked",
    ]
    quick = shardstream("verify", path, "--quick")
    assert quick.returncode == 0
    assert quick.stdout.splitlines()[-1] == "verify: OK, 5 files checked"
    assert "samples decode" not in quick.stdout


def test_flipped_data_byte_is_found_and_names_the_file_and_sample(demo):
    path, samples = demo
    flip_byte(path, 5000)  # inside the first JPEG: the sample still decodes
    result = shardstream("verify", path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"FAULT  {path}: md5 ")
    assert lines[0].endswith(" recorded in demo.msgpack.md5")
    assert lines[1:5] == ok_lines("demo.msgpack", 48)[1:5]
    key = samples[0]["key"]
    assert re.fullmatch(
        rf"FAULT  {re.escape(str(path))}: sample 0 \(key '{re.escape(key)}'\) is damaged: its "
        r"xxh3 is [0-9a-f]{16}, demo.msgpack.xxh3 records [0-9a-f]{16}",
        lines[5],
    )
    assert lines[6:] == ["ok     demo.msgpack: 48 samples decode", "verify: 2 faults found"]
    quick = shardstream("verify", path, "--quick")
    assert quick.returncode == 1
    assert [line for line in quick.stdout.splitlines() if "sample" in line] == [lines[5]]


def test_flipped_index_byte_names_the_index_file(demo):
    path, _ = demo
    flip_byte(f"{path}.key_hashes", 3)  # the salt: lookups break, reading in order does not
    result = shardstream("verify", path, "-q")
    assert result.returncode == 1
    faults = [line for line in result.stdout.splitlines() if line.startswith("FAULT")]
    assert len(faults) == 1
    assert faults[0].startswith(f"FAULT  {path}.key_hashes: md5 ")


def test_corrupt_sample_is_reported_with_index_and_key(tmp_path):
    path = tmp_path / "bad.msgpack"
    with RawWriter(path, overwrite=True, disable=True) as writer:
        for i in range(6):
            if i == 3:
                writer.write("k3", b"\xc1garbage")  # 0xc1 is never valid msgpack
            elif i == 4:
                writer.write("k4", packb({"key": "other", "x": 1}))
            else:
                writer.write(f"k{i}", packb({"key": f"k{i}", "x": i}))
    result = shardstream("verify", path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:6] == [f"ok     bad.msgpack{s} (md5)" for s in SUFFIXES] + [
        "ok     bad.msgpack: 6 samples match their checksums"
    ]
    assert lines[6].startswith(f"FAULT  {path}: sample 3 (key 'k3') does not decode: ")
    assert lines[7] == (
        f"FAULT  {path}: sample 4 (key 'k4') has key field 'other' but the keys file says 'k4'"
    )
    assert lines[8:] == ["verify: 2 faults found"]
    quick = shardstream("verify", path, "--quick")
    assert quick.returncode == 0  # checksums are fine: only decoding finds it


def test_missing_md5_file_is_a_fault(demo):
    path, _ = demo
    path.with_name("demo.msgpack.md5").unlink()
    result = shardstream("verify", path, "--quick")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"FAULT  {path}.md5: md5 file not found; cannot verify",
        "ok     demo.msgpack: 48 samples match their checksums",  # samples are still checked
        "verify: 1 fault found",
    ]


def test_truncated_data_is_a_fault(demo):
    path, _ = demo
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 10)
    result = shardstream("verify", path, "-q")
    assert result.returncode == 1
    faults = [line for line in result.stdout.splitlines() if line.startswith("FAULT")]
    assert faults[0].startswith(f"FAULT  {path}: md5 ")
    size = path.stat().st_size
    assert faults[1] == (
        f"FAULT  {path}: index unusable: data file is {size} bytes but demo.msgpack.offsets "
        f"says {size + 10}: truncated (10 bytes missing)"
    )


def test_manifest_names_the_bad_shard(pristine, tmp_path):
    _, samples = pristine
    manifest = write_sharded(tmp_path, "set", samples, [16, 16, 16])
    clean = shardstream("verify", manifest)
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.splitlines()[-1] == "verify: OK, 15 files and 48 samples checked"
    shard = tmp_path / "set-00001.msgpack"
    flip_byte(shard, 100)
    result = shardstream("verify", manifest, "--quick")
    assert result.returncode == 1
    faults = [line for line in result.stdout.splitlines() if line.startswith("FAULT")]
    assert len(faults) == 3
    assert faults[0].startswith(f"FAULT  {shard}: md5 ")
    assert faults[0].endswith("recorded in set-00001.msgpack.md5")
    assert faults[1].startswith(f"FAULT  {shard}: md5 ")
    assert faults[1].endswith("recorded in the manifest")
    # the damaged sample by shard, index in the shard and key (the shard's first: samples[16])
    assert faults[2].startswith(
        f"FAULT  {shard}: sample 0 (key {samples[16]['key']!r}) is damaged: its xxh3 is "
    )
    assert result.stdout.splitlines()[-1] == "verify: 3 faults found"


def test_usage_and_missing_input(tmp_path):
    assert shardstream("verify").returncode == 2
    result = shardstream("verify", tmp_path / "absent.msgpack")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"FAULT  {tmp_path / 'absent.msgpack'}: data file not found",
        "verify: 1 fault found",
    ]
    help_text = shardstream("verify", "--help")
    assert help_text.returncode == 0 and "--quick" in help_text.stdout
    assert "--add-checksums" in help_text.stdout


def test_sets_without_checksums_say_so_and_get_them_added(pristine, tmp_path):
    _, samples = pristine
    manifest = write_sharded(tmp_path, "set", samples, [16, 16, 16])
    for i in range(3):
        (tmp_path / f"set-{i:05d}.msgpack.xxh3").unlink()  # as datadings or older versions write
    result = shardstream("verify", manifest, "--quick")
    assert result.returncode == 0
    notes = [line for line in result.stdout.splitlines() if line.startswith("note")]
    assert notes == [
        f"note   set-{i:05d}.msgpack: no per-sample checksums (set-{i:05d}.msgpack.xxh3): "
        "damage is found per file only; add them with --add-checksums"
        for i in range(3)
    ]
    added = shardstream("verify", manifest, "--quick", "--add-checksums")
    assert added.returncode == 0, added.stdout
    assert [line for line in added.stdout.splitlines() if "written" in line] == [
        f"ok     set-{i:05d}.msgpack.xxh3 written: 16 per-sample checksums" for i in range(3)
    ]
    flip_byte(tmp_path / "set-00002.msgpack", 100)
    result = shardstream("verify", manifest, "--quick")
    damaged = [line for line in result.stdout.splitlines() if "damaged" in line]
    assert result.returncode == 1 and len(damaged) == 1
    assert damaged[0].startswith(
        f"FAULT  {tmp_path / 'set-00002.msgpack'}: sample 0 (key {samples[32]['key']!r}) is "
        "damaged: "
    )
    # damage is never recorded as good: the damaged shard gets no new checksum file
    (tmp_path / "set-00002.msgpack.xxh3").unlink()
    refused = shardstream("verify", manifest, "--quick", "--add-checksums")
    assert refused.returncode == 1
    assert f"FAULT  {tmp_path / 'set-00002.msgpack.xxh3'}: not added: " in refused.stdout
    assert not (tmp_path / "set-00002.msgpack.xxh3").exists()
