"""A ``.manifest`` output of ``shuffle``, ``merge``, ``split`` and ``sample`` is a sharded set.

Issue 13, item 3: ``shardstream shuffle in.manifest out.manifest`` used to exit 0 after writing one
packed file *named* ``out.manifest``, which ``info`` then rejected. Every test runs the real
console script and reads the output back with ``info`` and the readers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shardstream import MsgpackReader, ShardedReader
from shardstream.format.manifest import load_manifest
from tests.cli.demo_data import (
    demo_samples,
    keys_of,
    listing,
    raw_by_key,
    shardstream,
    write_packed,
    write_sharded,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The demo set as one packed file and as a manifest of shards of 10, 30 and 8 samples."""
    folder = tmp_path_factory.mktemp("sharded_outputs")
    samples = demo_samples()
    single = write_packed(folder / "demo.msgpack", samples)
    manifest = write_sharded(folder, "set", samples, [10, 30, 8])
    return single, manifest, samples


def read_sharded(manifest: Path) -> list[tuple[str, bytes]]:
    """(key, packed bytes) of every sample of a sharded set, in order."""
    with ShardedReader(manifest) as reader:
        return list(reader.iter(0, yield_key=True, raw=True))


def read_packed(path: Path) -> list[tuple[str, bytes]]:
    """(key, packed bytes) of every sample of one packed file, in order."""
    with MsgpackReader(path) as reader:
        return list(reader.iter(0, yield_key=True, raw=True))


def greedy_shards(sizes: list[int], limit: int) -> list[int]:
    """Samples per shard when each shard takes samples until the next would pass ``limit``."""
    counts: list[int] = []
    used = 0
    for size in sizes:
        if counts and used and used + size > limit:
            counts.append(0)
            used = 0
        if not counts:
            counts.append(0)
        counts[-1] += 1
        used += size
    return counts or [0]


def check_sharded(manifest: Path, expected: list[tuple[str, bytes]], limit: int) -> None:
    """``manifest`` holds exactly ``expected`` in shards packed greedily up to ``limit`` bytes."""
    info = shardstream("info", manifest, "--no-labels")
    assert info.returncode == 0, info.stderr
    assert info.stdout.splitlines()[1] == f"samples:  {len(expected)}"
    assert read_sharded(manifest) == expected
    shards = load_manifest(manifest).shards
    counts = greedy_shards([len(raw) for _, raw in expected], limit)
    assert [s.samples for s in shards] == counts
    assert [s.path for s in shards] == [
        f"{manifest.stem}-{i:05d}.msgpack" for i in range(len(counts))
    ]
    start = 0
    for shard in shards:
        part = expected[start : start + shard.samples]
        start += shard.samples
        assert shard.bytes == sum(len(raw) for _, raw in part)
        assert shard.bytes <= limit or shard.samples == 1
        assert read_packed(manifest.parent / shard.path) == part


def test_shuffle_to_a_manifest_keeps_the_input_shard_size(data, tmp_path):
    single, manifest, samples = data
    out = tmp_path / "out.manifest"
    result = shardstream("shuffle", manifest, out, "--seed", "5", "-q")
    assert result.returncode == 0, result.stderr
    # the same shuffle into one packed file is the oracle of the order and the bytes
    flat = tmp_path / "flat.msgpack"
    assert shardstream("shuffle", manifest, flat, "--seed", "5", "-q").returncode == 0
    expected = read_packed(flat)
    assert sorted(k for k, _ in expected) == sorted(s["key"] for s in samples)
    limit = max(p.stat().st_size for p in load_manifest(manifest).shard_paths())
    check_sharded(out, expected, limit)
    shards = len(load_manifest(out).shards)
    assert result.stdout.splitlines()[-1] == (
        f"wrote 48 samples to {out} ({shards} shards of at most {limit:,} bytes)"
    )
    assert dict(expected) == raw_by_key(single)  # byte for byte the input's samples
    assert not (tmp_path / "out.manifest.offsets").exists()  # no packed file under that name


def test_shuffle_to_a_manifest_with_a_shard_size(data, tmp_path):
    single, _, _ = data
    out = tmp_path / "small.manifest"
    result = shardstream("shuffle", single, out, "--seed", "2", "--shard-size", "300K", "-q")
    assert result.returncode == 0, result.stderr
    flat = tmp_path / "flat.msgpack"
    assert shardstream("shuffle", single, flat, "--seed", "2", "-q").returncode == 0
    check_sharded(out, read_packed(flat), 300 * 1024)
    assert len(load_manifest(out).shards) > 3


def test_merge_split_and_sample_to_manifests(data, tmp_path):
    single, manifest, samples = data
    # merge: a manifest and a packed file into a sharded set, concatenated in order
    head = write_packed(tmp_path / "head.msgpack", samples[:8])
    merged = tmp_path / "merged.manifest"
    result = shardstream(
        "merge", head, tmp_path / "tail.manifest", merged, "-s", "concat", "-q"
    )  # the tail input does not exist yet: nothing is written
    assert result.returncode == 1
    assert not merged.exists()
    tail = write_sharded(tmp_path, "tail", samples[8:], [20, 20])
    result = shardstream("merge", head, tail, merged, "-s", "concat", "-q")
    assert result.returncode == 0, result.stderr
    limit = max(head.stat().st_size, *(p.stat().st_size for p in load_manifest(tail).shard_paths()))
    check_sharded(merged, read_packed(single), limit)
    # split: a sharded part, a packed part, a sharded part
    a, b, c = tmp_path / "a.manifest", tmp_path / "b.msgpack", tmp_path / "c.manifest"
    result = shardstream("split", manifest, "10", "30", "-o", a, b, c, "--shard-size", "250K")
    assert result.returncode == 0, result.stderr
    everything = read_packed(single)
    check_sharded(a, everything[:10], 250 * 1024)
    assert read_packed(b) == everything[10:30]
    check_sharded(c, everything[30:], 250 * 1024)
    assert result.stdout.splitlines()[1] == f"{b}: samples 10-29 (20)"
    # sample: the same 6 samples as into a packed file
    picked = tmp_path / "picked.manifest"
    result = shardstream("sample", manifest, picked, "6", "--seed", "3", "-q")
    assert result.returncode == 0, result.stderr
    flat = tmp_path / "picked.msgpack"
    assert shardstream("sample", manifest, flat, "6", "--seed", "3", "-q").returncode == 0
    limit = max(p.stat().st_size for p in load_manifest(manifest).shard_paths())
    check_sharded(picked, read_packed(flat), limit)
    assert len(keys_of(flat)) == 6


def test_shard_size_without_a_manifest_output_is_a_usage_error(data, tmp_path):
    single, _, _ = data
    out = tmp_path / "o.msgpack"
    result = shardstream("sample", single, out, "3", "--shard-size", "1M")
    assert result.returncode == 2
    assert "usage: shardstream sample" in result.stderr
    assert "--shard-size needs a .manifest output (a sharded set); got " in result.stderr
    bad = shardstream("merge", single, tmp_path / "m.manifest", "--shard-size", "0")
    assert bad.returncode == 2
    assert "size must be at least 1 byte" in bad.stderr
    assert listing(tmp_path) == []


def test_a_manifest_output_may_not_replace_an_input_shard(data, tmp_path):
    _, _, samples = data
    manifest = write_sharded(tmp_path, "set", samples[:12], [6, 6])
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    shard = tmp_path / "set-00001.msgpack"
    result = shardstream("shuffle", shard, tmp_path / "set.manifest", "-y")
    assert result.returncode == 2
    assert f"would replace its shard {shard.resolve()} of input {shard}" in result.stderr
    same = shardstream("shuffle", manifest, manifest, "-y")
    assert same.returncode == 2
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before


def test_an_existing_manifest_output_is_kept_without_y(data, tmp_path):
    single, _, samples = data
    out = write_sharded(tmp_path, "taken", samples[:4], [2, 2])
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    result = shardstream("shuffle", single, out, "--seed", "1")
    assert result.returncode == 1
    assert result.stderr == (
        f"shardstream shuffle: error: {out}: exists; pass overwrite=True "
        "(or -y on the command line) to replace it\n"
    )
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
    replaced = shardstream("shuffle", single, out, "--seed", "1", "-y", "-q")
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(k for k, _ in read_sharded(out)) == sorted(s["key"] for s in samples)
    assert not (tmp_path / "taken-00001.msgpack").exists()  # the old set's extra shard is gone
