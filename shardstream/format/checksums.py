"""The per-sample checksum file ``X.xxh3``: one xxh3-64 digest of every sample's packed bytes.

With it, damage is found per sample (``shardstream verify`` names the samples, a
``Loader(..., verify=True)`` checks each sample it reads) instead of per file by the ``.md5``
file. datadings does not know the file and ignores it.

Layout (all integers little-endian)::

    offset  size  field
    0       4     magic b"SSCK"
    4       1     version (1)
    5       1     algorithm (1: xxh3_64 with seed 0, of the sample's bytes in the data file)
    6       2     reserved (0; other values are refused)
    8       8     count: the number of samples
    16      8     the data file's size in bytes when the digests were computed
    24      8     xxh3_64 of the digest table below (the file checks itself)
    32      8*n   one uint64 digest per sample, in sample order

The file is ``32 + 8 * count`` bytes, so a reader checks the count against the set at open from
the file's size alone (O(1)) and the header on first use. The data file's size in the header
tells a stale file (left by a writer that does not know it, such as datadings') from a current
one; the table's own digest tells a damaged checksum file from damaged samples. Writers compute
the digests while they write and commit the file in the same group as the others. The ``.md5``
file does not list it, so it stays byte-identical to the one datadings writes.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any

import numpy as np
from xxhash import xxh3_64_intdigest

from ..errors import CorruptIndexError, IndexMismatchError

__all__ = [
    "ALGORITHM_XXH3_64",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "checksums_size",
    "check_checksums_size",
    "compute_checksums",
    "encode_checksums",
    "load_checksums",
    "sample_digest",
]

MAGIC = b"SSCK"
VERSION = 1
ALGORITHM_XXH3_64 = 1
_HEADER = struct.Struct("<4sBBHQQQ")
HEADER_SIZE = _HEADER.size  # 32
_DIGEST_SIZE = 8
#: how to rebuild the file (named in errors about a stale or mismatched one)
_REPAIR = "delete it, or rewrite it with `shardstream verify --add-checksums`"

#: The digest of one sample's packed bytes (xxh3-64, seed 0; releases the GIL, copies nothing).
sample_digest: Callable[[Any], int] = xxh3_64_intdigest


def checksums_size(count: int) -> int:
    """The size in bytes of the checksum file of a set of ``count`` samples."""
    return HEADER_SIZE + _DIGEST_SIZE * count


def encode_checksums(digests: Iterable[int] | np.ndarray, data_bytes: int) -> bytes:
    """The checksum file's content for ``digests`` (uint64s, in sample order).

    Args:
        digests: one :func:`sample_digest` per sample (an ``array("Q")``, numpy array or list).
        data_bytes: the size of the data file the digests belong to.
    """
    if isinstance(digests, np.ndarray):
        values = digests.astype("<u8", copy=False)
    elif isinstance(digests, array):  # the writer's array("Q"): no per-item conversion
        values = np.frombuffer(memoryview(digests), dtype=np.uint64).astype("<u8")
    else:
        values = np.fromiter(digests, dtype="<u8")
    table = values.tobytes()
    header = _HEADER.pack(
        MAGIC, VERSION, ALGORITHM_XXH3_64, 0, len(values), data_bytes, sample_digest(table)
    )
    return header + table


def check_checksums_size(path: str | PathLike, size: int, count: int) -> None:
    """Refuse a checksum file whose size does not fit a set of ``count`` samples.

    Raises:
        IndexMismatchError: naming ``path``, the sizes and the counts.
    """
    expected = checksums_size(count)
    if size != expected:
        held = (size - HEADER_SIZE) / _DIGEST_SIZE
        held_text = f"{held:.0f}" if held >= 0 and held == int(held) else "no whole number of"
        raise IndexMismatchError(
            path,
            f"checksum file is {size} bytes ({held_text} digests), expected {expected} for "
            f"{count} samples: it does not belong to this set; {_REPAIR}",
        )


def load_checksums(path: str | PathLike, count: int, data_bytes: int, data: bytes) -> np.ndarray:
    """Parse and check a checksum file's content.

    Args:
        path: the file (named in errors).
        count: the set's number of samples.
        data_bytes: the data file's size.
        data: the file's content.

    Returns:
        The digests as a native uint64 array of ``count`` values.

    Raises:
        IndexMismatchError: the size, count or data size disagree with the set (a stale file).
        CorruptIndexError: not a checksum file, a version or algorithm this code does not know,
            or the digest table is damaged.
    """
    check_checksums_size(path, len(data), count)
    magic, version, algorithm, reserved, held, size, table = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptIndexError(path, f"not a checksum file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION or algorithm != ALGORITHM_XXH3_64 or reserved:
        raise CorruptIndexError(
            path,
            f"checksum file version {version}, algorithm {algorithm}, reserved {reserved}: this "
            f"shardstream reads version {VERSION}, algorithm {ALGORITHM_XXH3_64} (xxh3_64), "
            "reserved 0",
        )
    if held != count:
        raise IndexMismatchError(
            path, f"checksum file header counts {held} samples, the set has {count}; {_REPAIR}"
        )
    if size != data_bytes:
        raise IndexMismatchError(
            path,
            f"checksum file was made for a data file of {size} bytes, the data file has "
            f"{data_bytes}: it is stale (the data was rewritten without it); {_REPAIR}",
        )
    actual = sample_digest(memoryview(data)[HEADER_SIZE:])
    if actual != table:
        raise CorruptIndexError(
            path,
            f"checksum file is damaged: its digest table hashes to {actual:016x}, the header "
            f"records {table:016x}; {_REPAIR}",
        )
    return np.frombuffer(data, dtype="<u8", offset=HEADER_SIZE).astype(np.uint64)


def compute_checksums(samples: Iterable[Any], count: int) -> np.ndarray:
    """:func:`sample_digest` of each of ``count`` sample buffers (e.g. memoryviews).

    Raises:
        ValueError: ``samples`` yields fewer than ``count`` buffers.
    """
    digests = np.empty(count, dtype=np.uint64)
    n = 0
    for n, data in enumerate(samples, 1):
        digests[n - 1] = sample_digest(data)
    if n != count:
        raise ValueError(f"expected {count} samples, got {n}")
    return digests
