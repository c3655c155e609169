"""datadings' ``reader.msgpack``: :class:`MsgpackReader` for one packed file (or a URL of one).

``MsgpackReader("s3://bucket/train.msgpack")`` (any fsspec URL; also a ``*.manifest`` URL)
opens the remote set through the node-local shard cache (see :mod:`shardstream.read.remote`)
and returns that reader, a :class:`~shardstream.read.ShardedReader`; ``storage_options``
passes credentials and endpoints. A ``file://`` URL is its local path.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from ....read import MsgpackReader as _MsgpackReader
from ....read.open import open_dataset
from ....read.remote.url import is_url, local_path_of

__all__ = ["MsgpackReader"]


class MsgpackReader(_MsgpackReader):
    """:class:`shardstream.read.MsgpackReader`, which a URL opens remotely (see the module).

    Args:
        path: the data file, or a URL of a data file or manifest.
        buffering, checksums: as :class:`shardstream.read.MsgpackReader`.
        storage_options: fsspec options of a URL (credentials, endpoint).

    Raises:
        DatasetNotFoundError, MissingIndexError, ...: as :class:`shardstream.read.MsgpackReader`.
        RemoteStorageError, MissingDependencyError: a URL cannot be read.
    """

    def __new__(cls, path: Any = None, *args: Any, **kwargs: Any) -> Any:
        # pickling calls __new__ without arguments: a local reader then, restored by state
        if is_url(path) and local_path_of(path) is None:
            return open_dataset(path, storage_options=kwargs.get("storage_options"))
        return super().__new__(cls)

    def __init__(
        self,
        path: str | os.PathLike,
        buffering: int = 0,
        *,
        checksums: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        local = local_path_of(path) if isinstance(path, str) else None
        super().__init__(local or path, buffering, checksums=checksums)


# the signature users see is __init__'s (not __new__'s, which only dispatches URLs)
_init = inspect.signature(MsgpackReader.__init__)
MsgpackReader.__signature__ = _init.replace(  # type: ignore[attr-defined]
    parameters=list(_init.parameters.values())[1:]
)
