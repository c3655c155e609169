"""datadings' ``reader.sharded``: :class:`ShardedReader` over several packed files."""

from ....read import MsgpackReader, Reader, ShardedReader

__all__ = ["MsgpackReader", "Reader", "ShardedReader"]
