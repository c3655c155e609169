"""Bad data: malformed, truncated, mismatched or missing data set files, keys and samples."""

from __future__ import annotations

import os

from ._base import ShardstreamError, _where

__all__ = [
    "DatasetFormatError",
    "TruncatedDataError",
    "IndexMismatchError",
    "OffsetsOrderError",
    "CorruptIndexError",
    "CorruptSampleError",
    "UnsafeDataError",
    "DatasetNotFoundError",
    "MissingIndexError",
    "NotADatasetFileError",
    "DatasetExistsError",
    "SampleKeyError",
    "DuplicateKeyError",
    "ReservedKeyError",
    "MissingKeyError",
    "InvalidKeyError",
    "SampleEncodeError",
    "SampleTooLargeError",
    "ChecksumMismatchError",
    "WriterClosedError",
    "DatasetLockedError",
    "SampleNotFoundError",
    "SampleChecksumError",
]


class DatasetFormatError(ShardstreamError, ValueError):
    """A dataset file exists but its content is not what the format requires.

    Attributes:
        path: the file at fault (``None`` when not file-specific).
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{_where(path)}{problem}")


class TruncatedDataError(DatasetFormatError):
    """The data file is shorter than its offsets file says (an interrupted copy or download)."""


class IndexMismatchError(DatasetFormatError):
    """An index file disagrees with the data file or with another index file."""


class OffsetsOrderError(DatasetFormatError):
    """The offsets file is not strictly ascending, so sample boundaries are garbage."""


class CorruptIndexError(DatasetFormatError):
    """An index file (keys, key hashes, filter, legacy index, md5) cannot be parsed."""


class CorruptSampleError(DatasetFormatError):
    """The bytes of one sample do not decode as a single msgpack message."""


class UnsafeDataError(DatasetFormatError):
    """A sample holds data that would need unpickling (object arrays); shardstream refuses."""


class DatasetNotFoundError(ShardstreamError, FileNotFoundError):
    """The data file of a dataset does not exist."""

    def __init__(self, path: str | os.PathLike, problem: str = "not found"):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


class MissingIndexError(ShardstreamError, FileNotFoundError):
    """No index file (``.offsets`` or legacy ``.index``) exists next to the data file."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


class NotADatasetFileError(ShardstreamError, IsADirectoryError):
    """A path that must be a dataset file is a directory (or another non-file)."""

    def __init__(
        self, path: str | os.PathLike, problem: str = "is a directory, not a dataset file"
    ):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


class DatasetExistsError(ShardstreamError, FileExistsError):
    """The output dataset exists and overwriting was neither allowed nor confirmed."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


class SampleKeyError(ShardstreamError, ValueError):
    """Base class of faults in a sample's ``"key"`` or in its field names."""


class DuplicateKeyError(SampleKeyError):
    """A key was written twice to one dataset (or given twice to a list reader)."""


class ReservedKeyError(SampleKeyError):
    """A sample uses a field name the format reserves (``nd``, ``complex``)."""


class MissingKeyError(ShardstreamError, KeyError):
    """A sample dict has no ``"key"`` field."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidKeyError(ShardstreamError, TypeError):
    """A sample key is not a ``str``."""


class SampleEncodeError(ShardstreamError, TypeError):
    """A sample holds a value msgpack cannot encode."""


class SampleTooLargeError(ShardstreamError, ValueError):
    """A sample, or one of its values, is past msgpack's 2**32 - 1 size limits."""


class ChecksumMismatchError(DatasetFormatError):
    """A file's md5 differs from the one recorded in the dataset's ``.md5`` file."""


class WriterClosedError(ShardstreamError, ValueError):
    """``write`` was called on a writer that is already closed or aborted."""


class DatasetLockedError(DatasetExistsError):
    """Another writer holds the output's lock (``.X.lock``): two writers never share a path.

    A :class:`DatasetExistsError` (a ``FileExistsError``), so code that handles an existing
    output handles a busy one too. Raised at once, or after the writer's ``wait`` seconds.
    """


class SampleNotFoundError(ShardstreamError, KeyError, IndexError):
    """A reader has no sample with the key asked for (or the key names a rejected sample).

    Both a ``KeyError`` (what shardstream's readers raise for absent keys) and an ``IndexError``
    (what datadings' ``YFCC100mReader`` raises), so either handler catches it. The message names
    the key and the fault.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SampleChecksumError(ChecksumMismatchError):
    """One sample's bytes differ from the digest recorded in the set's checksum file (``X.xxh3``).

    A :class:`ChecksumMismatchError` (a ``ValueError``); raised by
    :meth:`~shardstream.read.MsgpackReader.check_sample` and by a ``Loader(..., verify=True)``.

    Attributes:
        path: the data file.
        index: the sample's index in that file.
        key: the sample's key (``None`` when the keys cannot be read).
    """

    def __init__(self, path: str | os.PathLike, index: int, key: str | None, problem: str):
        self.index = index
        self.key = key
        super().__init__(path, f"sample {index} (key {key!r}) {problem}")
        self.detail = problem

    def __reduce__(self):  # picklable (from worker processes) despite the extra arguments
        return type(self), (self.path, self.index, self.key, self.detail)
