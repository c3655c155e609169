"""Key hashes, Bloom filter and offsets encode exactly as datadings documents."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simplebloom import BloomFilter

from shardstream.format.index import encode_filter, encode_key_hashes, encode_keys, encode_offsets
from shardstream.format.keyhash import hash_keys, hash_string, salt_for


def test_salt_and_hash_test_vectors():
    assert salt_for(0).hex() == "652e530edee5893b"
    assert hash_string("k0", salt_for(0)) == 0x19784C6ABDA62607


def test_hash_keys_first_salt_when_no_collision():
    salt, hashes = hash_keys(["k0", "k1"])
    assert salt == salt_for(0)
    assert hashes.dtype == np.dtype(">u8")
    assert int(hashes[0]) == 0x19784C6ABDA62607


def test_hash_keys_gives_up_after_max_tries():
    with pytest.raises(RuntimeError, match="hash collisions after 3 tries"):
        hash_keys(["same", "same"], max_tries=3)


def test_key_hashes_file_layout():
    content = encode_key_hashes(["k0", "k1", "k2"])
    assert len(content) == 8 + 3 * 8
    assert content[:8] == salt_for(0)
    assert int.from_bytes(content[8:16], "big") == 0x19784C6ABDA62607


def test_bloom_filter_matches_documented_size_and_membership():
    keys = [f"k{i}" for i in range(5)]
    content = encode_filter(keys)
    assert len(content) == 35  # 32-byte header + 24 bits
    assert content[:8] == b"SIMPBLOO"
    bloom = BloomFilter.loads(content)
    assert all(k in bloom for k in keys)


def test_offsets_are_big_endian_uint64():
    assert encode_offsets([0, 5, 300]) == b"".join(v.to_bytes(8, "big") for v in (0, 5, 300))


def test_keys_file_is_one_msgpack_array():
    assert encode_keys(["k0", "k1"]) == bytes.fromhex("92a26b30a26b31")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=12), unique=True, max_size=60))
def test_hashes_are_unique_and_reproducible(keys):
    salt, hashes = hash_keys(keys)
    assert len(set(hashes.tolist())) == len(keys)
    assert [hash_string(k, salt) for k in keys] == hashes.tolist()
