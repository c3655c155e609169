"""The set-level offsets of a sharded set: every shard's ``.offsets`` file in one object.

``<stem>.set-offsets`` (next to ``<stem>.manifest``) holds the content of each shard's
``.offsets`` file, concatenated in the manifest's order: ``samples + 1`` big-endian uint64
values per shard, the last its data file's size. The manifest names it with its size and md5::

    "offsets": {"path": "train.set-offsets", "bytes": 160384, "md5": "..."}

so that a reader of a remote set learns where every sample of every shard lies in one request
instead of one per shard (a shuffled first batch touches about one shard per sample). It is
optional: a manifest without the entry (an older writer's) is read as before, shard by shard.
Every shard keeps its own ``.offsets`` file, so each shard stays a datadings dataset.
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptIndexError
from .paths import SUFFIX_OFFSETS

__all__ = [
    "SUFFIX_SET_OFFSETS",
    "SetOffsets",
    "encode_set_offsets",
    "parse_set_offsets_entry",
    "set_offsets_of_shards",
    "set_offsets_path",
    "split_set_offsets",
]

#: the name of a set's offsets file: the manifest's stem and this suffix
SUFFIX_SET_OFFSETS = ".set-offsets"


@dataclass(frozen=True)
class SetOffsets:
    """The manifest's entry for the set's offsets file.

    Attributes:
        path: the file, relative to the manifest.
        bytes: its size.
        md5: its md5 (hex).
    """

    path: str
    bytes: int
    md5: str

    @classmethod
    def of(cls, path: str, data: builtins.bytes) -> SetOffsets:
        """The entry for ``data`` stored at ``path`` (relative to the manifest)."""
        return cls(path=path, bytes=len(data), md5=hashlib.md5(data).hexdigest())


def set_offsets_path(manifest: str | os.PathLike) -> Path:
    """Where the offsets file of the manifest ``manifest`` goes (``x.manifest`` gives
    ``x.set-offsets``)."""
    manifest = Path(manifest)
    stem = (
        manifest.name[: -len(".manifest")] if manifest.name.endswith(".manifest") else manifest.name
    )
    return manifest.with_name(stem + SUFFIX_SET_OFFSETS)


def encode_set_offsets(parts: Sequence[bytes]) -> bytes:
    """The offsets file's content: each shard's ``.offsets`` content, in the manifest's order.

    Raises:
        ValueError: a part is not a whole number of 8-byte values, or holds fewer than one.
    """
    for number, part in enumerate(parts):
        if len(part) < 8 or len(part) % 8:
            raise ValueError(f"shard {number}: an offsets file of {len(part)} bytes")
    return b"".join(parts)


def set_offsets_of_shards(folder: Path, names: Sequence[str]) -> bytes | None:
    """:func:`encode_set_offsets` of the ``.offsets`` files of the shards ``names`` in
    ``folder``; ``None`` where a shard has none (a legacy ``.index`` shard)."""
    parts = []
    for name in names:
        try:
            parts.append((folder / (name + SUFFIX_OFFSETS)).read_bytes())
        except FileNotFoundError:
            return None
    return encode_set_offsets(parts)


def split_set_offsets(
    where: str | os.PathLike, data: bytes, counts: Sequence[int], entry: SetOffsets
) -> list[bytes]:
    """Each shard's ``.offsets`` content, cut from the offsets file ``data``.

    Args:
        where: the file's path or URL (for messages).
        data: its content.
        counts: each shard's sample count, from the manifest.
        entry: the manifest's entry for it (size and md5 checked).

    Raises:
        CorruptIndexError: ``data`` is not the file the manifest names, or does not hold
            ``count + 1`` values per shard.
    """
    if len(data) != entry.bytes or hashlib.md5(data).hexdigest() != entry.md5:
        raise CorruptIndexError(
            where, f"{len(data)} bytes that differ from the manifest's size and md5"
        )
    expected = 8 * sum(count + 1 for count in counts)
    if len(data) != expected:
        raise CorruptIndexError(
            where, f"{len(data)} bytes, the manifest's shards need {expected} (8 per offset)"
        )
    parts, start = [], 0
    for count in counts:
        end = start + 8 * (count + 1)
        parts.append(data[start:end])
        start = end
    return parts


def parse_set_offsets_entry(where: str | os.PathLike, document: dict) -> SetOffsets | None:
    """The manifest ``document``'s ``"offsets"`` entry, ``None`` where it has none.

    Raises:
        CorruptIndexError: the entry is malformed, or its path leaves the manifest's folder.
    """
    entry = document.get("offsets")
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise CorruptIndexError(where, "manifest entry is malformed: 'offsets' is no object")
    for field, kind in (("path", str), ("bytes", int), ("md5", str)):
        value = entry.get(field)
        if type(value) is not kind or (isinstance(value, int) and value < 0):
            raise CorruptIndexError(
                where, f"manifest entry is malformed: offsets field {field!r} is {value!r:.60}"
            )
    path = entry["path"]
    if not path or "\0" in path or os.path.isabs(path) or ".." in Path(path).parts:
        raise CorruptIndexError(where, f"offsets path {path!r:.60} leaves the manifest's folder")
    return SetOffsets(path=path, bytes=entry["bytes"], md5=entry["md5"])
