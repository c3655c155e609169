"""Picklable functions that read one source's bytes inside a conversion worker process.

Converters build each :class:`~shardstream.write.conversion.Item`'s ``load`` from these with
:func:`functools.partial`, e.g. ``partial(read_file, path)``; only the function's name and
arguments travel to the worker, which then does the reading.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import OrderedDict

from ..errors import BadSourceError, UnsafeSourcePathError

__all__ = [
    "read_file",
    "read_file_range",
    "read_zip_member",
    "is_safe_member_name",
    "unsafe_reason",
]

_ZIP_CACHE_SIZE = 8
_open_zips: OrderedDict[str, tuple[int, zipfile.ZipFile]] = OrderedDict()


def read_file(path: str) -> bytes:
    """Read a whole regular file.

    The file is opened without blocking and checked to be a regular file before reading, so a
    FIFO, a device or a directory where an image is expected is refused instead of hanging or
    reading garbage.

    Args:
        path: the file.

    Returns:
        Its bytes.

    Raises:
        BadSourceError: ``path`` is not a regular file (a directory, FIFO, device, socket).
        OSError: it cannot be opened or read (missing, a dangling link, no permission).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a special file"
            raise BadSourceError(path, f"not a regular file ({kind})")
        return _read_all(fd, info.st_size)
    finally:
        os.close(fd)


def read_file_range(path: str, offset: int, size: int) -> bytes:
    """Read ``size`` bytes at ``offset`` of a file (e.g. a member of an uncompressed tar).

    Args:
        path: the file.
        offset: where the bytes start.
        size: how many bytes to read.

    Returns:
        Exactly ``size`` bytes.

    Raises:
        BadSourceError: the file ends before ``offset + size`` (a truncated archive).
        OSError: the file cannot be opened or read.
    """
    with open(path, "rb", buffering=0) as f:
        data = os.pread(f.fileno(), size, offset) if size else b""
        while len(data) < size:
            more = os.pread(f.fileno(), size - len(data), offset + len(data))
            if not more:
                raise BadSourceError(
                    path,
                    f"truncated: {size} bytes expected at offset {offset}, the file ends after "
                    f"{len(data)}",
                )
            data += more
    return data


def read_zip_member(zip_path: str, member: str) -> bytes:
    """Read (and decompress) one member of a ZIP file; unsafe member names are refused unread.

    Each process keeps a few archives open, so reading many members costs one open per archive.

    Args:
        zip_path: the ZIP file.
        member: the member's name.

    Returns:
        The member's uncompressed bytes.

    Raises:
        UnsafeSourcePathError: the name is absolute or contains ``..`` (see
            :func:`is_safe_member_name`).
        BadSourceError: the member is missing or its data is corrupt (bad CRC, bad deflate data).
        OSError: the archive cannot be opened or read.
    """
    reason = unsafe_reason(member)
    if reason:
        raise UnsafeSourcePathError(f"{zip_path}:{member}", reason)
    try:
        archive = _zip_archive(zip_path)
    except zipfile.BadZipFile as e:
        raise BadSourceError(zip_path, f"not a valid ZIP file: {e}") from None
    try:
        return archive.read(member)
    except KeyError:
        raise BadSourceError(f"{zip_path}:{member}", "no such member in the archive") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as e:  # CRC, bad deflate data, bad header
        raise BadSourceError(f"{zip_path}:{member}", f"corrupt archive member: {e}") from None
    except NotImplementedError as e:  # compression method not supported
        raise BadSourceError(f"{zip_path}:{member}", f"cannot decompress: {e}") from None


def given_bytes(data: bytes) -> bytes:
    """Return ``data``: the load function of a source already read in the main process
    (e.g. a member of a compressed tar, which can only be read in order)."""
    return data


def refuse(source: str, reason: str) -> bytes:
    """Raise :class:`~shardstream.errors.BadSourceError`: the load function of a source found
    bad while listing (e.g. a WebDataset sample without an image), reported like any other.

    Raises:
        BadSourceError: always.
    """
    raise BadSourceError(source, reason)


def is_safe_member_name(name: str) -> bool:
    """Whether an archive member's name stays inside the archive's root when joined to a folder.

    Unsafe: empty names, absolute names (``/x``, ``\\x``, ``C:x``) and names with a ``..``
    component (either separator).
    """
    return not unsafe_reason(name)


def unsafe_reason(name: str) -> str:
    """Why an archive member's name is unsafe, or ``""`` if it is safe (see :func:`is_safe_member_name`)."""
    if not name:
        return "unsafe member name: it is empty; refused"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"unsafe member name {name!r}: it is absolute; refused"
    if ".." in name.replace("\\", "/").split("/"):
        return f"unsafe member name {name!r}: '..' would escape the archive's root; refused"
    return ""


def _read_all(fd: int, size_hint: int) -> bytes:
    chunks = []
    want = max(size_hint, 0) + 1  # one byte more, to see EOF in one call for an unchanged file
    while True:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        want = 1 << 20
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _zip_archive(path: str) -> zipfile.ZipFile:
    pid = os.getpid()
    cached = _open_zips.get(path)
    if cached is not None and cached[0] == pid:
        _open_zips.move_to_end(path)
        return cached[1]
    archive = zipfile.ZipFile(path)
    _open_zips[path] = (pid, archive)
    while len(_open_zips) > _ZIP_CACHE_SIZE:
        _, (owner, oldest) = _open_zips.popitem(last=False)
        if owner == pid:
            oldest.close()
    return archive
