"""Writers: atomic dataset output with index and checksum files."""

from .prompt import query_user
from .writer import FileWriter, RawWriter, Writer

__all__ = ["FileWriter", "RawWriter", "Writer", "query_user"]
