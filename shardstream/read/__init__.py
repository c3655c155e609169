"""Readers: random and sequential access to packed datasets and to plain files."""

from .directory import DirectoryReader
from .list import ListReader
from .msgpack import MsgpackReader
from .reader import Reader
from .sharded import ShardedReader
from .zipfile import ZipFileReader

__all__ = [
    "DirectoryReader",
    "ListReader",
    "MsgpackReader",
    "Reader",
    "ShardedReader",
    "ZipFileReader",
]
