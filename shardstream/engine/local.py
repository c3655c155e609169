"""The in-process engine (``num_workers=0``): the samples of up to ``prefetch_factor`` batches
load on a thread pool in the calling process while the consumer works on earlier batches."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from typing import Any

from ..errors import LoaderTimeoutError, WorkerError
from .batches import Failure, Loaded, collate_samples, describe_batch, load_sample
from .stats import PoolStats
from .tasks import BatchTask, BatchWork, StageTimer
from .transport import pin_tree, tree_nbytes

__all__ = ["LocalEngine"]


class LocalEngine:
    """Runs batch tasks on ``num_threads`` threads of this process, ``prefetch`` batches ahead.

    Args:
        work: the work (opened on the first run).
        num_threads: sample threads.
        prefetch: the most batches in flight.
        timeout: seconds to wait for one batch, ``None`` for no limit.
    """

    def __init__(
        self, *, work: BatchWork, num_threads: int, prefetch: int, timeout: float | None
    ) -> None:
        self.work = work
        self.num_threads = num_threads
        self.prefetch = prefetch
        self.timeout = timeout
        self._executor: ThreadPoolExecutor | None = None
        self._opened = False
        self._pending: collections.deque[_LocalBatch] = collections.deque()

    def run(
        self, tasks: Iterable[BatchTask], stats: PoolStats, pin: bool
    ) -> Iterator[tuple[BatchTask, Any]]:
        """Yield ``(task, batch)`` in task order (see :meth:`WorkerPool.run`)."""
        if not self._opened:
            try:
                self.work.open()
            except Exception as error:
                raise WorkerError(f"work.open() failed: {type(error).__name__}: {error}") from error
            self._opened = True
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.num_threads, "shardstream-sample")
        pending = self._pending
        source = iter(tasks)
        exhausted = False
        try:
            while True:
                start = time.perf_counter()
                while not exhausted and len(pending) < self.prefetch:
                    try:
                        task = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.append(_LocalBatch(self.work, task, self._executor))
                if not pending:
                    return
                batch = pending[0]
                try:
                    loaded = batch.future.result(self.timeout)
                except FutureTimeout:
                    # a hung sample's thread cannot be stopped: drop everything without waiting
                    self.release()
                    raise LoaderTimeoutError(
                        f"no batch within timeout={self.timeout} s: waiting for "
                        f"{describe_batch(self.work, batch.task)}; its threads are left running "
                        "(use num_workers > 0 to have hung samples stopped)",
                        timeout=self.timeout,
                        indices=tuple(int(i) for i in batch.task.indices),
                    ) from None
                pending.popleft()
                if isinstance(loaded, Failure):
                    raise loaded.error()
                tree = loaded.tree
                nbytes = 0
                if tree is not None:
                    nbytes = tree_nbytes(tree)
                    if pin:
                        tree = pin_tree(tree)
                stats.add_batch(loaded.samples, loaded.skipped, nbytes, loaded.stages)
                stats.add_wait(time.perf_counter() - start)
                if tree is not None:
                    yield batch.task, tree
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Drop the batches in flight (samples already running finish first)."""
        futures = []
        while self._pending:
            futures.extend(self._pending.popleft().cancel())
        wait_futures(futures)

    def shutdown(self) -> None:
        """Drop the batches in flight and stop the threads."""
        self.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def release(self) -> None:
        """Like :meth:`shutdown` without waiting for anything (safe in a GC finalizer)."""
        for batch in self._pending:
            batch.cancel()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class _LocalBatch:
    """One batch whose samples run on the executor; the last sample to finish collates."""

    def __init__(self, work: BatchWork, task: BatchTask, executor: ThreadPoolExecutor) -> None:
        self.work = work
        self.task = task
        self.future: Future[Loaded | Failure] = Future()
        self._timer = StageTimer()
        count = len(task.indices)
        self._results: list[Any] = [None] * count
        self._remaining = count
        self._lock = threading.Lock()
        if count == 0:
            self._finish()
        self._futures = [executor.submit(self._load, item) for item in range(count)]

    def _load(self, item: int) -> None:
        self._results[item] = load_sample(self.work, self.task, item, self._timer)
        with self._lock:
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        self.future.set_result(collate_samples(self.work, self.task, self._results, self._timer))

    def cancel(self) -> list[Future]:
        """Cancel the samples not started yet; return every sample future."""
        for future in self._futures:
            future.cancel()
        return self._futures
