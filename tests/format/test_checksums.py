"""The checksum file format (``shardstream.format.checksums``): encoding, parsing, refusals."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstream.errors import CorruptIndexError, IndexMismatchError
from shardstream.format.checksums import (
    HEADER_SIZE,
    check_checksums_size,
    checksums_size,
    compute_checksums,
    encode_checksums,
    load_checksums,
    sample_digest,
)
from shardstream.format.paths import DatasetPaths, data_path_of

U64 = st.integers(0, 2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(digests=st.lists(U64, max_size=50), data_bytes=st.integers(0, 2**63))
def test_round_trip_from_any_sequence_type(digests, data_bytes):
    encoded = encode_checksums(array("Q", digests), data_bytes)
    assert encoded == encode_checksums(np.array(digests, dtype=np.uint64), data_bytes)
    assert encoded == encode_checksums(iter(digests), data_bytes)
    assert len(encoded) == checksums_size(len(digests)) == HEADER_SIZE + 8 * len(digests)
    loaded = load_checksums("x.xxh3", len(digests), data_bytes, encoded)
    assert loaded.dtype == np.uint64 and loaded.tolist() == digests


@settings(max_examples=60, deadline=None)
@given(
    digests=st.lists(U64, min_size=1, max_size=20),
    position=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_any_flipped_bit_is_a_typed_error(digests, position, bit):
    encoded = bytearray(encode_checksums(digests, 1000))
    position %= len(encoded)
    encoded[position] ^= 1 << bit
    with pytest.raises((CorruptIndexError, IndexMismatchError)) as info:
        load_checksums("x.xxh3", len(digests), 1000, bytes(encoded))
    assert info.value.path == "x.xxh3"


def test_count_and_data_size_must_match():
    encoded = encode_checksums([1, 2, 3], 500)
    with pytest.raises(IndexMismatchError, match="expected 48 for 2 samples"):
        load_checksums("x.xxh3", 2, 500, encoded)
    with pytest.raises(IndexMismatchError, match="made for a data file of 500 bytes.*has 501"):
        load_checksums("x.xxh3", 3, 501, encoded)
    check_checksums_size("x.xxh3", 56, 3)
    with pytest.raises(IndexMismatchError, match=r"57 bytes \(no whole number of digests\)"):
        check_checksums_size("x.xxh3", 57, 3)


def test_digest_is_xxh3_64_of_the_bytes_without_copying():
    data = bytearray(b"abc" * 1000)
    assert sample_digest(memoryview(data)[3:9]) == xxhash.xxh3_64_intdigest(b"abcabc")
    views = [memoryview(data)[i : i + 10] for i in (0, 10, 20)]
    assert compute_checksums(views, 3).tolist() == [sample_digest(v) for v in views]
    with pytest.raises(ValueError, match="expected 4 samples, got 3"):
        compute_checksums(views, 4)


def test_the_file_is_a_sidecar_of_the_data_file(tmp_path):
    paths = DatasetPaths(tmp_path / "d.msgpack")
    assert paths.checksums == tmp_path / "d.msgpack.xxh3"
    assert data_path_of(paths.checksums) == paths.data
