"""A legacy ``.index`` is checked against the file sizes when the set is opened (issue 14, item 9).

A header claiming ``2**31 - 1`` entries made ``len()`` believe it, and ``list(reader)`` then
tried to allocate room for them all (MemoryError).
"""

from __future__ import annotations

import os

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstream import FileWriter, MsgpackReader, convert_legacy_index
from shardstream.errors import CorruptIndexError

from ._forked import is_typed, run_isolated

SAMPLES = [{"key": f"k{i}", "value": i, "text": "x" * i} for i in range(5)]


def legacy_set(directory, claimed: int | None = None):
    """A set whose only index is a legacy ``.index``; ``claimed`` overrides its map header."""
    path = directory / "legacy.msgpack"
    with FileWriter(path, overwrite=True, disable=True) as writer:
        for sample in SAMPLES:
            writer.write(sample)
    with MsgpackReader(path) as reader:
        offsets = [int(o) for o in reader.offsets[:-1]]
    for suffix in (".offsets", ".keys", ".key_hashes", ".filter", ".md5"):
        os.remove(f"{path}{suffix}")
    pairs = b"".join(msgpack.packb(s["key"]) + msgpack.packb(o) for s, o in zip(SAMPLES, offsets))
    count = len(SAMPLES) if claimed is None else claimed
    header = b"\xdf" + count.to_bytes(4, "big") if claimed is not None else b"\x85"
    (directory / "legacy.msgpack.index").write_bytes(header + pairs)
    return path


def test_a_valid_legacy_index_still_reads(tmp_path):
    path = legacy_set(tmp_path)
    with MsgpackReader(path) as reader:
        assert len(reader) == 5
        assert list(reader) == SAMPLES
        assert reader.find_key(3) == "k3"


@pytest.mark.parametrize("claimed", [2**31 - 1, 2**32 - 1, 11])
def test_a_header_claiming_more_entries_than_the_file_holds_is_refused_at_open(tmp_path, claimed):
    path = legacy_set(tmp_path, claimed)
    with pytest.raises(CorruptIndexError, match=f"claims {claimed} entries") as info:
        MsgpackReader(path)
    assert info.value.path == f"{path}.index"
    with pytest.raises(CorruptIndexError, match=f"claims {claimed} entries"):
        convert_legacy_index(path)


def test_a_header_claiming_more_entries_than_data_bytes_is_refused(tmp_path):
    path = legacy_set(tmp_path)
    data_size = path.stat().st_size
    # as many entries as the index could hold, but more samples than the data file has bytes
    pairs = b"".join(msgpack.packb(f"{i}") + b"\x00" for i in range(data_size + 1))
    (tmp_path / "legacy.msgpack.index").write_bytes(
        b"\xdf" + (data_size + 1).to_bytes(4, "big") + pairs
    )
    with pytest.raises(CorruptIndexError, match=f"data {data_size} bytes"):
        MsgpackReader(path)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [(["k0", 7, "k2", "k3", "k4"], "holds a int key 7"), (["k0", "k1", "k0", "k3", "k4"], "dup")],
)
def test_converting_a_legacy_index_with_bad_keys_is_refused(tmp_path, keys, problem):
    path = legacy_set(tmp_path)
    with MsgpackReader(path) as reader:
        offsets = [int(o) for o in reader.offsets[:-1]]
    pairs = b"".join(msgpack.packb(k) + msgpack.packb(o) for k, o in zip(keys, offsets))
    (tmp_path / "legacy.msgpack.index").write_bytes(b"\x85" + pairs)
    with pytest.raises(CorruptIndexError, match=problem):
        convert_legacy_index(path, tmp_path / "out")
    assert not (tmp_path / "out" / "legacy.msgpack.offsets").exists()


def _read_all(path):
    with MsgpackReader(path) as reader:
        result = len(reader), list(reader), list(reader.keys)
    convert_legacy_index(path, path.parent / "converted")
    with MsgpackReader(path.parent / "converted" / path.name) as reader:
        assert list(reader.keys) == result[2]
        assert [reader.find_index(key) for key in result[2]] == list(range(len(result[2])))
    return result


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    position=st.integers(0, 200),
    kind=st.sampled_from(["flip", "truncate", "byte"]),
    value=st.integers(0, 255),
)
def test_a_mutated_legacy_index_reads_right_or_raises_a_typed_error(
    tmp_path, position, kind, value
):
    path = legacy_set(tmp_path)
    index = tmp_path / "legacy.msgpack.index"
    original = index.read_bytes()
    data = bytearray(original)
    position %= len(data)
    if kind == "flip":
        data[position] ^= 1 << (value % 8)
    elif kind == "truncate":
        del data[position:]
    else:
        data[position] = value
    index.write_bytes(bytes(data))
    outcome = run_isolated(_read_all, path)
    index.write_bytes(original)
    assert is_typed(outcome), f"{outcome.status} {outcome.exc_type} {outcome.detail}"
    if outcome.status == "returned":
        length, samples, keys = outcome.value
        assert length == len(samples) == len(keys)
