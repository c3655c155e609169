"""Pinning the files of one dataset version: identities recorded at open, checked on every load.

A file's identity is its inode, size and modification time. A reader records it for every file
of the set when it opens and checks it each time it opens a file later, so a dataset replaced
under an open reader raises :class:`~shardstream.errors.DatasetChangedError` instead of mixing
the two versions. No file descriptor is held between calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..errors import DatasetChangedError

__all__ = [
    "CHANGED",
    "Identity",
    "identity",
    "current",
    "look",
    "open_pinned",
    "read_pinned",
    "changed",
]

#: ``(st_ino, st_size, st_mtime_ns)``; the device is left out so that a reader pickled to a
#: process that sees the folder under another device number still recognises its files
Identity = tuple[int, int, int]

_P = TypeVar("_P", str, Path)

CHANGED = "replaced since this reader opened it; open a new reader to read the new version"


def identity(st: os.stat_result) -> Identity:
    """What identifies one version of a file: inode, size and modification time."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def current(path: str | Path) -> Identity | None:
    """The identity of the file at ``path`` now (None if there is none)."""
    try:
        return identity(os.stat(path))
    except FileNotFoundError:
        return None


def look(path: str | Path, head: int | str = 0) -> tuple[Identity | None, bytes]:
    """The identity of ``path`` (None if missing) and its first ``head`` bytes, from one open.

    Args:
        path: the file.
        head: bytes to read from the start; ``"ends"`` reads the first and the last 8 bytes;
            0 reads nothing (a ``stat`` only).
    """
    if not head:
        return current(path), b""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, b""
    try:
        st = os.fstat(fd)
        if head == "ends":
            data = os.pread(fd, 8, 0) + os.pread(fd, 8, max(0, st.st_size - 8))
        else:
            data = os.pread(fd, int(head), 0)
    finally:
        os.close(fd)
    return identity(st), data


def open_pinned(path: str | Path, pin: Identity | None) -> BinaryIO:
    """Open ``path`` for reading if it is still the pinned version.

    Raises:
        DatasetChangedError: it was replaced or removed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DatasetChangedError(path, CHANGED) from None
    if identity(os.fstat(fd)) != pin:
        os.close(fd)
        raise DatasetChangedError(path, CHANGED)
    return os.fdopen(fd, "rb", buffering=0)


def read_pinned(path: str | Path, pin: Identity | None) -> bytes:
    """The whole content of the pinned version of ``path``.

    Raises:
        DatasetChangedError: it was replaced or removed.
    """
    with open_pinned(path, pin) as f:
        return f.read()


def changed(pins: Mapping[_P, Identity | None]) -> _P | None:
    """The first pinned path whose file is not the pinned one any more (None: all unchanged)."""
    for path, pin in pins.items():
        if current(path) != pin:
            return path
    return None
