"""Converting sources into a data set: missing, damaged, unsafe or oversized inputs, downloads, images."""

from __future__ import annotations

import os

from ._base import ShardstreamError, _UrlFault
from .data import ChecksumMismatchError, DatasetFormatError, SampleTooLargeError

__all__ = [
    "SourceNotFoundError",
    "SourceChecksumError",
    "DownloadError",
    "BadSourceError",
    "UnsafeSourcePathError",
    "NothingToConvertError",
    "ImageDecodeError",
    "SourceTooLargeError",
    "MetadataNotFoundError",
    "CorruptMetadataError",
    "TargetError",
    "InterchangeError",
]


class SourceNotFoundError(ShardstreamError, FileNotFoundError):
    """A data set's source file (an archive such as ``cifar-10-binary.tar.gz``) is not there.

    Raised when the file is missing from the input directory and downloading was not allowed (or
    the file has no download URL). The message names the file, where it was looked for and how to
    get it.

    Attributes:
        path: where the file was expected.
        url: where it can be downloaded from (``None`` when it cannot be downloaded).
    """

    def __init__(self, path: str | os.PathLike, problem: str, url: str | None = None):
        self.path = os.fspath(path)
        self.problem = problem
        self.url = url
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.path, self.problem, self.url)


class SourceChecksumError(ChecksumMismatchError):
    """A source file's md5 is not the one its data set publishes (a wrong, corrupt or partial file).

    Attributes:
        path: the file at fault.
        expected: the md5 (hex) the file should have.
        actual: the md5 (hex) it has.
    """

    def __init__(self, path: str | os.PathLike, expected: str, actual: str, problem: str):
        self.expected = expected
        self.actual = actual
        super().__init__(path, problem)

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.path, self.expected, self.actual, self.problem)


class DownloadError(_UrlFault, OSError):
    """Downloading a source file failed (HTTP error, timeout, refused connection, short body).

    No file is left under the final name. The message names the URL and the fault.

    Attributes:
        url: the URL that failed.
    """


class BadSourceError(ShardstreamError, ValueError):
    """One source of a conversion (an image file, an archive member) cannot be converted.

    Raised by :func:`~shardstream.write.conversion.convert` with ``on_error="raise"`` for a source
    that cannot be read (missing, a directory, a dangling link), is empty, is not an image, or is
    a corrupt image. With ``on_error="skip"`` the same faults are recorded in the skipped report
    instead. The message names the source and the fault.

    Attributes:
        source: where the item came from (a path, or ``archive:member``).
        reason: what is wrong with it.
    """

    def __init__(self, source: str, reason: str, hint: str = ""):
        self.source = source
        self.reason = reason
        self._hint = hint
        super().__init__(f"{source}: {reason}{hint}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.source, self.reason, self._hint)


class UnsafeSourcePathError(BadSourceError):
    """An archive member's name is absolute or contains ``..``, so it could escape its folder.

    shardstream never extracts archives to disk, but such a member is refused (never read) all
    the same, as a sign of a malicious or broken archive.
    """


class NothingToConvertError(ShardstreamError, ValueError):
    """A conversion found no sources (an empty folder, a pattern matching nothing), or skipped all.

    No output is written. The message names the folder, pattern or output at fault.
    """


class ImageDecodeError(DatasetFormatError):
    """An image's bytes cannot be decoded: not an image, a truncated or corrupt JPEG header or scan,
    zero pixels, or more pixels than the caller's limit.

    A ``ValueError`` (via :class:`DatasetFormatError`). The decoders raise it without a sample key;
    a loader that knows the key re-raises with ``key`` set, so the message names the sample.

    Attributes:
        problem: what is wrong with the image.
        key: the sample the image belongs to (``None`` when unknown).
    """

    def __init__(self, problem: str, key: str | None = None):
        self.key = key
        super().__init__(key, problem)

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.problem, self.key)


class SourceTooLargeError(BadSourceError, SampleTooLargeError):
    """A conversion source is past a size limit: its bytes exceed the largest sample allowed, or
    an archive member (or a compressed tar) would expand more than the allowed compression ratio
    (a decompression bomb). The source is refused before it is read in full; the limits can be
    raised (``--max-sample-bytes``, ``--max-ratio``). Also a :class:`SampleTooLargeError` and,
    as a :class:`BadSourceError`, skipped and listed under ``on_error="skip"``.
    """


class MetadataNotFoundError(ShardstreamError, FileNotFoundError):
    """A metadata file of the ``sets`` package (class names, synsets, counts) is not there.

    Raised by :func:`shardstream.sets.tools.open_comp` and :func:`~shardstream.sets.tools.load_json`
    for reading a file that does not exist (a ``FileNotFoundError``, as datadings raises). The
    message names the file.

    Attributes:
        path: the file that was looked for.
    """

    def __init__(self, path: str | os.PathLike, problem: str = "not found"):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.path, self.problem)


class CorruptMetadataError(DatasetFormatError):
    """A metadata file of the ``sets`` package cannot be decoded (a broken gzip, xz or zip
    stream, text that is not UTF-8, or not JSON). A ``ValueError`` naming the file and the fault."""


class TargetError(ImageDecodeError):
    """A dense target of a sample (a label image, saliency map, boxes or points) cannot be used:
    it does not decode, is a colour-coded label image (map it to class indices when writing),
    differs in size from its image, or has the wrong shape.

    An :class:`ImageDecodeError` (so a ``ValueError``); the message names the sample's key when
    known and the field at fault.
    """


class InterchangeError(DatasetFormatError):
    """A file of another format cannot be imported, or a sample cannot be exported exactly.

    Raised by ``shardstream export`` and the ``parquet`` / ``webdataset`` importers: a Parquet file whose schema differs from the first file's, a corrupt Parquet
    file or tar member, a field name that no member name or column can carry. A
    :class:`DatasetFormatError` (a ``ValueError``); the message names the file and the fault.
    """
