"""Running a loader or a training: workers, timeouts, checkpoints, devices, commits, remote storage."""

from __future__ import annotations

import os

from ._base import ShardstreamError, _UrlFault

__all__ = [
    "DatasetReadError",
    "CheckpointError",
    "CollateError",
    "WorkerError",
    "WorkerDiedError",
    "TransportError",
    "SampleError",
    "LoaderTimeoutError",
    "PoolClosedError",
    "DatasetChangedError",
    "UnfinishedCommitError",
    "DeviceUnavailableError",
    "RunFolderExistsError",
    "RemoteStorageError",
    "CacheFullError",
]


class DatasetReadError(ShardstreamError, RuntimeError):
    """A data set's image, labels file or tar block list cannot be read or decoded.

    A ``RuntimeError`` as in dinov2 (``"can not read image for sample <i>"``); the message names
    the sample or file, and the original exception is chained.
    """


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
    """A worker process died (killed by a signal such as SIGKILL, or exited) mid-run.

    Raised by the Loader's workers and by a conversion's whole-shard workers (after their shards
    were run again ``TASK_RETRIES`` times; the previous data set is kept). The pool is closed
    before this is raised. The message names the exit signal or code and the sample(s) or
    shard(s) the worker was processing when it died.

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


class DeviceUnavailableError(ShardstreamError, RuntimeError):
    """A device was asked for that this machine cannot use (``device="cuda"`` where torch sees
    no CUDA GPU, or a GPU index past the last one). Raised when the loader or preset is built,
    not at the first batch; the message names the device, what asked for it and what is here."""


class RunFolderExistsError(ShardstreamError, FileExistsError):
    """A training run's folder already holds files and neither resuming nor starting over was
    asked for (``--resume`` or ``-y``). A ``FileExistsError``; the message names the folder and
    the files in it."""


class RemoteStorageError(_UrlFault, OSError):
    """Reading or writing a URL (``s3://``, ``gs://``, ``https://``, ...) failed for good.

    Raised for a refusal that retrying cannot cure (403, a bad request) at once, and for
    transient faults (timeouts, resets, 5xx) that outlast the retry budget. The message names
    the URL, the fault and how long was tried.

    Attributes:
        url: the URL that failed.
    """


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
