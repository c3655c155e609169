"""shardstream: packed, checksummed image datasets streamed into PyTorch training.

The public names of datadings, dinov2.data, helios, stable_pretraining's DINO and Deep Lake's loader
live in the modules where their behaviour lives; this module only re-exports them.
"""

from . import errors
from .format import (
    ChecksumWarning,
    convert_legacy_index,
    hash_keys,
    hash_string,
    load_md5file,
    packb,
    unpackb,
    verify_data,
    verify_index,
)
from .order import Augment, Cycler, QuasiShuffler, Range, Repeater, Shuffler
from .read import (
    DirectoryReader,
    ListReader,
    MsgpackReader,
    Reader,
    ShardedReader,
    ZipFileReader,
)
from .write import FileWriter, RawWriter, Writer, query_user

__version__ = "0.1.0"

__all__ = [
    "Augment",
    "ChecksumWarning",
    "Cycler",
    "DirectoryReader",
    "FileWriter",
    "ListReader",
    "MsgpackReader",
    "QuasiShuffler",
    "Range",
    "RawWriter",
    "Reader",
    "Repeater",
    "ShardedReader",
    "Shuffler",
    "Writer",
    "ZipFileReader",
    "convert_legacy_index",
    "errors",
    "hash_keys",
    "hash_string",
    "load_md5file",
    "packb",
    "query_user",
    "unpackb",
    "verify_data",
    "verify_index",
]
