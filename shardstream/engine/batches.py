"""Running the work over one batch: samples on threads, skips dropped, failures captured.

Shared by both execution modes: a worker process runs :class:`BatchRunner` on each task it
receives, and the in-process mode (``num_workers=0``) uses :func:`load_sample` and
:func:`collate_samples` from its thread pool.
"""

from __future__ import annotations

import itertools
import pickle
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import SampleError, TransportError, WorkerError
from .tasks import SKIPPED, BatchTask, BatchWork, StageTimer

__all__ = [
    "BatchRunner",
    "Failure",
    "Loaded",
    "collate_samples",
    "describe_batch",
    "describe_sample",
    "load_sample",
]

#: how many samples a batch description names before "and N more"
_NAMED_SAMPLES = 3


@dataclass
class Failure:
    """An exception caught where it happened, in a form that crosses process boundaries.

    Attributes:
        kind: ``"sample"``, ``"collate"``, ``"open"`` or ``"transport"``.
        description: what failed (a sample's or batch's description, or the worker).
        exc_type: the exception's qualified type name.
        problem: the exception's text.
        traceback: the formatted traceback.
        index: the dataset index for ``"sample"`` failures.
        exception: the pickled exception (``None`` when it cannot be pickled), or the
            exception itself when it never leaves the process.
    """

    kind: str
    description: str
    exc_type: str
    problem: str
    traceback: str
    index: int | None = None
    exception: Any = None

    @classmethod
    def capture(
        cls, error: BaseException, kind: str, description: str, index: int | None = None
    ) -> Failure:
        """Record ``error`` (being handled) as a failure."""
        kind_name = type(error).__qualname__
        module = type(error).__module__
        if module not in ("builtins", "__main__"):
            kind_name = f"{module}.{kind_name}"
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(kind, description, kind_name, str(error), text, index, error)

    def portable(self) -> Failure:
        """Return a copy whose ``exception`` is pickled bytes (or ``None``)."""
        try:
            exception = pickle.dumps(self.exception)
        except Exception:
            exception = None
        return Failure(
            self.kind, self.description, self.exc_type, self.problem, self.traceback,
            self.index, exception,
        )  # fmt: skip

    def error(self) -> Exception:
        """Return the shardstream error to raise in the consumer, the original as ``__cause__``."""
        if self.kind in ("sample", "collate"):
            error: Exception = SampleError(
                self.description, self.exc_type, self.problem, self.traceback, self.index
            )
        elif self.kind == "transport":
            error = TransportError(f"{self.description}: {self.problem}")
        else:
            error = WorkerError(
                f"{self.description}: {self.exc_type}: {self.problem}\n\n"
                f"Traceback in the worker:\n{self.traceback.rstrip()}"
            )
        original = self.exception
        if isinstance(original, bytes):
            try:
                original = pickle.loads(original)
            except Exception:
                original = None
        if isinstance(original, BaseException):
            error.__cause__ = original
        return error


@dataclass
class Loaded:
    """A collated batch and its bookkeeping.

    Attributes:
        tree: the collated pytree (``None`` when every sample was skipped).
        samples: how many samples it holds.
        skipped: how many samples the work skipped.
        stages: seconds per stage reported by the work.
    """

    tree: Any
    samples: int
    skipped: int
    stages: dict[str, float]


class _Raised:
    __slots__ = ("failure",)

    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def describe_sample(work: BatchWork, index: int) -> str:
    """Return ``work.describe(index)``, or ``"sample <index>"`` when describing fails."""
    try:
        return str(work.describe(int(index)))
    except Exception:
        return f"sample {int(index)}"


def describe_batch(work: BatchWork, task: BatchTask) -> str:
    """Name a batch and its first few samples for error messages."""
    named = ", ".join(describe_sample(work, i) for i in task.indices[:_NAMED_SAMPLES])
    more = len(task.indices) - _NAMED_SAMPLES
    tail = f" and {more} more" if more > 0 else ""
    return f"batch {task.sequence} of epoch {task.epoch} ({named}{tail})"


def load_sample(work: BatchWork, task: BatchTask, item: int, timer: StageTimer) -> Any:
    """Run ``work.sample``; return its result, or a captured failure naming the sample."""
    try:
        return work.sample(task, item, timer)
    except Exception as error:
        index = int(task.indices[item])
        return _Raised(Failure.capture(error, "sample", describe_sample(work, index), index))


def collate_samples(
    work: BatchWork, task: BatchTask, results: Sequence[Any], timer: StageTimer
) -> Loaded | Failure:
    """Drop skipped samples and collate the rest (first sample failure wins, in item order).

    Args:
        work: the work.
        task: the batch.
        results: what :func:`load_sample` returned for each item, in item order.
        timer: the batch's timer.

    Returns:
        The batch, or the failure to report.
    """
    for result in results:
        if isinstance(result, _Raised):
            return result.failure
    samples = [result for result in results if result is not SKIPPED]
    skipped = len(results) - len(samples)
    if not samples:
        return Loaded(None, 0, skipped, timer.totals())
    try:
        tree = work.collate(task, samples, timer)
    except Exception as error:
        return Failure.capture(error, "collate", describe_batch(work, task))
    return Loaded(tree, len(samples), skipped, timer.totals())


class BatchRunner:
    """Loads whole batches in a worker process, the samples of each batch on ``num_threads``.

    Each thread writes the dataset index it is loading into its cell of ``cells`` (``-1`` when
    idle), so that the consumer can name the sample if the process dies.

    Args:
        work: the (opened) work.
        num_threads: threads per batch.
        cells: the shared int64 cells of this worker's threads (``num_threads`` of them).
        cancelled: returns True when the running batch is no longer wanted.
    """

    def __init__(
        self,
        *,
        work: BatchWork,
        num_threads: int,
        cells: Any,
        cancelled: Callable[[], bool],
    ) -> None:
        self.work = work
        self._cells = cells
        self._cancelled = cancelled
        self._local = threading.local()
        self._ids = itertools.count()
        self._executor = (
            ThreadPoolExecutor(num_threads, "shardstream-sample", self._name_thread)
            if num_threads > 1
            else None
        )

    def _name_thread(self) -> None:
        self._local.cell = next(self._ids)

    def _load(self, task: BatchTask, item: int, timer: StageTimer) -> Any:
        if self._cancelled():
            return None
        cell = getattr(self._local, "cell", 0)
        self._cells[cell] = int(task.indices[item])
        try:
            return load_sample(self.work, task, item, timer)
        finally:
            self._cells[cell] = -1

    def run(self, task: BatchTask) -> Loaded | Failure | None:
        """Load and collate one batch.

        Args:
            task: the batch.

        Returns:
            The batch, the failure to report, or ``None`` when it was cancelled midway.
        """
        timer = StageTimer()
        items = range(len(task.indices))
        if self._executor is None:
            results = [self._load(task, item, timer) for item in items]
        else:
            futures = [self._executor.submit(self._load, task, item, timer) for item in items]
            results = [future.result() for future in futures]
        if self._cancelled():
            return None
        return collate_samples(self.work, task, results, timer)

    def close(self) -> None:
        """Stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
