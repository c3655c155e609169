"""Picklable functions that read one source's bytes inside a conversion worker process.

Converters build each :class:`~shardstream.write.conversion.Item`'s ``load`` from these with
:func:`functools.partial`, e.g. ``partial(read_file, path)``; only the function's name and
arguments travel to the worker, which then does the reading.

Every reader here refuses a source past the size limits before reading it in full
(:class:`~shardstream.errors.SourceTooLargeError`): ``max_bytes`` bounds the raw bytes of one
sample (default :data:`DEFAULT_MAX_SAMPLE_BYTES`, 256 MiB), and ``max_ratio`` the compression
ratio of a ZIP member (default :data:`DEFAULT_MAX_RATIO`, 100 : 1, see
:mod:`shardstream.read.zipfile`). The reads themselves are bounded, so a file that grows or a
header that lies cannot exceed the limit either.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import stat
import zipfile
import zlib
from collections import OrderedDict
from typing import IO, Any

from ..errors import BadSourceError, DatasetFormatError, SourceTooLargeError, UnsafeSourcePathError
from ..read.zipfile import DEFAULT_MAX_MEMBER_BYTES, DEFAULT_MAX_RATIO, open_zip, read_member

__all__ = [
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_SAMPLE_BYTES",
    "check_sample_size",
    "given_bytes",
    "is_safe_member_name",
    "name_problem",
    "open_compressed",
    "open_regular_file",
    "printable_name",
    "read_file",
    "read_exactly_into",
    "read_file_range",
    "read_stream_range",
    "read_zip_member",
    "refuse",
    "refuse_unsafe",
    "unsafe_reason",
]

#: Largest raw sample (bytes of one source image) converted by default: 256 MiB (see
#: :data:`shardstream.read.zipfile.DEFAULT_MAX_MEMBER_BYTES`).
DEFAULT_MAX_SAMPLE_BYTES = DEFAULT_MAX_MEMBER_BYTES

_ZIP_CACHE_SIZE = 8
_open_zips: OrderedDict[str, tuple[int, zipfile.ZipFile]] = OrderedDict()
#: Compressed streams a process keeps open (a worker reads a few tars' members at a time).
_STREAM_CACHE_SIZE = 4
_open_streams: OrderedDict[str, tuple[tuple[int, int, int, int], IO[bytes]]] = OrderedDict()


def read_file(path: str, *, max_bytes: int = DEFAULT_MAX_SAMPLE_BYTES) -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes.

    The file is opened without blocking and checked to be a regular file before reading, so a
    FIFO, a device or a directory where an image is expected is refused instead of hanging or
    reading garbage.

    Args:
        path: the file.
        max_bytes: the largest file allowed.

    Returns:
        Its bytes.

    Raises:
        BadSourceError: ``path`` is not a regular file (a directory, FIFO, device, socket).
        SourceTooLargeError: the file is larger than ``max_bytes`` (checked before reading, and
            while reading, in case it grows).
        OSError: it cannot be opened or read (missing, a dangling link, no permission).
    """
    fd, size = open_regular_file(path, max_bytes=max_bytes)
    try:
        data = _read_all(fd, size, max_bytes)
        check_sample_size(path, len(data), max_bytes)
        return data
    finally:
        os.close(fd)


def open_regular_file(path: str, *, max_bytes: int = DEFAULT_MAX_SAMPLE_BYTES) -> tuple[int, int]:
    """Open ``path`` as :func:`read_file` does (without blocking, checked to be a regular file of
    at most ``max_bytes`` bytes); return its descriptor (the caller closes it) and size.

    Raises:
        BadSourceError, SourceTooLargeError, OSError: as :func:`read_file`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a special file"
            raise BadSourceError(path, f"not a regular file ({kind})")
        check_sample_size(path, info.st_size, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def read_exactly_into(fd: int, buffer: bytearray, start: int, size: int) -> bool:
    """Read the rest of ``fd`` into ``buffer[start:start + size]``, where ``buffer`` holds at
    least ``start + size + 1`` bytes (one more, to see the end of the file in one call).

    Returns:
        Whether exactly ``size`` bytes were left to read (``False``: the file changed size while
        it was read, or a read came back short; read it again with :func:`read_file`).

    Raises:
        OSError: a read failed.
    """
    with memoryview(buffer) as whole, whole[start : start + size + 1] as view:
        return os.readv(fd, [view]) == size and os.readv(fd, [view[size:]]) == 0


def read_file_range(
    path: str, offset: int, size: int, *, max_bytes: int = DEFAULT_MAX_SAMPLE_BYTES
) -> bytes:
    """Read ``size`` bytes at ``offset`` of a file (e.g. a member of an uncompressed tar).

    Args:
        path: the file.
        offset: where the bytes start.
        size: how many bytes to read.
        max_bytes: the largest ``size`` allowed.

    Returns:
        Exactly ``size`` bytes.

    Raises:
        SourceTooLargeError: ``size`` is larger than ``max_bytes`` (nothing is read).
        BadSourceError: the file ends before ``offset + size`` (a truncated archive).
        OSError: the file cannot be opened or read.
    """
    check_sample_size(path, size, max_bytes)
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


def read_stream_range(
    path: str, offset: int, size: int, *, max_bytes: int = DEFAULT_MAX_SAMPLE_BYTES
) -> bytes:
    """Read ``size`` bytes at ``offset`` of the decompressed stream of a compressed file (a
    member of a ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz``).

    A compressed stream can only be read forward: each process keeps the streams it reads open
    (a few), so that reading a tar's members in order, as a worker or Ray task converting a run
    of them does, decompresses the tar once; a member before the stream's position starts it
    again from the beginning.

    Args:
        path: the compressed file (gzip, bzip2 or xz, told by its first bytes).
        offset: where the bytes start in the decompressed stream.
        size: how many bytes to read.
        max_bytes: the largest ``size`` allowed.

    Returns:
        Exactly ``size`` bytes.

    Raises:
        SourceTooLargeError: ``size`` is larger than ``max_bytes`` (nothing is read).
        BadSourceError: the file is no such compressed file, is damaged, or its stream ends
            before ``offset + size``.
        OSError: the file cannot be opened or read.
    """
    check_sample_size(path, size, max_bytes)
    stream = _stream(path)
    try:
        if offset < stream.tell():
            stream.seek(0)  # decompressing starts over
        stream.seek(offset)
        data = stream.read(size)
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
        _open_streams.pop(path, None)
        raise BadSourceError(path, f"damaged compressed data: {e}") from None
    except OSError as e:  # bz2 reports damaged data as OSError("Invalid data stream")
        _open_streams.pop(path, None)
        if e.errno is None:
            raise BadSourceError(path, f"damaged compressed data: {e}") from None
        raise
    if len(data) < size:
        raise BadSourceError(
            path,
            f"truncated: {size} bytes expected at offset {offset} of its decompressed stream, "
            f"it ends after {len(data)}",
        )
    return data


def read_zip_member(
    zip_path: str,
    member: str,
    *,
    max_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> bytes:
    """Read (and decompress) one member of a ZIP file; unsafe member names are refused unread.

    Each process keeps a few archives open, so reading many members costs one open per archive.

    Args:
        zip_path: the ZIP file.
        member: the member's name.
        max_bytes: the largest member allowed (uncompressed bytes).
        max_ratio: the largest compression ratio allowed for members past 1 MiB.

    Returns:
        The member's uncompressed bytes.

    Raises:
        UnsafeSourcePathError: the name is absolute or contains ``..`` (see
            :func:`is_safe_member_name`).
        SourceTooLargeError: the member is past ``max_bytes`` or ``max_ratio`` (by its header or
            by its data); it is not decompressed in full.
        BadSourceError: the archive cannot be opened, or the member is missing or damaged (bad
            CRC, bad compressed data, unsupported compression, encrypted).
    """
    source = f"{zip_path}:{member}"
    reason = unsafe_reason(member)
    if reason:
        raise UnsafeSourcePathError(source, reason)
    try:
        archive = _zip_archive(zip_path)
    except DatasetFormatError as e:
        raise BadSourceError(zip_path, e.problem) from None
    except OSError as e:  # DatasetNotFoundError, NotADatasetFileError
        raise BadSourceError(zip_path, str(e).removeprefix(f"{zip_path}: ")) from None
    try:
        return read_member(archive, member, path=zip_path, max_bytes=max_bytes, max_ratio=max_ratio)
    except SourceTooLargeError:
        raise
    except DatasetFormatError as e:
        fault = e.problem.removeprefix(f"member {member!r}: ")
        raise BadSourceError(source, f"corrupt archive member: {fault}") from None


def check_sample_size(source: str, size: int, max_bytes: int) -> None:
    """Refuse a sample of ``size`` bytes when it is larger than ``max_bytes``.

    Raises:
        SourceTooLargeError: ``size > max_bytes``; the message names ``source`` and the limit.
    """
    if size > max_bytes:
        raise SourceTooLargeError(
            source,
            f"{size:,} bytes or more, larger than the largest sample allowed ({max_bytes:,} "
            "bytes; raise it with --max-sample-bytes)",
        )


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


def refuse_unsafe(source: str, reason: str) -> bytes:
    """Raise :class:`~shardstream.errors.UnsafeSourcePathError`: the load function of a source
    refused unread while listing (an unsafe member name, a link out of the folder).

    Raises:
        UnsafeSourcePathError: always.
    """
    raise UnsafeSourcePathError(source, reason)


def printable_name(name: str) -> str:
    """``name`` with bytes that are not UTF-8 (decoded with ``surrogateescape``, as file and
    tar member names are) shown as ``\\xNN`` escapes, so it can be printed and written to UTF-8
    reports."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte decoded to
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def name_problem(name: str) -> str:
    """Why a file or member name cannot become a sample key, or ``""``: unsafe (see
    :func:`unsafe_reason`) or not valid UTF-8 (keys are UTF-8 strings; such a name is refused
    rather than altered, so keys always name their source exactly)."""
    reason = unsafe_reason(name)
    if reason:
        return reason
    shown = printable_name(name)
    if shown is not name:
        return f"name '{shown}' is not valid UTF-8, which sample keys must be; refused"
    return ""


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


def _read_all(fd: int, size_hint: int, max_bytes: int) -> bytes:
    """Read to EOF, but no more than ``max_bytes + 1`` bytes (the caller checks the length)."""
    chunks = []
    left = max_bytes + 1
    want = min(max(size_hint, 0) + 1, left)  # one byte more, to see EOF in one call
    while left > 0:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
        want = min(1 << 20, left)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def open_compressed(path: str) -> IO[bytes]:
    """Open a gzip, bzip2 or xz compressed file (told by its first bytes) for reading its
    decompressed stream (which checks the format's CRCs as it goes).

    Raises:
        BadSourceError: the file is none of these.
        OSError: it cannot be opened or read.
    """
    with open(path, "rb") as f:
        magic = f.read(6)
    opener: Any
    if magic.startswith(b"\x1f\x8b"):
        opener = gzip.open
    elif magic.startswith(b"BZh"):
        opener = bz2.open
    elif magic.startswith(b"\xfd7zXZ\x00"):
        opener = lzma.open
    else:
        raise BadSourceError(path, "not a gzip, bzip2 or xz compressed file")
    return opener(path, "rb")


def _stream(path: str) -> IO[bytes]:
    """This process's open decompressing reader of ``path`` (opened on first use)."""
    pid = os.getpid()
    info = os.stat(path)
    identity = (pid, info.st_ino, info.st_size, info.st_mtime_ns)  # a replaced file is reopened
    cached = _open_streams.get(path)
    if cached is not None and cached[0] == identity:
        _open_streams.move_to_end(path)
        return cached[1]
    if cached is not None and cached[0][0] == pid:
        cached[1].close()
    stream = open_compressed(path)
    _open_streams[path] = (identity, stream)
    while len(_open_streams) > _STREAM_CACHE_SIZE:
        _, (owner, oldest) = _open_streams.popitem(last=False)
        if owner[0] == pid:
            oldest.close()
    return stream


def _zip_archive(path: str) -> zipfile.ZipFile:
    pid = os.getpid()
    cached = _open_zips.get(path)
    if cached is not None and cached[0] == pid:
        _open_zips.move_to_end(path)
        return cached[1]
    archive = open_zip(path)
    _open_zips[path] = (pid, archive)
    while len(_open_zips) > _ZIP_CACHE_SIZE:
        _, (owner, oldest) = _open_zips.popitem(last=False)
        if owner == pid:
            oldest.close()
    return archive
