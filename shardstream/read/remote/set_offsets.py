"""Every shard's offsets of a remote set in one request: the set's offsets file.

A manifest written by shardstream's writers names the set's offsets file (every shard's
``.offsets`` content in one object, see :mod:`shardstream.format.set_offsets`). Where it is
small enough (:data:`WHOLE_LIMIT`), the first shard whose offsets a process needs without having
the shard in its cache loads the whole file instead of that shard's ``.offsets``: one request of
the same round trip, after which every shard's offsets are known (a process forked later
inherits them). A shuffled first batch (:mod:`.ranged`) then needs no ``.offsets`` request at
all, where it needed one per shard it touches. A set without the file (an older writer's), one
whose file is larger, or one whose file cannot be read or is not what the manifest names, is read
shard by shard as before.
"""

from __future__ import annotations

import warnings
from typing import Any

from ...errors import CorruptIndexError, DatasetNotFoundError, RemoteStorageError
from ...format.set_offsets import SetOffsets, split_set_offsets

__all__ = ["WHOLE_LIMIT", "RemoteSetOffsets"]

#: the largest set offsets file loaded whole (8 bytes a sample: half a million samples); a
#: larger one is left alone and each shard's ``.offsets`` is read instead
WHOLE_LIMIT = 4 << 20


class RemoteSetOffsets:
    """A remote set's offsets file: where it is, what the manifest says of it, its parts once
    loaded.

    Args:
        url: the file's URL.
        entry: the manifest's entry for it (size and md5).
        counts: each shard's sample count, from the manifest.
    """

    def __init__(self, *, url: str, entry: SetOffsets, counts: list[int]) -> None:
        self.url = url
        self.entry = entry
        self.counts = counts
        self._parts: list[bytes] | None = None
        self._failed = entry.bytes > WHOLE_LIMIT

    @property
    def loaded(self) -> bool:
        """Whether this process holds every shard's offsets (no request needed)."""
        return self._parts is not None

    @property
    def usable(self) -> bool:
        """Whether :meth:`part` may give offsets (loaded, or small enough and not failed)."""
        return self._parts is not None or not self._failed

    def load(self, remote: Any) -> bool:
        """Load the file through ``remote`` (a :class:`~.remote_set.RemoteSet`) unless done,
        once; ``False`` where it is not usable (see the module docstring)."""
        if self._parts is None and not self._failed:
            self.take(remote.read_many([self.url]).get(self.url))
        return self._parts is not None

    def take(self, data: bytes | None) -> None:
        """Keep the file's content ``data`` (``None``: it could not be read); a content that
        is not the file the manifest names is dropped with a warning."""
        if data is None:
            self._failed = True
            return
        try:
            self._parts = split_set_offsets(self.url, data, self.counts, self.entry)
        except CorruptIndexError as e:
            self._failed = True
            warnings.warn(f"{e}; reading each shard's offsets instead", stacklevel=3)

    def part(self, remote: Any, number: int) -> bytes | None:
        """Shard ``number``'s ``.offsets`` content, loading the file first where needed;
        ``None`` where the file is not usable."""
        try:
            loaded = self.load(remote)
        except (DatasetNotFoundError, RemoteStorageError):
            self._failed = True
            return None
        return self._parts[number] if loaded and self._parts is not None else None
