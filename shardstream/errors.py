"""Every exception shardstream raises on bad input, in one place.

Each class also derives from the builtin exception that datadings (or Python) raises in the same
situation, so ``except ValueError`` / ``except FileNotFoundError`` code written for datadings keeps
working. Messages name the file, sample or argument at fault and what went wrong.
"""

from __future__ import annotations

import os

__all__ = [
    "ShardstreamError",
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
    "LabelError",
    "ConfigError",
    "MissingDependencyError",
    "StateMismatchError",
    "UnsupportedOptionError",
    "MissingFieldError",
    "UnevenShardsError",
    "DatasetStringError",
    "DatasetStringKeyError",
    "DatasetSplitError",
    "DatasetArgumentError",
    "DatasetReadError",
    "AlreadyRegisteredError",
    "NotRegisteredError",
    "ConfigTypeError",
    "NotReadyError",
    "SourceNotFoundError",
    "SourceChecksumError",
    "DownloadError",
    "BadSourceError",
    "UnsafeSourcePathError",
    "NothingToConvertError",
    "ImageDecodeError",
    "QueryError",
    "WeightsError",
    "WorkerError",
    "WorkerDiedError",
    "TransportError",
    "SampleError",
    "LoaderTimeoutError",
    "PoolClosedError",
    "NoProcessGroupError",
    "SourceTooLargeError",
    "MetadataNotFoundError",
    "CorruptMetadataError",
    "DatasetLockedError",
    "DatasetChangedError",
    "UnfinishedCommitError",
    "ChainError",
    "CheckpointError",
    "CollateError",
    "SampleNotFoundError",
    "DeviceUnavailableError",
    "RunFolderExistsError",
    "TargetError",
    "SampleChecksumError",
    "InterchangeError",
    "RemoteStorageError",
    "CacheFullError",
]


class ShardstreamError(Exception):
    """Base class of every error shardstream raises on purpose."""


def _where(path: str | os.PathLike | None) -> str:
    return f"{os.fspath(path)}: " if path is not None else ""


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


class LabelError(ShardstreamError, ValueError):
    """Sample labels cannot be turned into label numbers.

    Raised for a ``None`` label when no ``labels`` list is given, a label missing from the given
    ``labels``, or a ``{LABEL}`` placeholder in a pattern that a reader cannot resolve.
    """


class ConfigError(ShardstreamError, ValueError):
    """An argument is of the wrong kind or outside its allowed range (the message names it)."""


class MissingDependencyError(ShardstreamError, ImportError):
    """An optional dependency (or a file it ships) that the requested feature needs is missing."""


class StateMismatchError(ShardstreamError, ValueError):
    """A saved ``state_dict`` does not fit the stage it is being loaded into.

    Raised by ``load_state_dict`` when the state comes from another kind of stage, lacks fields or
    has unknown ones, was taken with different order-defining arguments (dataset length, seed,
    buffer or chunk size, range bounds, repeat count), or holds a position outside the stage.
    The stage is left unchanged.
    """


class UnsupportedOptionError(ShardstreamError, NotImplementedError):
    """An option combination that the emulated API does not implement either.

    Raised where the original raises ``NotImplementedError``, e.g. dinov2's ``EPOCH`` sampler
    with ``sampler_advance > 0``.
    """


class DatasetStringError(ShardstreamError, ValueError):
    """A dataset string (dinov2's ``Name:key=value:...``) is malformed or names no known data set.

    Raised where dinov2 raises ``ValueError``: a ``key=value`` token without exactly one ``=``,
    or an unsupported data set name. The message quotes the string and the token at fault.
    """


class DatasetStringKeyError(ShardstreamError, AssertionError):
    """A dataset string uses a key that no data set accepts (dinov2 asserts on it).

    An ``AssertionError`` like dinov2's, so code written against dinov2 still catches it; the
    message names the key and the accepted keys.
    """


class DatasetSplitError(ShardstreamError, KeyError):
    """A split name is not a member of the data set's ``Split`` enum (dinov2 raises KeyError)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DatasetArgumentError(ShardstreamError, TypeError):
    """A dataset string passes a key its data set does not take, or lacks one it needs.

    A ``TypeError``, as the data set's constructor raises in dinov2 (e.g. ``split`` for
    ``ImageNet22k``); the message names the data set and the key.
    """


class DatasetReadError(ShardstreamError, RuntimeError):
    """A data set's image, labels file or tar block list cannot be read or decoded.

    A ``RuntimeError`` as in dinov2 (``"can not read image for sample <i>"``); the message names
    the sample or file, and the original exception is chained.
    """


class AlreadyRegisteredError(ShardstreamError, ValueError):
    """A name is registered twice in one registry (helios' ``Registry``).

    helios checks this with ``assert`` (an ``AssertionError`` that vanishes under ``python -O``);
    shardstream raises this ``ValueError`` instead. The message names the object and the registry.
    """


class NotRegisteredError(ShardstreamError, KeyError):
    """A registry has no object of the requested name (helios raises ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(ConfigError, TypeError):
    """An argument is an object of the wrong type, e.g. a sampler that is not resumable.

    Both a :class:`ConfigError` and a ``TypeError`` (what helios raises for a wrong sampler);
    the message names the argument and the type received.
    """


class NotReadyError(ShardstreamError, RuntimeError):
    """Something was used before it was created or configured.

    E.g. helios' default NumPy generator read before ``seed_rngs`` / ``create_default_numpy_rng``,
    or a ``DataModule``'s trainer read before one was assigned. A ``RuntimeError``, as in helios.
    """


class MissingFieldError(ShardstreamError, KeyError):
    """A value a transform needs is missing: a parameter from the ``rng`` dict, or a sample field.

    Raised by ``Compose`` when a transform's required parameter is not in the parameters, and by
    the torch datasets when a transform dict names a field the sample lacks. A ``KeyError``, as
    datadings raises; the message names the transform or field and what is available.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnevenShardsError(ShardstreamError, RuntimeError):
    """The shards of an ``IterableDataset`` would leave a loader worker an empty last batch.

    A ``RuntimeError``, as datadings raises when ``0 < len(shard) % batch_size < 1``; the message
    names the sizes and what to change (workers, batch size or world size).
    """


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


class DownloadError(ShardstreamError, OSError):
    """Downloading a source file failed (HTTP error, timeout, refused connection, short body).

    No file is left under the final name. The message names the URL and the fault.

    Attributes:
        url: the URL that failed.
    """

    def __init__(self, url: str, problem: str):
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.url, self.problem)


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


class QueryError(ShardstreamError, ValueError):
    """An SQL query or weight expression over a dataset's metadata table fails.

    A ``ValueError``. Raised when DuckDB rejects the SQL, or the result of a query has no usable
    ``index`` column. The message holds the SQL and what went wrong (DuckDB's own message).

    Attributes:
        sql: the query or expression as given.
        problem: what went wrong.
    """

    def __init__(self, sql: object, problem: str):
        self.sql = sql
        self.problem = problem
        super().__init__(f"query {sql!r}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.sql, self.problem)


class WeightsError(ShardstreamError, ValueError):
    """Sampling weights are unusable: negative, NaN or infinite, the wrong count, all zero, or
    too few positive ones for a draw without replacement (a ``ValueError``)."""


class CheckpointError(ShardstreamError, ValueError):
    """A training checkpoint cannot be used: unreadable, truncated, not a shardstream checkpoint,
    or made for another model or configuration (a ``ValueError``). The message names the file
    and the problem."""


class CollateError(ShardstreamError, ValueError):
    """Samples of one batch cannot be collated: arrays of one field differ in shape (or the
    samples differ in fields or structure). A ``ValueError``; the message names the field and the
    shapes or keys that differ, and what to change (a transform to a fixed size or a
    ``collate_fn``)."""


class WorkerError(ShardstreamError, RuntimeError):
    """A loader worker failed outside any one sample, e.g. ``work.open()`` raised in the worker.

    A ``RuntimeError``. The message names the worker and what failed (with the worker's
    traceback when there is one).
    """


class WorkerDiedError(WorkerError):
    """A loader worker process died (killed by a signal such as SIGKILL, or exited) mid-run.

    The pool is closed before this is raised. The message names the exit signal or code and the
    sample(s) the worker was processing when it died.

    Attributes:
        exitcode: the process exit code (negative: the signal number), ``None`` when unknown.
        indices: the dataset indices the worker was processing.
    """

    def __init__(self, message: str, exitcode: int | None = None, indices: tuple[int, ...] = ()):
        self.exitcode = exitcode
        self.indices = tuple(indices)
        super().__init__(message)

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.args[0], self.exitcode, self.indices)


class TransportError(WorkerError):
    """A batch could not be moved through shared memory (e.g. ``/dev/shm`` is full)."""


class SampleError(ShardstreamError, RuntimeError):
    """Loading, transforming or collating a sample raised in a loader worker (or thread).

    The message names the sample (the work's description of it), the original exception type
    and text, and holds the traceback from the worker. The original exception is chained as
    ``__cause__`` when it can be re-created in the consumer.

    Attributes:
        description: which sample (or batch) failed.
        exc_type: the original exception's qualified type name.
        problem: the original exception's text.
        remote_traceback: the traceback formatted where the exception happened.
        index: the dataset index of the sample (``None`` when collating a batch failed).
    """

    def __init__(
        self,
        description: str,
        exc_type: str,
        problem: str,
        remote_traceback: str = "",
        index: int | None = None,
    ):
        self.description = description
        self.exc_type = exc_type
        self.problem = problem
        self.remote_traceback = remote_traceback
        self.index = index
        message = f"{description}: {exc_type}: {problem}"
        if remote_traceback:
            message += f"\n\nTraceback in the worker:\n{remote_traceback.rstrip()}"
        super().__init__(message)

    def __reduce__(self):  # picklable across processes despite the extra arguments
        args = (self.description, self.exc_type, self.problem, self.remote_traceback, self.index)
        return type(self), args


class LoaderTimeoutError(ShardstreamError, RuntimeError):
    """No batch arrived within the loader's ``timeout``; the message names the samples in work.

    A ``RuntimeError``, as torch's ``DataLoader`` raises on its timeout. The message names the
    batch waited for (its first samples, with keys) and what each worker was loading. With
    worker processes the workers are stopped (killed if they do not stop) and the pool is closed.

    Attributes:
        timeout: the timeout in seconds (``None`` when unknown).
        indices: the dataset indices of the batch waited for.
    """

    def __init__(
        self, message: str, timeout: float | None = None, indices: tuple[int, ...] = ()
    ) -> None:
        self.timeout = timeout
        self.indices = tuple(indices)
        super().__init__(message)

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.args[0], self.timeout, self.indices)


class PoolClosedError(ShardstreamError, RuntimeError):
    """A closed worker pool (or loader) was asked for more batches."""


class ChainError(ShardstreamError, ValueError):
    """A :class:`~shardstream.loader.loader.Loader` step is called twice, or after a step it
    excludes (a second ``.batch()``, ``.pytorch()`` after ``.numpy()``, ``tensors`` after a dict
    transform). A ``ValueError`` with Deep Lake's message for the same mistake."""


class NoProcessGroupError(ShardstreamError, ValueError, RuntimeError):
    """A distributed sampler was asked for its rank or world size from ``torch.distributed``
    and no process group is initialised.

    torch's ``DistributedSampler`` (and so dinov2's ``DISTRIBUTED`` sampler and helios'
    ``ResumableDistributedSampler``) raises there too: a ``ValueError`` (torch >= 2.x, whose
    message this keeps) or, in older torch, a ``RuntimeError``; this is both.
    """


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


class DatasetLockedError(DatasetExistsError):
    """Another writer holds the output's lock (``.X.lock``): two writers never share a path.

    A :class:`DatasetExistsError` (a ``FileExistsError``), so code that handles an existing
    output handles a busy one too. Raised at once, or after the writer's ``wait`` seconds.
    """


class DatasetChangedError(ShardstreamError, RuntimeError):
    """A file of an open dataset was replaced since the reader opened it (or while it opened).

    Raised instead of mixing two versions; reopen the reader to read the new version.

    Attributes:
        path: the file that changed.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable (from worker processes) despite the two arguments
        return type(self), (self.path, self.problem)


class UnfinishedCommitError(ShardstreamError, OSError):
    """A dataset's write was interrupted after its commit point and cannot be finished now.

    The commit record (``.X.commit``) lists the new version's files; the first writer or reader
    with write permission on the folder finishes it. Raised when this process may not (no write
    permission) or a live writer's commit did not finish in time.

    Attributes:
        path: the commit record.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable (from worker processes) despite the two arguments
        return type(self), (self.path, self.problem)


class SampleNotFoundError(ShardstreamError, KeyError, IndexError):
    """A reader has no sample with the key asked for (or the key names a rejected sample).

    Both a ``KeyError`` (what shardstream's readers raise for absent keys) and an ``IndexError``
    (what datadings' ``YFCC100mReader`` raises), so either handler catches it. The message names
    the key and the fault.
    """

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DeviceUnavailableError(ShardstreamError, RuntimeError):
    """A device was asked for that this machine cannot use (``device="cuda"`` where torch sees
    no CUDA GPU, or a GPU index past the last one). Raised when the loader or preset is built,
    not at the first batch; the message names the device, what asked for it and what is here."""


class RunFolderExistsError(ShardstreamError, FileExistsError):
    """A training run's folder already holds files and neither resuming nor starting over was
    asked for (``--resume`` or ``-y``). A ``FileExistsError``; the message names the folder and
    the files in it."""


class TargetError(ImageDecodeError):
    """A dense target of a sample (a label image, saliency map, boxes or points) cannot be used:
    it does not decode, is a colour-coded label image (map it to class indices when writing),
    differs in size from its image, or has the wrong shape.

    An :class:`ImageDecodeError` (so a ``ValueError``); the message names the sample's key when
    known and the field at fault.
    """


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


class InterchangeError(DatasetFormatError):
    """A file of another format cannot be imported, or a sample cannot be exported exactly.

    Raised by ``shardstream export`` and the ``parquet`` / ``webdataset --all-members``
    importers: a Parquet file whose schema differs from the first file's, a corrupt Parquet
    file or tar member, a field name that no member name or column can carry. A
    :class:`DatasetFormatError` (a ``ValueError``); the message names the file and the fault.
    """


class RemoteStorageError(ShardstreamError, OSError):
    """Reading or writing a URL (``s3://``, ``gs://``, ``https://``, ...) failed for good.

    Raised for a refusal that retrying cannot cure (403, a bad request) at once, and for
    transient faults (timeouts, resets, 5xx) that outlast the retry budget. The message names
    the URL, the fault and how long was tried.

    Attributes:
        url: the URL that failed.
    """

    def __init__(self, url: str, problem: str):
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.url, self.problem)


class CacheFullError(ShardstreamError, OSError):
    """The node-local shard cache's disk is full (or a file size limit was hit) while a shard
    was being stored. The staged download is removed, so no partial entry is left.

    Attributes:
        path: the cache folder.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # picklable across processes despite the extra arguments
        return type(self), (self.path, self.problem)
