"""DirectoryReader: samples are files found by glob patterns or listed in CSV/TSV files.

A pattern such as ``"train/{LABEL}/**"`` finds every file below ``train/``; the path component
at the position of ``{LABEL}`` becomes the sample's label (``train/cat/1.jpg`` has label
``cat``) and the key is the path with the text before ``{LABEL}`` removed (``cat/1.jpg``). A
pattern that names an existing file is read as a list instead: one sample per line, columns
separated by ``separator``: the path, an optional label, and any further columns, which are
kept as ``"_additional_info"``.

Differences from datadings 3.4.7:

- Glob results are sorted in natural order (see :func:`natural_path_order`), so the sample
  order does not depend on the file system; datadings keeps the file system's order.
- The key prefix is removed only from the start of a path (datadings removes every occurrence).
- Glob patterns are matched relative to ``root_dir`` (datadings globs relative to the working
  directory and joins ``root_dir`` afterwards, so a non-empty ``root_dir`` only worked with
  patterns that were also valid from the working directory).
- ``{LABEL}`` inside a path component, twice, or after a ``**`` component raises
  :class:`~shardstream.errors.LabelError` (datadings silently produced no or wrong labels).
- Blank lines in list files are skipped; list files are read as UTF-8.
- A sample file that vanished after the reader was created raises
  :class:`~shardstream.errors.DatasetNotFoundError` naming the file and the sample key.
- ``bytes_read`` of a ``copy.copy`` counts that copy's reads (datadings counted them on the
  original reader).
- Symbolic links are followed safely (see :func:`find_paths`): a link back to a folder on its
  own path (a loop such as ``a/self -> .``) is not followed, so each file is listed once instead
  of once per trip around the loop (datadings' ``glob`` hung or listed it dozens of times), and
  links that lead out of the root are left out unless ``follow_external_links=True``; they are
  listed in the reader's ``external_links`` and never read.
"""

from __future__ import annotations

import os
import re
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from fnmatch import fnmatch
from typing import Any, NamedTuple

from ..errors import DatasetNotFoundError, LabelError
from .list import Labels, ListReader, noop
from .walk import find_paths

__all__ = [
    "LABEL",
    "DirectoryReader",
    "FileEntry",
    "FileTreeReader",
    "is_included",
    "label_position",
    "natural_path_order",
    "read_list_file",
]

#: The placeholder that marks the label component of a pattern.
LABEL = "{LABEL}"

Patterns = str | os.PathLike | Sequence[str | os.PathLike]


class FileEntry(NamedTuple):
    """One file found by a pattern, before it becomes a sample.

    Attributes:
        key: the sample key.
        path: the file's path as found (before ``root_dir`` is joined).
        label: the label, ``None`` when the pattern has none.
        info: the extra columns of a list file (``"_additional_info"``).
    """

    key: str
    path: str
    label: str | None
    info: list[str]


class FileTreeReader(ListReader):
    """ListReader whose samples are files; ``get`` reads a sample's file into ``"data"``.

    Subclasses find the :class:`FileEntry` list and implement :meth:`read_file`.

    Args:
        entries: the files, in sample order.
        labels, numeric_labels, initfun: as for :class:`~shardstream.read.list.ListReader`.
        convertfun: ``convertfun(sample)`` runs after the file bytes are in ``"data"``.
        include: :func:`fnmatch.fnmatch` patterns; if any, a path must match one of them.
        exclude: :func:`fnmatch.fnmatch` patterns; a path matching any of them is dropped.
        root_dir: joined in front of every path to form the sample's ``"path"``.

    Attributes:
        bytes_read: total size of the files this reader has read.

    Raises:
        DuplicateKeyError, LabelError: as for :class:`~shardstream.read.list.ListReader`.
    """

    def __init__(
        self,
        entries: Iterable[FileEntry],
        *,
        labels: Labels | None,
        numeric_labels: bool,
        initfun: Callable[[dict], Any],
        convertfun: Callable[[dict], Any],
        include: Sequence[str],
        exclude: Sequence[str],
        root_dir: str | os.PathLike = "",
    ) -> None:
        root_dir = os.fspath(root_dir)
        samples = [
            {
                "key": entry.key,
                "label": entry.label,
                "path": os.path.join(root_dir, entry.path),
                "_additional_info": entry.info,
            }
            for entry in entries
            if is_included(entry.path, include, exclude)
        ]
        super().__init__(samples, labels, numeric_labels, initfun, convertfun)
        self.bytes_read = 0

    @abstractmethod
    def read_file(self, sample: dict) -> bytes:
        """Return the bytes of the file named by ``sample["path"]``."""

    def _convert(self, sample: dict) -> None:
        data = self.read_file(sample)
        self.bytes_read += len(data)
        sample["data"] = data
        self._convertfun(sample)


class DirectoryReader(FileTreeReader):
    """Reader over files in directory trees, found by glob patterns or listed in files.

    Each pattern is either a glob pattern (recursive ``**`` allowed; only files match) in which
    the whole path component ``{LABEL}`` marks the label, or the path of an existing list file
    with ``separator``-separated columns ``path[, label[, extra...]]``. Samples are dicts with
    ``"key"``, ``"label"``, ``"path"`` and ``"_additional_info"``; ``get`` adds the file bytes
    as ``"data"`` and then applies ``convertfun``. Labels are numbered as by
    :class:`~shardstream.read.list.ListReader` (natsorted unless ``labels`` is given).

    Keys are paths without a prefix: with one pattern, the text before ``{LABEL}`` (nothing if
    it has none); with several, their common leading characters, cut at ``{LABEL}`` (if that is
    empty, each glob pattern drops its own text before ``{LABEL}``).

    Args:
        patterns: one pattern or a sequence of them; each pattern's files are sorted with
            :func:`natural_path_order`.
        labels: labels in the wanted order, or a file with one label per line; default: the
            labels found, natsorted. Patterns without ``{LABEL}`` give ``None`` labels, which
            need ``labels`` (e.g. ``[None]``).
        numeric_labels: replace labels by their position in ``labels``.
        initfun: ``initfun(sample)`` modifies each sample in place when the reader is created.
        convertfun: ``convertfun(sample)`` modifies each returned sample after loading.
        include: :func:`fnmatch.fnmatch` patterns; if any, a path must match one of them.
        exclude: :func:`fnmatch.fnmatch` patterns; a path matching any of them is dropped.
        separator: column separator of list files.
        root_dir: directory that glob patterns and list-file paths are relative to.
        follow_external_links: follow symbolic links whose target lies outside the root
            (``root_dir``, or else each glob pattern's leading folder); by default they are
            left out (and never read) and listed in ``external_links``.

    Attributes:
        labels: the list of all labels.
        bytes_read: total size of the files this reader has read.
        external_links: the paths (as found) of the links left out because they lead out of
            the root; ``len(external_links)`` counts them.

    Raises:
        LabelError: a misplaced ``{LABEL}``, or ``None`` labels without ``labels``.
        DuplicateKeyError: two files give the same key (e.g. found by two patterns).
        BadSourceError: a folder the patterns lead into cannot be listed (glob skipped it).
    """

    def __init__(
        self,
        patterns: Patterns,
        labels: Labels | None = None,
        numeric_labels: bool = True,
        initfun: Callable[[dict], Any] = noop,
        convertfun: Callable[[dict], Any] = noop,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        separator: str = "\t",
        root_dir: str | os.PathLike = "",
        *,
        follow_external_links: bool = False,
    ) -> None:
        patterns = as_patterns(patterns)
        external: list[str] = []
        super().__init__(
            _find_entries(
                patterns, separator, os.fspath(root_dir), follow_external_links, external
            ),
            labels=labels,
            numeric_labels=numeric_labels,
            initfun=initfun,
            convertfun=convertfun,
            include=include,
            exclude=exclude,
            root_dir=root_dir,
        )
        self.external_links = tuple(external)

    def read_file(self, sample: dict) -> bytes:
        """Return the bytes of the file named by ``sample["path"]``.

        Raises:
            DatasetNotFoundError: the file no longer exists.
        """
        path = sample["path"]
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise DatasetNotFoundError(
                path, f"file of sample {sample['key']!r} not found (moved or deleted?)"
            ) from None


def as_patterns(patterns: Patterns) -> list[str]:
    """Turn one pattern or a sequence of patterns into a list of ``str``."""
    if isinstance(patterns, (str, os.PathLike)):
        return [os.fspath(patterns)]
    return [os.fspath(p) for p in patterns]


def is_included(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``path`` passes the filters: it matches an include pattern (or there are none)
    and no exclude pattern (:func:`fnmatch.fnmatch`)."""
    return (not include or any(fnmatch(path, p) for p in include)) and not any(
        fnmatch(path, p) for p in exclude
    )


def label_position(pattern: str, sep: str) -> int | None:
    """Index of the ``{LABEL}`` component in ``pattern`` split at ``sep``, ``None`` if absent.

    Raises:
        LabelError: ``{LABEL}`` occurs twice, is only part of a component, or follows a ``**``
            component (the label's position in matched paths would vary).
    """
    if LABEL not in pattern:
        return None
    parts = pattern.split(sep)
    if pattern.count(LABEL) > 1 or LABEL not in parts:
        raise LabelError(
            f"pattern {pattern!r}: {LABEL} must occur once, as a whole path component "
            f"(e.g. 'root{sep}{LABEL}{sep}**')"
        )
    position = parts.index(LABEL)
    if "**" in parts[:position]:
        raise LabelError(
            f"pattern {pattern!r}: {LABEL} must not follow a '**' component, because the "
            "label's position in the matched paths would vary"
        )
    return position


def natural_path_order(paths: Iterable[str], sep: str = os.sep) -> list[str]:
    """Sort paths naturally: by directory, components compared in turn, then by file name.

    Digit runs compare as numbers (``b2 < b10``, ``2.jpg < 10.jpg``), the files of a directory
    come before the contents of its subdirectories, and paths that compare equal this way
    (``01`` and ``1``) are ordered by their text, so the order is total and deterministic.
    Each directory's sort key is computed once, which keeps million-file trees fast.

    Args:
        paths: the paths.
        sep: the path separator.

    Returns:
        The sorted paths.
    """
    directory_keys: dict[str, tuple] = {}

    def key(path: str) -> tuple:
        directory, _, name = path.rpartition(sep)
        directory_key = directory_keys.get(directory)
        if directory_key is None:
            directory_key = tuple(map(_natural_key, directory.split(sep))) if directory else ()
            directory_keys[directory] = directory_key
        return directory_key, _natural_key(name), path

    return sorted(paths, key=key)


_split_digits = re.compile(r"(\d+)").split


def _natural_key(text: str) -> tuple:
    parts: list[Any] = _split_digits(text)
    parts[1::2] = map(int, parts[1::2])  # odd positions hold the digit runs
    return tuple(parts)


def read_list_file(list_file: str, prefix: str, separator: str) -> Iterator[FileEntry]:
    """Read a list file: one sample per line, columns ``path[, label[, extra...]]``.

    Args:
        list_file: the file (UTF-8); blank lines are skipped.
        prefix: removed from the start of each path to form the key.
        separator: column separator.

    Yields:
        One :class:`FileEntry` per line; ``label`` is ``None`` without a second column.
    """
    with open(list_file, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line:
                continue
            path, *rest = line.split(separator)
            label = rest[0] if rest else None
            yield FileEntry(path.removeprefix(prefix), path, label, rest[1:])


def _find_entries(
    patterns: list[str], separator: str, root_dir: str, follow: bool, external: list[str]
) -> Iterator[FileEntry]:
    prefix = os.path.commonprefix(patterns) if len(patterns) > 1 else ""
    prefix = prefix.split(LABEL, 1)[0]
    for pattern in patterns:
        if os.path.isfile(pattern):
            yield from read_list_file(pattern, prefix, separator)
        else:
            yield from _glob_entries(pattern, prefix, root_dir, follow, external)


def _glob_entries(
    pattern: str, prefix: str, root_dir: str, follow: bool, external: list[str]
) -> Iterator[FileEntry]:
    position = label_position(pattern, os.sep)
    if position is not None:
        prefix = prefix or pattern.split(LABEL, 1)[0]
        pattern = pattern.replace(LABEL, "*")
    found = find_paths(pattern, root_dir=root_dir, follow_external_links=follow)
    external.extend(natural_path_order(p.path for p in found if p.kind == "external"))
    for path in natural_path_order(p.path for p in found if p.kind == "file"):
        label = None if position is None else path.split(os.sep)[position]
        yield FileEntry(path.removeprefix(prefix), path, label, [])
