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
- A damaged archive raises :class:`~shardstream.errors.DatasetFormatError` naming the file (and
  the member) and the fault, at open and at read, whatever the stdlib parser tripped over
  (``BadZipFile``, ``zlib.error``, ``NotImplementedError``, ``IndexError``, ...).
- Members are read with a bounded read: a member larger than ``max_member_bytes`` (by its
  header, or by its data when the header lies) or whose header claims more than ``max_ratio``
  times its compressed size (a decompression bomb) raises
  :class:`~shardstream.errors.SourceTooLargeError` before it is decompressed in full.
"""

from __future__ import annotations

import os
import zipfile as _zipfile
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..errors import (
    DatasetFormatError,
    DatasetNotFoundError,
    NotADatasetFileError,
    SourceTooLargeError,
)
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

__all__ = [
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_RATIO",
    "RATIO_FLOOR",
    "ZipFileReader",
    "check_member_size",
    "open_zip",
    "read_member",
]

#: Largest member (uncompressed bytes) read by default: 256 MiB, 10-100 times the largest images
#: of real data sets (a 100-megapixel PNG is ~50-300 MB, typical photos 0.1-10 MB).
DEFAULT_MAX_MEMBER_BYTES = 256 << 20
#: Largest compression ratio (uncompressed / compressed size) accepted by default. Images are
#: already compressed (JPEG, PNG, WebP deflate to 1.0-1.1 : 1) and even uncompressed photos
#: (BMP, PPM, TIFF) reach only 2-4 : 1; 100 : 1 takes near-constant content, i.e. a blank image
#: or a bomb (deflate reaches ~1030 : 1 on zeros).
DEFAULT_MAX_RATIO = 100.0
#: Members (or compressed tars) expanding to at most this many bytes are never refused for their
#: ratio: small blank images and masks compress well and cost nothing.
RATIO_FLOOR = 1 << 20


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
        max_member_bytes: largest member (uncompressed bytes) :meth:`read_file` reads.
        max_ratio: largest uncompressed / compressed size ratio of a member larger than
            :data:`RATIO_FLOOR`.

    Attributes:
        labels: the list of all labels.
        bytes_read: total size of the members this reader has read (uncompressed).

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        NotADatasetFileError: ``path`` is a directory.
        DatasetFormatError: ``path`` is not a ZIP file or is damaged, or a list file names a
            missing member.
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
        *,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
        max_ratio: float = DEFAULT_MAX_RATIO,
    ) -> None:
        self._path = os.fspath(path)
        self.max_member_bytes = max_member_bytes
        self.max_ratio = max_ratio
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
        """Return the uncompressed bytes of the member named by ``sample["path"]``.

        Raises:
            DatasetFormatError: the member is missing or damaged (bad CRC, bad compressed data,
                an unsupported compression method, encryption).
            SourceTooLargeError: the member is past ``max_member_bytes`` or ``max_ratio``.
        """
        return read_member(
            self._archive(),
            sample["path"],
            path=self._path,
            max_bytes=self.max_member_bytes,
            max_ratio=self.max_ratio,
        )

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
            self._zip = open_zip(self._path)
            self._zip_pid = pid
        return self._zip


def open_zip(path: str | os.PathLike) -> _zipfile.ZipFile:
    """Open a ZIP file for reading; any fault of the file becomes a typed error naming it.

    Args:
        path: the ZIP file.

    Returns:
        The open archive.

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        NotADatasetFileError: ``path`` is a directory.
        DatasetFormatError: ``path`` is not a ZIP file, its directory is damaged, or it cannot
            be read.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise NotADatasetFileError(path, "is a directory, not a ZIP file")
    try:
        archive = _zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DatasetNotFoundError(path, "ZIP file not found") from None
    except _zipfile.BadZipFile as e:
        raise DatasetFormatError(path, f"not a valid ZIP file ({e})") from None
    except OSError as e:
        raise DatasetFormatError(path, f"cannot read the ZIP file: {_describe(e)}") from None
    except Exception as e:  # the stdlib parser raises many kinds on damaged directories
        raise DatasetFormatError(path, f"damaged ZIP directory: {_describe(e)}") from None
    if any(not info.filename for info in archive.infolist()):
        archive.close()  # ZipInfo.is_dir() fails on an empty name (IndexError)
        raise DatasetFormatError(path, "damaged ZIP directory: a member has an empty name")
    return archive


def check_member_size(
    source: str, size: int, compressed: int | None, *, max_bytes: int, max_ratio: float
) -> None:
    """Refuse a source whose (claimed) size is past the limits, before it is read.

    Args:
        source: what to name in the error (``archive:member``).
        size: its uncompressed size in bytes.
        compressed: its compressed size (``None``: not compressed, no ratio to check).
        max_bytes: the largest size allowed.
        max_ratio: the largest ``size / compressed`` allowed once ``size`` is past
            :data:`RATIO_FLOOR`.

    Raises:
        SourceTooLargeError: ``size`` or the ratio is past its limit.
    """
    if size > max_bytes:
        raise SourceTooLargeError(
            source,
            f"{size:,} bytes, more than the largest sample allowed ({max_bytes:,} bytes; "
            "raise it with --max-sample-bytes)",
        )
    if compressed is not None and size > RATIO_FLOOR and size > max_ratio * max(compressed, 1):
        raise SourceTooLargeError(
            source,
            f"expands from {compressed:,} to {size:,} bytes, a compression ratio past "
            f"{max_ratio:g}:1 (a decompression bomb? raise the limit with --max-ratio)",
        )


def read_member(
    archive: _zipfile.ZipFile,
    name: str,
    *,
    path: str,
    max_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> bytes:
    """Read and decompress one member with a bounded read.

    The header's sizes are checked first (:func:`check_member_size`); then at most
    ``max_bytes + 1`` bytes are decompressed, so a header that understates the size cannot
    make the read exceed the limit.

    Args:
        archive: the open archive.
        name: the member's name.
        path: the archive's path, for messages.
        max_bytes: the largest member allowed (uncompressed bytes).
        max_ratio: the largest compression ratio allowed (see :func:`check_member_size`).

    Returns:
        The member's bytes.

    Raises:
        DatasetFormatError: no such member, or it is damaged (bad CRC, bad compressed data,
            unsupported compression, encrypted, a bad local header).
        SourceTooLargeError: the member is past a limit.
    """
    source = f"{path}:{name}"
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise DatasetFormatError(path, f"no member named {name!r}") from None
    check_member_size(
        source, info.file_size, info.compress_size, max_bytes=max_bytes, max_ratio=max_ratio
    )
    try:
        with archive.open(info) as member:
            data = member.read(max_bytes + 1)
    except Exception as e:  # BadZipFile, zlib.error, EOFError, NotImplementedError, ...
        raise DatasetFormatError(path, f"member {name!r}: {_describe(e)}") from None
    if len(data) > max_bytes:
        raise SourceTooLargeError(
            source,
            f"its data is larger than the {max_bytes:,} bytes allowed (its header claims "
            f"{info.file_size:,}); raise the limit with --max-sample-bytes",
        )
    return data


def _describe(error: BaseException) -> str:
    if isinstance(error, _zipfile.BadZipFile) and str(error):
        return str(error)  # "Bad CRC-32 for file ...", "Bad magic number for file header", ...
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
