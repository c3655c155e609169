"""Encode and load the index files: offsets, keys, key hashes, Bloom filter and the legacy index.

Encoders return bytes (the writer stores them atomically and hashes them); loaders validate what
they read and raise errors from :mod:`shardstream.errors` that name the file and the fault.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import msgpack
import numpy as np
from simplebloom import BloomFilter

from ..errors import CorruptIndexError, IndexMismatchError, OffsetsOrderError, TruncatedDataError
from .keyhash import hash_keys
from .paths import DatasetPaths

__all__ = [
    "OFFSET_DTYPE",
    "encode_offsets",
    "encode_keys",
    "encode_key_hashes",
    "encode_filter",
    "encode_index_files",
    "offsets_count",
    "check_offsets_ends",
    "load_offsets",
    "validate_offsets",
    "keys_len",
    "load_keys",
    "load_key_hashes",
    "load_filter",
    "legacy_index_len",
    "load_legacy_index",
]

#: On-disk dtype of offsets and key hashes: big-endian (network order) uint64.
OFFSET_DTYPE = np.dtype(">u8")


# --- encoders -------------------------------------------------------------------------------


def encode_offsets(offsets: Sequence[int] | np.ndarray) -> bytes:
    """Offsets file content: ``len + 1`` big-endian uint64 values, first 0, last the data size."""
    return np.asarray(offsets, dtype=np.uint64).astype(OFFSET_DTYPE).tobytes()


def encode_keys(keys: Sequence[str]) -> bytes:
    """Keys file content: one msgpack array of every key in sample order."""
    return msgpack.packb(list(keys))


def encode_key_hashes(keys: Sequence[str]) -> bytes:
    """Key hashes file content: the collision-free salt followed by every key's hash."""
    salt, hashes = hash_keys(keys)
    return salt + hashes.astype(OFFSET_DTYPE).tobytes()


def encode_filter(keys: Sequence[str]) -> bytes:
    """Bloom filter file content in simplebloom's format, sized for ``max(2, len(keys))``."""
    bloom = BloomFilter(max(2, len(keys)))
    for key in keys:
        bloom += key
    return bytes(bloom.dumps())


# --- offsets --------------------------------------------------------------------------------


def offsets_count(offsets_path: Path, size: int) -> int:
    """Number of samples an offsets file of ``size`` bytes describes.

    Raises:
        IndexMismatchError: the size is not a positive multiple of 8.
    """
    if size < 8 or size % 8:
        raise IndexMismatchError(
            offsets_path,
            f"offsets file is {size} bytes; it must hold len + 1 >= 1 big-endian uint64 values",
        )
    return size // 8 - 1


def check_offsets_ends(
    offsets_path: Path, data_path: Path, data_size: int, head: bytes | None = None
) -> None:
    """Check the first offset is 0 and the last equals the data size, reading only 16 bytes.

    Args:
        head: the first and the last 8 bytes of the offsets file, when already read.

    Raises:
        TruncatedDataError: the data file is shorter than the last offset.
        IndexMismatchError: the data file is longer, or the first offset is not 0.
    """
    if head is None:
        with open(offsets_path, "rb", buffering=0) as f:
            head = f.read(8)
            f.seek(-8, os.SEEK_END)
            head += f.read(8)
    first, last = int.from_bytes(head[:8], "big"), int.from_bytes(head[8:16], "big")
    if first != 0:
        raise IndexMismatchError(offsets_path, f"first offset is {first}, must be 0")
    _check_data_size(offsets_path, data_path, data_size, last)


def _check_data_size(index_path: Path, data_path: Path, data_size: int, last: int) -> None:
    if data_size < last:
        raise TruncatedDataError(
            data_path,
            f"data file is {data_size} bytes but {index_path.name} says {last}: truncated "
            f"({last - data_size} bytes missing)",
        )
    if data_size > last:
        raise IndexMismatchError(
            index_path,
            f"index ends at byte {last} but data file {data_path.name} is {data_size} bytes: "
            "index and data file do not belong together",
        )


def load_offsets(
    offsets_path: Path, count: int, data_path: Path, data_size: int, data: bytes | None = None
) -> np.ndarray:
    """Load and validate the offsets file as a native uint64 array of ``count + 1`` values.

    Args:
        data: the file's content, when already read (else it is read from ``offsets_path``).

    Raises:
        IndexMismatchError, TruncatedDataError, OffsetsOrderError: see :func:`validate_offsets`.
    """
    if data is None or len(data) % 8:
        raw = np.fromfile(offsets_path, dtype=OFFSET_DTYPE) if data is None else np.empty(0)
    else:
        raw = np.frombuffer(data, dtype=OFFSET_DTYPE)
    if len(raw) != count + 1:
        raise IndexMismatchError(
            offsets_path, f"offsets file changed size while open: {len(raw)} != {count + 1} values"
        )
    offsets = raw.astype(np.uint64)
    validate_offsets(offsets, offsets_path, data_path, data_size)
    return offsets


def validate_offsets(
    offsets: np.ndarray, index_path: Path, data_path: Path, data_size: int
) -> None:
    """Check offsets start at 0, ascend strictly and end at the data file size.

    Raises:
        IndexMismatchError: wrong first/last value.
        TruncatedDataError: the data file is shorter than the last offset.
        OffsetsOrderError: some sample would have zero or negative length.
    """
    if len(offsets) == 0 or int(offsets[0]) != 0:
        raise IndexMismatchError(index_path, "first offset must be 0")
    _check_data_size(index_path, data_path, data_size, int(offsets[-1]))
    if len(offsets) > 1:
        steps = offsets[1:] <= offsets[:-1]
        if steps.any():
            i = int(np.argmax(steps))
            raise OffsetsOrderError(
                index_path,
                f"offsets not ascending: sample {i} spans [{int(offsets[i])}, "
                f"{int(offsets[i + 1])})",
            )


# --- keys and key hashes --------------------------------------------------------------------


def keys_len(keys_path: Path, head: bytes | None = None) -> int:
    """Number of keys, read from the msgpack array header only.

    Args:
        head: the file's first 5 bytes, when already read.

    Raises:
        CorruptIndexError: the file does not start with a msgpack array header.
    """
    if head is None:
        with open(keys_path, "rb", buffering=0) as f:
            head = f.read(5)
    try:
        return msgpack.Unpacker(_BytesReader(head), read_size=5).read_array_header()
    except Exception as e:
        raise CorruptIndexError(keys_path, f"keys file has no msgpack array header ({e})") from e


class _BytesReader:
    """Minimal file-like over a bytes object for header-only msgpack reads."""

    def __init__(self, data: bytes):
        self._data = data

    def read(self, n: int = -1) -> bytes:
        data, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
        return data


def load_keys(keys_path: Path, count: int, data: bytes | None = None) -> list[str]:
    """Load every key; check there are exactly ``count`` of them.

    Args:
        data: the file's content, when already read.

    Raises:
        CorruptIndexError: the file is not one msgpack array.
        IndexMismatchError: the number of keys differs from the number of samples.
    """
    data = Path(keys_path).read_bytes() if data is None else data
    try:
        keys = msgpack.unpackb(data, strict_map_key=False)
    except Exception as e:
        raise CorruptIndexError(keys_path, f"keys file does not decode: {e}") from e
    if not isinstance(keys, list):
        raise CorruptIndexError(keys_path, f"keys file holds a {type(keys).__name__}, not a list")
    if len(keys) != count:
        raise IndexMismatchError(keys_path, f"{len(keys)} keys for {count} samples")
    return keys


def load_key_hashes(
    hashes_path: Path, count: int, data: bytes | None = None
) -> tuple[bytes, np.ndarray]:
    """Load the salt and the per-sample hashes (native uint64).

    Args:
        data: the file's content, when already read.

    Raises:
        IndexMismatchError: the file size is not ``8 + 8 * count``.
    """
    data = Path(hashes_path).read_bytes() if data is None else data
    if len(data) != 8 + 8 * count:
        raise IndexMismatchError(
            hashes_path, f"key hashes file is {len(data)} bytes, expected {8 + 8 * count}"
        )
    return data[:8], np.frombuffer(data, dtype=OFFSET_DTYPE, offset=8).astype(np.uint64)


def load_filter(filter_path: Path, data: bytes | None = None) -> BloomFilter:
    """Load the Bloom filter.

    Args:
        data: the file's content, when already read.

    Raises:
        CorruptIndexError: wrong magic, size or truncated bit array.
    """
    data = Path(filter_path).read_bytes() if data is None else data
    try:
        return BloomFilter.loads(data)
    except Exception as e:
        raise CorruptIndexError(filter_path, f"not a valid simplebloom filter ({e})") from e


# --- legacy index ---------------------------------------------------------------------------


def legacy_index_len(
    index_path: Path,
    head: bytes | None = None,
    *,
    index_size: int | None = None,
    data_size: int | None = None,
) -> int:
    """Number of samples in a legacy ``.index`` file, from its msgpack map header.

    The count is checked against the file sizes (O(1)): each entry takes at least 2 bytes of the
    index (a key and an offset) and each sample at least 1 byte of the data file, so a header
    claiming more (say ``2**31 - 1`` entries in a small file) is refused here rather than
    believed by ``len()`` and failing later.

    Args:
        index_path: the ``.index`` file.
        head: the file's first 5 bytes, when already read.
        index_size: the file's size, when already known (else it is looked up).
        data_size: the data file's size in bytes, when known.

    Raises:
        CorruptIndexError: the file does not start with a msgpack map header, or the header
            claims more entries than the index or data file can hold.
    """
    if head is None:
        with open(index_path, "rb", buffering=0) as f:
            head = f.read(5)
    try:
        count = msgpack.Unpacker(_BytesReader(head), read_size=5).read_map_header()
    except Exception as e:
        raise CorruptIndexError(index_path, f"legacy index has no msgpack map header ({e})") from e
    if index_size is None:
        index_size = os.stat(index_path).st_size
    header = 1 if head[0] < 0xDE else 3 if head[0] == 0xDE else 5
    if 2 * count > index_size - header or (data_size is not None and count > data_size):
        where = f"{index_size} bytes" + ("" if data_size is None else f", data {data_size} bytes")
        raise CorruptIndexError(
            index_path,
            f"legacy index header claims {count} entries, more than its files hold ({where})",
        )
    return count


def load_legacy_index(
    index_path: Path, count: int, data_path: Path, data_size: int, data: bytes | None = None
) -> tuple[list[str], np.ndarray]:
    """Load a legacy index as ``(keys, offsets)``; offsets get the data size appended.

    Args:
        data: the file's content, when already read.

    Raises:
        CorruptIndexError: not a msgpack map of str to int.
        IndexMismatchError, TruncatedDataError, OffsetsOrderError: offsets do not fit the data.
    """
    data = Path(index_path).read_bytes() if data is None else data
    try:
        pairs = msgpack.unpackb(data, object_pairs_hook=list, strict_map_key=False)
        keys = [k for k, _ in pairs]
        offsets = np.array([p for _, p in pairs] + [data_size], dtype=np.uint64)
    except Exception as e:
        raise CorruptIndexError(index_path, f"legacy index does not decode: {e}") from e
    if len(keys) != count:
        raise IndexMismatchError(index_path, f"{len(keys)} entries, header said {count}")
    if count and int(offsets[-2]) >= data_size:
        raise TruncatedDataError(
            data_path,
            f"data file is {data_size} bytes but {index_path.name} puts the last sample at "
            f"byte {int(offsets[-2])}: truncated",
        )
    validate_offsets(offsets, index_path, data_path, data_size)
    return keys, offsets


def encode_index_files(
    paths: DatasetPaths, keys: Sequence[str], offsets: Sequence[int] | np.ndarray
) -> list[tuple[Path, bytes]]:
    """Content of the four new-style index files of a dataset, in md5-file order."""
    return [
        (paths.offsets, encode_offsets(offsets)),
        (paths.keys, encode_keys(keys)),
        (paths.key_hashes, encode_key_hashes(keys)),
        (paths.filter, encode_filter(keys)),
    ]
