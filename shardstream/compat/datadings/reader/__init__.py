"""datadings' ``reader``: shardstream's readers (:mod:`shardstream.read`) and augments
(:mod:`shardstream.order`) under datadings' names."""

from .augment import Cycler, QuasiShuffler, Range, Repeater, Shuffler
from .directory import DirectoryReader
from .list import ListReader
from .msgpack import MsgpackReader
from .reader import Reader
from .zipfile import ZipFileReader

__all__ = [
    "Cycler",
    "DirectoryReader",
    "ListReader",
    "MsgpackReader",
    "QuasiShuffler",
    "Range",
    "Reader",
    "Repeater",
    "Shuffler",
    "ZipFileReader",
]
