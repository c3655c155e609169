"""The content digest of a data set, as recorded in a loader's state to refuse resuming on another.

The digest costs O(1) per file: it is read from what the writer recorded (a data file's md5 in
its ``.md5`` file; for a sharded set, the md5 of every shard), never computed from the data.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import ShardstreamError
from ..format.integrity import load_md5file
from ..read.msgpack import MsgpackReader
from ..read.sharded import ShardedReader

__all__ = ["content_digest"]


def content_digest(reader: Any) -> str | None:
    """Return the recorded content digest of the data set ``reader`` reads.

    Args:
        reader: a :class:`~shardstream.read.MsgpackReader` (digest ``"md5:<hex>"``, the md5 of
            the data file in its ``.md5`` file) or :class:`~shardstream.read.ShardedReader`
            (``"shards:<hex>"``, the md5 of the shards' digests in order); other readers have
            none.

    Returns:
        The digest, or ``None`` when the set records none (another reader, a missing or
        unreadable ``.md5`` file, a data file it does not list).
    """
    if isinstance(reader, MsgpackReader):
        try:
            recorded = load_md5file(reader._paths.md5)
        except (ShardstreamError, OSError):
            return None
        digest = recorded.get(reader.path.name)
        return None if digest is None else f"md5:{digest}"
    if isinstance(reader, ShardedReader):
        parts = [content_digest(shard) for shard in reader.shards]
        if not parts or None in parts:
            return None
        joined = "\n".join(f"{len(shard)} {part}" for shard, part in zip(reader.shards, parts))
        return f"shards:{hashlib.md5(joined.encode()).hexdigest()}"
    return None
