"""Writers: atomic dataset output with index and checksum files, sharding, and conversion."""

from .checksums import add_checksums
from .conversion import ConvertReport, Item, convert
from .prompt import query_user
from .sharded import ShardedWriter
from .writer import FileWriter, RawWriter, Writer

__all__ = [
    "ConvertReport",
    "add_checksums",
    "FileWriter",
    "Item",
    "RawWriter",
    "ShardedWriter",
    "Writer",
    "convert",
    "query_user",
]
