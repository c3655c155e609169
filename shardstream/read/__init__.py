"""Readers: random and sequential access to packed datasets and to plain files."""

from .msgpack import MsgpackReader
from .reader import Reader
from .sharded import ShardedReader

__all__ = ["MsgpackReader", "Reader", "ShardedReader"]
