"""ZipFileReader: samples are the members of a ZIP archive, found by patterns as in a directory.

Patterns are matched against member names (``/``-separated, directories skipped) with
:func:`fnmatch.fnmatchcase`; ``{LABEL}`` marks the component used as label, and the key is the
member name from that component on (``train/cat/1.jpg`` with ``train/{LABEL}/*`` has key
``cat/1.jpg``). A pattern that names an existing file on disk is a list file of member names,
as for :class:`~shardstream.read.directory.DirectoryReader`.

Differences from datadings 3.4.7:

- The key drops the whole path components before ``{LABEL}`` (datadings drops as many
  characters as the pattern has before ``{LABEL}``; the same unless that part has wildcards).
- A member named in a list file but missing from the archive raises
  :class:`~shardstream.errors.DatasetFormatError` when the reader is created, not on ``get``.
- A path that is missing, a directory or not a ZIP file raises a typed error naming it.
- ``copy.copy`` and pickling give a reader that opens its own handle (datadings' copy passed
  its arguments in the wrong order), and a forked process reopens the archive instead of
  sharing the parent's file offset.
- Misplaced ``{LABEL}`` placeholders raise :class:`~shardstream.errors.LabelError`.
"""

from __future__ import annotations

import os
import zipfile as _zipfile
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..errors import DatasetFormatError, DatasetNotFoundError, NotADatasetFileError
from .directory import (
    LABEL,
    FileEntry,
    FileTreeReader,
    Patterns,
    as_patterns,
    label_position,
    read_list_file,
)
from .list import Labels, noop

__all__ = ["ZipFileReader"]


class ZipFileReader(FileTreeReader):
    """Reader over the members of a ZIP file.

    Samples are dicts with ``"key"``, ``"label"``, ``"path"`` (the member name) and
    ``"_additional_info"``; ``get`` adds the member's bytes as ``"data"`` and then applies
    ``convertfun``. Members keep their archive order. The archive is opened when the reader is
    created, reopened lazily after :meth:`close`, and reopened in a forked child process.

    Args:
        path: the ZIP file.
        patterns: one pattern or a sequence: member-name patterns with an optional whole
            ``{LABEL}`` component, or paths of list files naming members.
        labels: labels in the wanted order, or a file with one label per line; default: the
            labels found, natsorted.
        numeric_labels: replace labels by their position in ``labels``.
        initfun: ``initfun(sample)`` modifies each sample in place when the reader is created.
        convertfun: ``convertfun(sample)`` modifies each returned sample after loading.
        include: :func:`fnmatch.fnmatch` patterns; if any, a member must match one of them.
        exclude: :func:`fnmatch.fnmatch` patterns; a member matching any of them is dropped.
        separator: column separator of list files.

    Attributes:
        labels: the list of all labels.
        bytes_read: total size of the members this reader has read (uncompressed).

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        NotADatasetFileError: ``path`` is a directory.
        DatasetFormatError: ``path`` is not a ZIP file, or a list file names a missing member.
        LabelError, DuplicateKeyError: as for
            :class:`~shardstream.read.directory.DirectoryReader`.
    """

    _do_not_copy = ("_zip", "_zip_pid")
    _zip: _zipfile.ZipFile | None = None
    _zip_pid: int | None = None

    def __init__(
        self,
        path: str | os.PathLike,
        patterns: Patterns = "{LABEL}/**",
        labels: Labels | None = None,
        numeric_labels: bool = True,
        initfun: Callable[[dict], Any] = noop,
        convertfun: Callable[[dict], Any] = noop,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        separator: str = "\t",
    ) -> None:
        self._path = os.fspath(path)
        try:
            archive = self._archive()
            entries = list(_find_members(archive, self._path, as_patterns(patterns), separator))
            super().__init__(
                entries,
                labels=labels,
                numeric_labels=numeric_labels,
                initfun=initfun,
                convertfun=convertfun,
                include=include,
                exclude=exclude,
            )
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> str:
        """The ZIP file's path."""
        return self._path

    def read_file(self, sample: dict) -> bytes:
        """Return the uncompressed bytes of the member named by ``sample["path"]``."""
        return self._archive().read(sample["path"])

    def close(self) -> None:
        """Close the archive; it is reopened on the next read."""
        archive, self._zip = self._zip, None
        if archive is not None:
            archive.close()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._do_not_copy}

    def _archive(self) -> _zipfile.ZipFile:
        pid = os.getpid()
        if self._zip is None or self._zip_pid != pid:
            self._zip = _open_zip(self._path)
            self._zip_pid = pid
        return self._zip


def _open_zip(path: str) -> _zipfile.ZipFile:
    if os.path.isdir(path):
        raise NotADatasetFileError(path, "is a directory, not a ZIP file")
    try:
        return _zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DatasetNotFoundError(path, "ZIP file not found") from None
    except _zipfile.BadZipFile:
        raise DatasetFormatError(path, "not a valid ZIP file (no readable ZIP directory)") from None


def _find_members(
    archive: _zipfile.ZipFile, zip_path: str, patterns: list[str], separator: str
) -> Iterator[FileEntry]:
    names = None
    for pattern in patterns:
        if os.path.isfile(pattern):
            names = names if names is not None else set(archive.namelist())
            for entry in read_list_file(pattern, "", separator):
                if entry.path not in names:
                    raise DatasetFormatError(
                        pattern, f"lists {entry.path!r}, which is not a member of {zip_path}"
                    )
                yield entry
        else:
            yield from _match_members(archive.infolist(), pattern)


def _match_members(infos: list[_zipfile.ZipInfo], pattern: str) -> Iterator[FileEntry]:
    position = label_position(pattern, "/")
    name_pattern = pattern.replace(LABEL, "*")
    for info in infos:
        name = info.filename
        if info.is_dir() or not fnmatchcase(name, name_pattern):
            continue
        if position is None:
            yield FileEntry(name, name, None, [])
        else:
            parts = name.split("/")
            yield FileEntry("/".join(parts[position:]), name, parts[position], [])
