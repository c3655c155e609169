"""Types of the C extension ``shardstream.write._md5lanes`` (see ``_md5lanes.c``)."""

from collections.abc import Sequence
from mmap import mmap

LANES: int

def hexdigests(
    buffers: Sequence[bytes | bytearray | memoryview | mmap], *, vector: bool = True
) -> list[str]: ...
def avx2() -> bool: ...
