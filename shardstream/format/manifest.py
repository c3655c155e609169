"""The manifest of a dataset split into shards: one JSON file listing the shard files in order.

``<name>.manifest`` holds ``{"format": "shardstream.manifest", "version": 1, "samples": N,
"shards": [{"path": "<file relative to the manifest>", "samples": n, "bytes": size,
"md5": "<md5 of the data file>"}, ...]}``. :class:`~shardstream.read.ShardedReader` opens a
manifest path as one dataset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CorruptIndexError, DatasetNotFoundError, IndexMismatchError
from .atomic import StagedFiles

__all__ = [
    "MANIFEST_SUFFIX",
    "ShardEntry",
    "Manifest",
    "is_manifest",
    "write_manifest",
    "load_manifest",
]

MANIFEST_SUFFIX = ".manifest"
_FORMAT = "shardstream.manifest"
_VERSION = 1


@dataclass(frozen=True)
class ShardEntry:
    """One shard: its data file (relative to the manifest), sample count, size and md5."""

    path: str
    samples: int
    bytes: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: where it lives and its shards in order."""

    path: Path
    shards: tuple[ShardEntry, ...]

    @property
    def samples(self) -> int:
        """Total number of samples."""
        return sum(shard.samples for shard in self.shards)

    def shard_paths(self) -> list[Path]:
        """Absolute paths of the shard data files, in order."""
        return [self.path.parent / shard.path for shard in self.shards]


def is_manifest(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a manifest file (by its ``.manifest`` suffix)."""
    return os.fspath(path).endswith(MANIFEST_SUFFIX)


def write_manifest(path: str | os.PathLike, shards: Sequence[ShardEntry]) -> Path:
    """Write a manifest atomically (temp name, fsync, rename).

    Raises:
        ValueError: a shard path is absolute or leaves the manifest's folder.
    """
    path = Path(path)
    for shard in shards:
        _check_relative(path, shard.path)
    document = {
        "format": _FORMAT,
        "version": _VERSION,
        "samples": sum(shard.samples for shard in shards),
        "shards": [asdict(shard) for shard in shards],
    }
    staged = StagedFiles()
    try:
        staged.write_bytes(path, (json.dumps(document, indent=1) + "\n").encode("utf-8"))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return path


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest.

    Raises:
        DatasetNotFoundError: the manifest or a shard file does not exist.
        CorruptIndexError: not a shardstream manifest (bad JSON, format, version or fields), or
            a shard path that is absolute or leaves the manifest's folder.
        IndexMismatchError: the total does not equal the sum of the shards.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetNotFoundError(path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptIndexError(path, f"manifest is not JSON: {e}") from e
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise CorruptIndexError(path, f"not a shardstream manifest (format must be {_FORMAT!r})")
    if document.get("version") != _VERSION:
        raise CorruptIndexError(path, f"unsupported manifest version {document.get('version')!r}")
    try:
        shards = tuple(
            ShardEntry(
                path=str(s["path"]),
                samples=int(s["samples"]),
                bytes=int(s["bytes"]),
                md5=str(s["md5"]),
            )
            for s in document["shards"]
        )
        total = int(document["samples"])
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptIndexError(path, f"manifest entry is malformed: {e!r}") from e
    for shard in shards:
        try:
            _check_relative(path, shard.path)
        except ValueError as e:
            raise CorruptIndexError(path, str(e)) from None
    if total != sum(shard.samples for shard in shards):
        raise IndexMismatchError(
            path,
            f"manifest says {total} samples but its shards hold {sum(s.samples for s in shards)}",
        )
    manifest = Manifest(path, shards)
    for shard_path in manifest.shard_paths():
        if not shard_path.is_file():
            raise DatasetNotFoundError(shard_path, f"shard listed in {path.name} not found")
    return manifest


def _check_relative(manifest: Path, shard: str) -> None:
    if os.path.isabs(shard) or ".." in Path(shard).parts:
        raise ValueError(f"shard path {shard!r} must be relative to the manifest's folder")
