"""Remote sets: URLs (``s3://``, ``gs://``, ``https://``, fsspec chains) read through fsspec.

- :mod:`.url`: telling URLs from paths, opening their filesystem;
- :mod:`.retry`: backoff with jitter for transient faults, typed errors for the rest;
- :mod:`.cache`: the node-local shard cache shared by every process of a node;
- :mod:`.reader`: :func:`open_remote` and the readers of remote shards;
- :mod:`.prefetch`: fetching the shards an epoch will read next, in use order.
"""

from .cache import ShardCache, default_cache_dir
from .reader import RemoteSet, RemoteShardReader, open_remote
from .retry import RetryPolicy
from .url import is_url

__all__ = [
    "RemoteSet",
    "RemoteShardReader",
    "RetryPolicy",
    "ShardCache",
    "default_cache_dir",
    "is_url",
    "open_remote",
]
