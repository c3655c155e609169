"""datadings' ``reader.sharded``: :class:`ShardedReader` over several packed files."""

from ....read import ShardedReader

__all__ = ["ShardedReader"]
