"""datadings' ``index``: load and write a dataset's index files (offsets, keys, key hashes,
Bloom filter, legacy index).

Paths get the file's suffix appended when they lack it (``data.msgpack`` -> ``data.msgpack.keys``).
The bytes are shardstream's encoders' (:mod:`shardstream.format.index`), equal to datadings';
writes are atomic (temp file, then rename), and loaders validate what they read: a damaged
file raises an error from :mod:`shardstream.errors` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from simplebloom import BloomFilter

from ...format import index as _index
from ...format.atomic import StagedFiles
from ...format.keyhash import hash_keys
from ...format.paths import (
    SUFFIX_FILTER,
    SUFFIX_KEY_HASHES,
    SUFFIX_KEYS,
    SUFFIX_LEGACY_INDEX,
    SUFFIX_OFFSETS,
)
from .tools import hash_string, hash_string_bytes, path_append_suffix

__all__ = [
    "SUFFIX_FILTER",
    "SUFFIX_KEYS",
    "SUFFIX_KEY_HASHES",
    "SUFFIX_LEGACY_INDEX",
    "SUFFIX_OFFSETS",
    "hash_keys",
    "hash_string",
    "hash_string_bytes",
    "keys_len",
    "legacy_index_len",
    "legacy_load_index",
    "load_filter",
    "load_key_hashes",
    "load_keys",
    "load_offsets",
    "write_filter",
    "write_key_hashes",
    "write_keys",
    "write_offsets",
]


def keys_len(path: Path) -> int:
    """Number of keys in the keys file of ``path`` (read from its header only)."""
    return _index.keys_len(path_append_suffix(path, SUFFIX_KEYS))


def load_keys(path: Path) -> Sequence[str]:
    """Every key of the keys file of ``path``, in sample order."""
    keys_path = path_append_suffix(path, SUFFIX_KEYS)
    return _index.load_keys(keys_path, _index.keys_len(keys_path))


def load_key_hashes(path: Path) -> tuple[bytes, np.ndarray]:
    """The salt and the uint64 key hashes of the key hashes file of ``path``."""
    hashes_path = path_append_suffix(path, SUFFIX_KEY_HASHES)
    count = max(0, (hashes_path.stat().st_size - 8) // 8)
    return _index.load_key_hashes(hashes_path, count)


def load_filter(path: Path) -> BloomFilter:
    """The Bloom filter of ``path``."""
    return _index.load_filter(path_append_suffix(path, SUFFIX_FILTER))


def load_offsets(path: Path) -> np.ndarray:
    """The uint64 offsets of ``path``'s samples: ``len + 1`` values, the last the data size."""
    offsets_path = path_append_suffix(path, SUFFIX_OFFSETS)
    data = offsets_path.read_bytes()
    _index.offsets_count(offsets_path, len(data))
    return np.frombuffer(data, dtype=_index.OFFSET_DTYPE).astype(np.uint64)


def legacy_index_len(path: Path) -> int:
    """Number of samples in the legacy ``.index`` file of ``path``."""
    return _index.legacy_index_len(path_append_suffix(path, SUFFIX_LEGACY_INDEX))


def legacy_load_index(path: Path) -> tuple[Sequence[str], Sequence[int]]:
    """Keys and offsets from the legacy ``.index`` file of the data file ``path`` (offsets end
    with the data file's size, as :func:`load_offsets`)."""
    path = Path(path)
    index_path = path_append_suffix(path, SUFFIX_LEGACY_INDEX)
    count = _index.legacy_index_len(index_path)
    size = path.stat().st_size
    keys, offsets = _index.load_legacy_index(index_path, count, path, size)
    return keys, [int(o) for o in offsets]


def _write(path: Path, suffix: str, data: bytes) -> Path:
    path = path_append_suffix(path, suffix)
    staged = StagedFiles()
    try:
        staged.write_bytes(path, data)
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return path


def write_offsets(offsets: Sequence[int], path: Path) -> Path:
    """Write ``offsets`` (big-endian uint64) to the offsets file of ``path``; returns its path."""
    return _write(path, SUFFIX_OFFSETS, _index.encode_offsets(offsets))


def write_keys(keys: Sequence[str], path: Path) -> Path:
    """Write ``keys`` (one msgpack array) to the keys file of ``path``; returns its path."""
    return _write(path, SUFFIX_KEYS, _index.encode_keys(keys))


def write_key_hashes(keys: Sequence[str], path: Path) -> Path:
    """Write the salt and collision-free hashes of ``keys`` (see :func:`hash_keys`) to the key
    hashes file of ``path``; returns its path."""
    return _write(path, SUFFIX_KEY_HASHES, _index.encode_key_hashes(keys))


def write_filter(keys: Sequence[str], path: Path) -> Path:
    """Write a Bloom filter of ``keys`` to the filter file of ``path``; returns its path."""
    return _write(path, SUFFIX_FILTER, _index.encode_filter(keys))
