"""datadings' ``reader.zipfile``: :class:`ZipFileReader` and its member-finding helpers, which
yield ``(key, path, label, additional_info)`` tuples as datadings' do."""

from __future__ import annotations

import zipfile as _zipfile
from collections.abc import Iterator, Sequence

from ....read import ZipFileReader
from ....read.zipfile import _find_members, _match_members
from .directory import check_included, yield_file
from .list import ListReader, noop

__all__ = [
    "ListReader",
    "ZipFileReader",
    "check_included",
    "glob_pattern",
    "noop",
    "yield_file",
    "yield_zipfile",
]


def glob_pattern(infos: Sequence[_zipfile.ZipInfo], pattern: str) -> Iterator[tuple]:
    """Entries of the members in ``infos`` matching ``pattern`` (``{LABEL}`` marks the label)."""
    return _match_members(list(infos), pattern)


def yield_zipfile(
    zipfile_: _zipfile.ZipFile, patterns: Sequence[str], separator: str
) -> Iterator[tuple]:
    """Entries of every pattern (member globs or list files) in the open archive ``zipfile_``.

    Raises:
        DatasetFormatError: a list file names a file that is not a member.
    """
    return _find_members(zipfile_, str(zipfile_.filename), list(patterns), separator)
