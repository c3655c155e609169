"""The manifest of a dataset split into shards: one JSON file listing the shard files in order.

``<name>.manifest`` holds ``{"format": "shardstream.manifest", "version": 1, "samples": N,
"shards": [{"path": "<file relative to the manifest>", "samples": n, "bytes": size,
"md5": "<md5 of the data file>"}, ...]}``, and where the writer wrote one, ``"offsets": {...}``
naming the set's offsets file (every shard's offsets in one object, see
:mod:`shardstream.format.set_offsets`). :class:`~shardstream.read.ShardedReader` opens a
manifest path as one dataset.

The manifest is a sharded set's commit point: :class:`~shardstream.write.ShardedWriter` commits
the shards and the manifest as one group (see :mod:`shardstream.format.atomic`), the manifest
renamed last, so :func:`load_manifest` first finishes an interrupted commit.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CorruptIndexError, DatasetNotFoundError, IndexMismatchError
from .atomic import StagedFiles, load_json_document, settle
from .set_offsets import SetOffsets, parse_set_offsets_entry

__all__ = [
    "MANIFEST_SUFFIX",
    "ShardEntry",
    "Manifest",
    "is_manifest",
    "write_manifest",
    "manifest_bytes",
    "load_manifest",
    "load_manifest_pinned",
    "entry_order_faults",
]

MANIFEST_SUFFIX = ".manifest"
_FORMAT = "shardstream.manifest"
_VERSION = 1
#: a manifest lists shards, a few hundred bytes each; anything larger is not one
_MAX_MANIFEST_BYTES = 256 << 20


@dataclass(frozen=True)
class ShardEntry:
    """One shard: its data file (relative to the manifest), sample count, size and md5."""

    path: str
    samples: int
    bytes: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: where it lives, its shards in order and its set offsets file (if any)."""

    path: Path
    shards: tuple[ShardEntry, ...]
    offsets: SetOffsets | None = None

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


def manifest_bytes(
    path: str | os.PathLike, shards: Sequence[ShardEntry], offsets: SetOffsets | None = None
) -> bytes:
    """The content of the manifest ``path`` listing ``shards`` (UTF-8 JSON), and ``offsets``,
    the set's offsets file, where given (see :mod:`shardstream.format.set_offsets`).

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
    if offsets is not None:
        _check_relative(path, offsets.path)
        document["offsets"] = asdict(offsets)
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def write_manifest(path: str | os.PathLike, shards: Sequence[ShardEntry]) -> Path:
    """Write a manifest atomically (temp name, fsync, rename).

    Raises:
        ValueError: a shard path is absolute or leaves the manifest's folder.
    """
    path = Path(path)
    content = manifest_bytes(path, shards)
    staged = StagedFiles()
    try:
        staged.write_bytes(path, content)
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return path


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest (finishing an interrupted commit of it first).

    Raises:
        DatasetNotFoundError: the manifest or a shard file does not exist.
        CorruptIndexError: not a shardstream manifest (bad JSON, format, version or fields, a
            number out of range), or a shard path that is absolute or leaves the manifest's
            folder.
        IndexMismatchError: the total does not equal the sum of the shards.
        UnfinishedCommitError: an interrupted commit cannot be finished by this process.
    """
    return load_manifest_pinned(path)[0]


def load_manifest_pinned(path: str | os.PathLike) -> tuple[Manifest, os.stat_result]:
    """:func:`load_manifest`, also returning the ``stat`` of the manifest file it read.

    Raises:
        the errors of :func:`load_manifest`.
    """
    path = Path(path)
    settle(path)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(_MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise DatasetNotFoundError(path) from None
    except IsADirectoryError:
        raise CorruptIndexError(path, "manifest is a directory") from None
    if len(data) > _MAX_MANIFEST_BYTES:
        raise CorruptIndexError(path, f"manifest is over {_MAX_MANIFEST_BYTES} bytes")
    document = load_json_document(path, data, "manifest")
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise CorruptIndexError(path, f"not a shardstream manifest (format must be {_FORMAT!r})")
    if document.get("version") != _VERSION:
        raise CorruptIndexError(
            path, f"unsupported manifest version {document.get('version')!r:.40}"
        )
    shards = document.get("shards")
    if not isinstance(shards, list):
        raise CorruptIndexError(path, "manifest entry is malformed: 'shards' must be a list")
    entries = tuple(_entry(path, number, shard) for number, shard in enumerate(shards))
    total = document.get("samples")
    if type(total) is not int or total < 0:
        raise CorruptIndexError(
            path, f"manifest entry is malformed: 'samples' is {total!r:.40}, not a count"
        )
    for shard in entries:
        try:
            _check_relative(path, shard.path)
        except ValueError as e:
            raise CorruptIndexError(path, str(e)) from None
    if total != sum(shard.samples for shard in entries):
        raise IndexMismatchError(
            path,
            f"manifest says {total} samples but its shards hold {sum(s.samples for s in entries)}",
        )
    manifest = Manifest(path, entries, parse_set_offsets_entry(path, document))
    for shard_path in manifest.shard_paths():
        if not shard_path.is_file():
            raise DatasetNotFoundError(shard_path, f"shard listed in {path.name} not found")
    return manifest, st


def _entry(path: Path, number: int, shard: object) -> ShardEntry:
    """One validated shard entry of the manifest ``path``."""
    if not isinstance(shard, dict):
        raise CorruptIndexError(path, f"manifest entry is malformed: shard {number} is no object")
    for field, kind in (("path", str), ("samples", int), ("bytes", int), ("md5", str)):
        value = shard.get(field)
        if type(value) is not kind or (isinstance(value, int) and value < 0):
            raise CorruptIndexError(
                path,
                f"manifest entry is malformed: shard {number} field {field!r} is {value!r:.60}",
            )
    shard_path: str = shard["path"]
    if "\0" in shard_path or not shard_path:
        raise CorruptIndexError(path, f"shard {number} has an unusable path {shard_path!r:.60}")
    return ShardEntry(
        path=shard_path, samples=shard["samples"], bytes=shard["bytes"], md5=shard["md5"]
    )


def entry_order_faults(manifest: Manifest) -> list[str]:
    """What is wrong with the order of a manifest's entries: duplicates and entries out of order.

    Shards are expected in natural order of their paths (``x-00002`` before ``x-00010``), the
    order :class:`~shardstream.write.ShardedWriter` writes and a glob lists them in.

    Returns:
        One message per fault (empty when all is well).
    """
    faults = []
    seen: dict[str, int] = {}
    for number, shard in enumerate(manifest.shards):
        first = seen.setdefault(os.path.normpath(shard.path), number)
        if first != number:
            faults.append(f"shard {number} ({shard.path}) repeats shard {first}")
    keys = [_natural_key(shard.path) for shard in manifest.shards]
    for number in range(1, len(keys)):
        if keys[number] < keys[number - 1]:
            faults.append(
                f"shard {number} ({manifest.shards[number].path}) is listed after "
                f"{manifest.shards[number - 1].path}: entries out of order"
            )
    return faults


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]


def _check_relative(manifest: Path, shard: str) -> None:
    if os.path.isabs(shard) or ".." in Path(shard).parts:
        raise ValueError(f"shard path {shard!r} must be relative to the manifest's folder")
