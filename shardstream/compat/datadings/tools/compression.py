"""datadings' ``tools.compression``: open plain, gzip (``.gz``) or xz (``.xz``) files."""

from __future__ import annotations

import os
from typing import IO, Any

from ....sets.tools import open_comp as _open_comp

__all__ = ["open_comp"]


def open_comp(
    path: str | os.PathLike, mode: str = "rb", level: int | None = None, encoding: str | None = None
) -> IO[Any]:
    """Open ``path`` (relative to the working directory), decompressing ``.gz`` and ``.xz``.

    Args:
        path: the file.
        mode: an ``open`` mode.
        level: compression level (gzip) or preset (xz) when writing.
        encoding: text encoding in text mode.

    Raises:
        MetadataNotFoundError: reading a file that does not exist (a ``FileNotFoundError``).
    """

    return _open_comp(os.path.abspath(path), mode=mode, level=level, encoding=encoding)
