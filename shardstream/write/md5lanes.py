"""md5 of several buffers or files at once: eight streams in the lanes of AVX2 registers.

md5 of one stream is serial (~700 MB/s on a core, whatever the code), and it is the slowest
step of a datadings-compatible writer: the ``.md5`` file and the manifest name each data file's
md5. A worker that has written several shards can hash them side by side instead: the C
extension ``shardstream.write._md5lanes`` runs eight independent md5 streams in the eight
32-bit lanes of 256-bit AVX2 registers, for several times one stream's throughput on the same
core (a lane whose buffer ends takes the next one; the last lone one finishes in scalar C). The
digests are md5's, equal to :mod:`hashlib`'s.

Without the extension (no compiler at install time) or without AVX2 on this CPU,
:data:`LANES_AVAILABLE` is false and the functions hash one buffer after the other with
:mod:`hashlib`; callers that can overlap md5 with other work (the writers' md5 thread) should
then do that instead.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Sequence

__all__ = ["LANES", "LANES_AVAILABLE", "file_hexdigests", "hexdigests"]

try:
    from . import _md5lanes
except ImportError:  # built without the extension
    _md5lanes = None  # type: ignore[assignment]

_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)

#: Buffers hashed side by side at most (the lanes of one AVX2 register).
LANES = 8
#: Whether the lanes kernel runs here (the extension is built and the CPU has AVX2).
LANES_AVAILABLE = _md5lanes is not None and _md5lanes.avx2()


def hexdigests(
    buffers: Sequence[bytes | bytearray | memoryview | mmap.mmap], *, lanes: bool = True
) -> list[str]:
    """The md5 hex digest of each of ``buffers`` (any number, any lengths), in order.

    Args:
        buffers: contiguous bytes-like objects; they must not change while hashed (the GIL is
            released).
        lanes: hash them side by side in AVX2 lanes when this machine can; ``False`` hashes
            one after the other (as without AVX2).
    """
    if _md5lanes is not None:
        return _md5lanes.hexdigests(buffers, vector=lanes)
    return [hashlib.md5(buffer).hexdigest() for buffer in buffers]


def file_hexdigests(paths: Sequence[str | os.PathLike], *, lanes: bool = True) -> list[str]:
    """The md5 hex digest of each file of ``paths``, hashed side by side (see
    :func:`hexdigests`) from memory maps: files just written are read from the page cache.

    Raises:
        OSError: a file cannot be opened or mapped.
    """
    maps: list[mmap.mmap] = []
    buffers: list[bytes | mmap.mmap] = []
    try:
        for path in paths:
            with open(path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size == 0:  # an empty file cannot be mapped
                    buffers.append(b"")
                    continue
                # populated at once: one call maps every page instead of a fault per page
                mapped = mmap.mmap(file.fileno(), size, flags=_MAP_FLAGS, prot=mmap.PROT_READ)
            maps.append(mapped)
            buffers.append(mapped)
        return hexdigests(buffers, lanes=lanes)
    finally:
        for mapped in maps:
            mapped.close()
