"""Names of the files that make up one dataset.

A dataset is a data file ``X`` (conventionally ``name.msgpack``) plus sidecar files whose names are
``X`` with a suffix appended: ``X.offsets``, ``X.keys``, ``X.key_hashes``, ``X.filter``, ``X.md5``, the
per-sample checksums ``X.xxh3`` (shardstream's; datadings ignores it) and, for old datasets, the legacy
``X.index``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUFFIX_OFFSETS = ".offsets"
SUFFIX_KEYS = ".keys"
SUFFIX_KEY_HASHES = ".key_hashes"
SUFFIX_FILTER = ".filter"
SUFFIX_MD5 = ".md5"
SUFFIX_LEGACY_INDEX = ".index"
SUFFIX_CHECKSUMS = ".xxh3"

#: The new-style index files, in the order the writer records them in the md5 file.
INDEX_SUFFIXES = (SUFFIX_OFFSETS, SUFFIX_KEYS, SUFFIX_KEY_HASHES, SUFFIX_FILTER)
#: Every sidecar, in the order a commit renames them (the md5 file after the files it hashes).
SIDECAR_SUFFIXES = (*INDEX_SUFFIXES, SUFFIX_CHECKSUMS, SUFFIX_MD5, SUFFIX_LEGACY_INDEX)


def path_append_suffix(path: str | os.PathLike, suffix: str) -> Path:
    """Return ``path`` with ``suffix`` appended to its name, unless it already ends with it.

    Args:
        path: the data file or one of its sidecars.
        suffix: e.g. ``".offsets"``.
    """
    path = Path(path)
    return path if path.name.endswith(suffix) else path.with_name(path.name + suffix)


def data_path_of(path: str | os.PathLike) -> Path:
    """Return the data file path for a data file or any of its sidecar files."""
    path = Path(path)
    for suffix in SIDECAR_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


@dataclass(frozen=True)
class DatasetPaths:
    """The paths of every file of one dataset, derived from its data file path.

    Attributes:
        data: the data file (concatenated msgpack samples).
    """

    data: Path

    @classmethod
    def of(cls, path: str | os.PathLike) -> DatasetPaths:
        """Build from the data file path or the path of any sidecar file."""
        return cls(data_path_of(path))

    def sidecar(self, suffix: str) -> Path:
        """Path of the sidecar with the given suffix."""
        return self.data.with_name(self.data.name + suffix)

    @property
    def offsets(self) -> Path:
        """``X.offsets``: big-endian uint64 start offsets, len + 1 entries."""
        return self.sidecar(SUFFIX_OFFSETS)

    @property
    def keys(self) -> Path:
        """``X.keys``: one msgpack array of every key in sample order."""
        return self.sidecar(SUFFIX_KEYS)

    @property
    def key_hashes(self) -> Path:
        """``X.key_hashes``: 8-byte salt, then one big-endian uint64 hash per key."""
        return self.sidecar(SUFFIX_KEY_HASHES)

    @property
    def filter(self) -> Path:
        """``X.filter``: Bloom filter of every key (simplebloom format)."""
        return self.sidecar(SUFFIX_FILTER)

    @property
    def md5(self) -> Path:
        """``X.md5``: md5 of the data and index files."""
        return self.sidecar(SUFFIX_MD5)

    @property
    def checksums(self) -> Path:
        """``X.xxh3``: one xxh3-64 digest per sample (see :mod:`shardstream.format.checksums`)."""
        return self.sidecar(SUFFIX_CHECKSUMS)

    @property
    def legacy_index(self) -> Path:
        """``X.index``: legacy msgpack map of key to start offset."""
        return self.sidecar(SUFFIX_LEGACY_INDEX)
