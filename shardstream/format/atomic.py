"""Atomic replacement of a group of files: stage under temp names, fsync, then rename into place.

Nothing appears under a final name until :meth:`StagedFiles.commit`; an exception (or a kill) before
that leaves whatever was under the final names untouched. Temp files live in the target directory
(so the rename is atomic on one file system) and are hidden: ``.<name>.<random>.tmp``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["StagedFiles", "fsync_dir", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"


class StagedFiles:
    """A set of files written under temp names and renamed to their final names together.

    Use :meth:`open` for streamed content or :meth:`write_bytes` for small files, then
    :meth:`commit` (renames in the order the files were staged) or :meth:`abort`.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._done = False

    def open(self, final: Path) -> BinaryIO:
        """Create a temp file for ``final`` and return it opened for unbuffered binary writing."""
        final = Path(final)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
        self._staged.append((Path(tmp), final))
        return os.fdopen(fd, "wb", buffering=0)

    def write_bytes(self, final: Path, data: bytes | bytearray | memoryview) -> None:
        """Stage ``data`` as the complete content of ``final`` (written and fsynced now)."""
        with self.open(final) as f:
            view = memoryview(data)
            while view:
                view = view[f.write(view) :]
            os.fsync(f.fileno())

    def commit(self, last: Path | None = None) -> None:
        """Rename every staged file to its final name, then fsync the directories.

        Args:
            last: the final path to rename after all others (e.g. the checksum file).
        """
        ordered = sorted(self._staged, key=lambda item: item[1] == last)
        for tmp, final in ordered:
            os.replace(tmp, final)
        for directory in {final.parent for _, final in self._staged}:
            fsync_dir(directory)
        self._staged.clear()
        self._done = True

    def abort(self) -> None:
        """Delete every staged temp file; final names are left as they were."""
        for tmp, _ in self._staged:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._staged.clear()
        self._done = True

    @property
    def temp_paths(self) -> list[Path]:
        """The temp files staged so far (for diagnostics and cleanup)."""
        return [tmp for tmp, _ in self._staged]


def fsync_dir(directory: Path) -> None:
    """fsync a directory so renames inside it survive a power cut (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
