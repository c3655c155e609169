"""datadings' ``reader.directory``: :class:`DirectoryReader` and its file-finding helpers.

The helpers yield ``(key, path, label, additional_info)`` tuples as datadings' do; glob matches
come in natural path order (datadings': the file system's order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ....read import DirectoryReader
from ....read.directory import _find_entries, _glob_entries, is_included, read_list_file
from .list import ListReader, noop

__all__ = [
    "DirectoryReader",
    "ListReader",
    "noop",
    "check_included",
    "glob_pattern",
    "yield_directory",
    "yield_file",
]


def check_included(filename: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``filename`` matches an ``include`` pattern (or there are none) and no
    ``exclude`` pattern (:func:`fnmatch.fnmatch`)."""
    return is_included(filename, include, exclude)


def yield_file(infile: str, prefix: str, separator: str) -> Iterator[tuple]:
    """Entries of a list file (``path[<separator>label[<separator>extra...]]`` per line), keys
    without ``prefix``."""
    return read_list_file(infile, prefix, separator)


def glob_pattern(pattern: str, prefix: str) -> Iterator[tuple]:
    """Entries of the files matching a glob ``pattern`` (``{LABEL}`` marks the label folder).

    Links that leave the folder the pattern starts in are left out, as
    :class:`~shardstream.read.directory.DirectoryReader` does by default; loops are not followed.
    """
    return _glob_entries(pattern, prefix, "", False, [])


def yield_directory(patterns: Sequence[str], separator: str) -> Iterator[tuple]:
    """Entries of every pattern (globs or list files), keys without their common prefix."""
    return _find_entries(list(patterns), separator, "", False, [])
