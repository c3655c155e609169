"""``shardstream info`` through the real console script, and the label peeking it relies on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.cli._peek import MISSING, peek_field
from shardstream.format.codec import packb, unpackb
from tests.cli.demo_data import demo_samples, shardstream, write_packed, write_sharded

INDEX_SUFFIXES = (".offsets", ".keys", ".key_hashes", ".filter")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("info")
    samples = demo_samples()
    return write_packed(folder / "demo.msgpack", samples), samples


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"


def index_bytes(paths) -> int:
    return sum(p.with_name(p.name + s).stat().st_size for p in paths for s in INDEX_SUFFIXES)


def test_info_of_a_packed_file(demo):
    path, samples = demo
    result = shardstream("info", path)
    assert result.returncode == 0, result.stderr
    first = samples[0]
    assert result.stdout.splitlines() == [
        f"path:     {path} (packed file)",
        "samples:  48",
        f"data:     {size_text(path.stat().st_size)}",
        f"index:    {size_text(index_bytes([path]))} (.offsets, .keys, .key_hashes, .filter)",
        "md5:      present (demo.msgpack.md5)",
        "fields:   (sample 0, key 'astronaut/astronaut_000000.jpg')",
        "  key         str         'astronaut/astronaut_000000.jpg'",
        f"  image       bytes       {len(first['image']):,} bytes (JPEG)",
        "  label       int         0",
        "  class_name  str         'astronaut'",
        "labels:   4 distinct, 12 samples each",
        "  0  12",
        "  1  12",
        "  2  12",
        "  3  12",
    ]
    assert result.stderr == ""


def test_info_of_a_manifest_lists_shards(demo, tmp_path):
    _, samples = demo
    manifest = write_sharded(tmp_path, "set", samples, [20, 20, 8])
    shards = [tmp_path / f"set-{i:05d}.msgpack" for i in range(3)]
    (tmp_path / "set-00002.msgpack.md5").unlink()
    result = shardstream("info", manifest, "--no-labels")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    data = sum(p.stat().st_size for p in shards)
    assert lines[:10] == [
        f"path:     {manifest} (manifest of 3 shards)",
        "samples:  48",
        f"data:     {size_text(data)}",
        f"index:    {size_text(index_bytes(shards))} (.offsets, .keys, .key_hashes, .filter)",
        "md5:      present for 2 of 3 shards",
        "shards:   3",
        f"  set-00000.msgpack        20 samples  {shards[0].stat().st_size:>14,} bytes  md5",
        f"  set-00001.msgpack        20 samples  {shards[1].stat().st_size:>14,} bytes  md5",
        f"  set-00002.msgpack         8 samples  {shards[2].stat().st_size:>14,} bytes  no md5",
        "fields:   (sample 0, key 'astronaut/astronaut_000000.jpg')",
    ]
    assert len(lines) == 14  # four fields, no labels with --no-labels
    assert not any(line.startswith("labels:") for line in lines)
    globbed = shardstream("info", tmp_path / "set-*.msgpack")
    assert (
        globbed.stdout.splitlines()[0]
        == f"path:     {tmp_path / 'set-*.msgpack'} (glob of 3 shards)"
    )
    assert "labels:   4 distinct, 12 samples each" in globbed.stdout.splitlines()


def test_uneven_labels_arrays_and_missing_md5(tmp_path):
    samples = [
        {"key": f"s{i}", "label": np.int64(7 if i < 5 else 2), "pixels": np.zeros((2, 3), np.uint8)}
        for i in range(8)
    ] + [{"key": "unlabelled", "pixels": np.zeros((2, 3), np.uint8)}]
    path = write_packed(tmp_path / "odd.msgpack", samples)
    (tmp_path / "odd.msgpack.md5").unlink()
    result = shardstream("info", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[4:] == [
        "md5:      missing (odd.msgpack.md5)",
        "fields:   (sample 0, key 's0')",
        "  key     str         's0'",
        "  label   int64       7",
        "  pixels  ndarray     uint8 (2, 3)",
        "labels:   2 distinct, 3-5 samples each; 1 sample without a label",
        "  2  3",
        "  7  5",
    ]


def test_string_labels_and_max_labels(tmp_path):
    names = ["b", "a", "c", "a"]
    path = write_packed(
        tmp_path / "s.msgpack", [{"key": str(i), "label": n} for i, n in enumerate(names)]
    )
    result = shardstream("info", path, "--max-labels", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "labels:   3 distinct, 1-2 samples each"
    result = shardstream("info", path)
    assert result.stdout.splitlines()[-4:] == [
        "labels:   3 distinct, 1-2 samples each",
        "  'a'  2",
        "  'b'  1",
        "  'c'  1",
    ]


def test_empty_dataset(tmp_path):
    path = write_packed(tmp_path / "empty.msgpack", [])
    result = shardstream("info", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "samples:  0"
    assert result.stdout.splitlines()[-1] == "md5:      present (empty.msgpack.md5)"


def test_errors(tmp_path):
    result = shardstream("info", tmp_path / "absent.msgpack")
    assert result.returncode == 1
    assert result.stderr == f"shardstream info: error: {tmp_path / 'absent.msgpack'}: not found\n"
    result = shardstream("info", tmp_path / "none-*.msgpack")
    assert result.returncode == 1
    assert "glob pattern matches no data file" in result.stderr
    assert shardstream("info").returncode == 2
    assert shardstream("info", "x", "--max-labels", "0").returncode == 2
    help_text = shardstream("info", "--help")
    assert help_text.returncode == 0 and "--no-labels" in help_text.stdout


# --- peek_field: the label reader -------------------------------------------------------------

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=300)
    | st.binary(max_size=70000),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=40), values, max_size=20), st.text(max_size=40))
def test_peek_field_equals_full_decoding(sample, name):
    packed = packb(sample)
    decoded = unpackb(packed)
    for field in sample:
        assert peek_field(memoryview(packed), field) == decoded[field]
    assert peek_field(packed, name) == decoded.get(name, MISSING)


def test_peek_field_numpy_values_and_faults():
    sample = {"key": "k", "image": b"\xff" * 100_000, "label": np.int16(-3), "a": np.eye(2)}
    packed = packb(sample)
    assert peek_field(packed, "label") == -3 and type(peek_field(packed, "label")) is np.int16
    assert (peek_field(packed, "a") == np.eye(2)).all()
    with pytest.raises(ValueError, match="truncated"):
        peek_field(packed[:-1], "never-found")
    with pytest.raises(ValueError, match="not a msgpack map"):
        peek_field(packb([1, 2]), "label")
    with pytest.raises(ValueError, match="not a string"):
        peek_field(packb({1: 2}), "label")
