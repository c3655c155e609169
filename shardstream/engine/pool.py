"""WorkerPool: an ordered, parallel map from batch tasks to collated batches.

``num_workers=0`` loads in the calling process on ``num_threads`` threads; ``num_workers > 0``
starts that many worker processes, each loading the samples of its batch on ``num_threads``
threads. Either way results come back strictly in task order, at most
``prefetch_factor * max(1, num_workers)`` batches are in flight, and tasks are pulled from the
iterable only as room frees up (it may be infinite). Batches cross from workers to the consumer
through shared memory, and the consumer's arrays are views of it: a batch's memory is reused only
after every array of it has been garbage collected, so holding on to batches is safe (it costs
one more slot each) and nothing is copied out.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ConfigError, ConfigTypeError, PoolClosedError
from .local import LocalEngine
from .processes import ProcessEngine, default_context
from .stats import PoolStats
from .tasks import BatchTask, BatchWork

__all__ = ["WorkerPool"]


class WorkerPool:
    """Runs a :class:`BatchWork` over batch tasks in worker processes and/or threads.

    Args:
        work: what to run for each batch; must be picklable when ``num_workers > 0`` and the
            start method is not ``fork``.
        num_workers: worker processes; 0 loads in the calling process.
        num_threads: threads per worker (or in the calling process); ``None`` means 1.
        prefetch_factor: batches in flight per worker (per pool when ``num_workers=0``).
        persistent_workers: keep the worker processes between :meth:`run` calls (epochs).
        pin_memory: copy torch leaves into pinned memory (only when CUDA is available).
        timeout: seconds to wait for one batch before raising, ``None`` for no limit.
        multiprocessing_context: start method name (``"fork"``, ``"spawn"``,
            ``"forkserver"``); ``None``: fork where the platform has it.

    Raises:
        ConfigError: a count or timeout is out of range, or the context name is unknown.
        ConfigTypeError: ``work`` lacks ``open``/``sample``/``collate``/``describe``.

    Example:
        >>> pool = WorkerPool(work=my_work, num_workers=2, num_threads=2)  # doctest: +SKIP
        >>> for task, batch in pool.run(tasks):  # doctest: +SKIP
        ...     train_step(batch)
        >>> pool.close()  # doctest: +SKIP

    .. warning:: The pool never changes results: order and randomness are the work's job (it
       receives each sample's epoch position). A work that draws randomness from global state
       instead gives results that depend on ``num_workers`` and ``num_threads``.
    """

    def __init__(
        self,
        *,
        work: BatchWork,
        num_workers: int = 0,
        num_threads: int | None = None,
        prefetch_factor: int = 2,
        persistent_workers: bool = False,
        pin_memory: bool = False,
        timeout: float | None = None,
        multiprocessing_context: str | None = None,
    ) -> None:
        if not isinstance(work, BatchWork):
            raise ConfigTypeError(
                f"work={work!r} must have open(), sample(), collate() and describe() methods"
            )
        threads = 1 if num_threads is None else num_threads
        _check_count("num_workers", num_workers, 0)
        _check_count("num_threads", threads, 1)
        _check_count("prefetch_factor", prefetch_factor, 1)
        if timeout is not None and (not isinstance(timeout, (int, float)) or not timeout > 0):
            raise ConfigError(f"timeout={timeout!r} must be a positive number of seconds or None")
        self.num_workers = num_workers
        self.num_threads = threads
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self._stats = PoolStats()
        self._active: weakref.ref | None = None  # the run in progress (a weak reference)
        self._pin: bool | None = None
        self._engine: LocalEngine | ProcessEngine
        if num_workers == 0:
            self._engine = LocalEngine(
                work=work, num_threads=threads, prefetch=prefetch_factor, timeout=timeout
            )
        else:
            try:
                context = default_context(multiprocessing_context)
            except ValueError as error:
                raise ConfigError(
                    f"multiprocessing_context={multiprocessing_context!r}: {error}"
                ) from None
            self._engine = ProcessEngine(
                work=work,
                num_workers=num_workers,
                num_threads=threads,
                prefetch=prefetch_factor,
                persistent=persistent_workers,
                timeout=timeout,
                context=context,
            )
        self._closed = False
        # Garbage collection may run the finalizer on any thread, even one that is starting
        # up; joining threads there can deadlock, so it only releases (never waits).
        self._finalizer = weakref.finalize(self, self._engine.release)

    @property
    def closed(self) -> bool:
        """Whether the pool is closed (by :meth:`close`, a dead worker or a timeout)."""
        engine = self._engine
        return self._closed or (isinstance(engine, ProcessEngine) and engine.closed)

    @property
    def shm_prefix(self) -> str | None:
        """The name prefix of this pool's shared-memory segments (``None`` without workers)."""
        engine = self._engine
        return engine.slots.prefix if isinstance(engine, ProcessEngine) else None

    def worker_pids(self) -> list[int]:
        """Return the process ids of the running workers (empty without workers)."""
        engine = self._engine
        if not isinstance(engine, ProcessEngine):
            return []
        return [w.process.pid for w in engine.workers if w.process.pid is not None]

    def run(self, tasks: Iterable[BatchTask]) -> Iterator[tuple[BatchTask, Any]]:
        """Load the batches of ``tasks``, yielding ``(task, batch)`` strictly in task order.

        A batch whose samples were all skipped is not yielded. Starting a new run ends the
        previous one if it is still going. Without ``persistent_workers`` the worker processes
        start with the run and stop when it ends.

        Args:
            tasks: the batch tasks, pulled lazily (at most ``prefetch_factor *
                max(1, num_workers)`` are loaded ahead of the consumer).

        Returns:
            An iterator of ``(task, batch)``; ``batch`` is the work's collated pytree with
            every array and tensor the caller's to keep and modify (with workers, views into
            shared memory that is not reused while any of them is alive; pinned batches are
            copies).

        Raises:
            PoolClosedError: the pool is closed.
            SampleError: a sample or collation raised (names the sample).
            WorkerDiedError: a worker process died (names the samples it was loading); the
                pool is closed.
            WorkerError: ``work.open()`` raised in a worker; the pool is closed.
            LoaderTimeoutError: no batch arrived within ``timeout``; the pool is closed.
        """
        if self.closed:
            raise PoolClosedError("the worker pool is closed; create a new one")
        previous = self._active() if self._active is not None else None
        self._active = None
        if previous is not None:
            previous.close()
        runner = self._run(tasks)
        self._active = weakref.ref(runner)
        return runner

    def _run(self, tasks: Iterable[BatchTask]) -> Iterator[tuple[BatchTask, Any]]:
        if self.closed:
            raise PoolClosedError("the worker pool is closed; create a new one")
        self._stats.begin()
        try:
            yield from self._engine.run(tasks, self._stats, self._pinning())
        except KeyboardInterrupt:
            self.close()
            raise
        finally:
            self._stats.end()

    def _pinning(self) -> bool:
        if self._pin is None:
            self._pin = False
            if self.pin_memory:
                import torch

                self._pin = bool(torch.cuda.is_available())
        return self._pin

    def stats(self) -> dict[str, float]:
        """Return throughput counters summed over the pool's runs.

        Returns:
            ``samples``, ``batches``, ``bytes`` (sum of array leaf ``nbytes`` delivered),
            ``skipped`` (samples the work skipped), ``empty_batches`` (batches with every
            sample skipped, not yielded), ``elapsed_s`` (wall time inside runs),
            ``samples_per_s``, ``bytes_per_s``, ``wait_s`` (time the consumer waited for
            batches), ``stall_pct`` (100 * wait / elapsed), and ``read_s``, ``decode_s``,
            ``transform_s``, ``collate_s`` (seconds the work reported per stage, summed over
            workers and threads).
        """
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters of :meth:`stats`."""
        self._stats.reset()

    def close(self) -> None:
        """Stop the workers and threads and unlink all shared memory (idempotent).

        Also runs when the pool is garbage collected, on KeyboardInterrupt while iterating, and
        when a worker dies.
        """
        if self._closed:
            return
        self._closed = True
        active = self._active() if self._active is not None else None
        self._active = None
        if active is not None:
            try:
                active.close()
            except ValueError:  # closing from inside the run itself
                pass
        self._finalizer.detach()
        self._engine.shutdown()

    def __enter__(self) -> WorkerPool:
        """Return the pool; :meth:`close` it when the block ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the pool."""
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"WorkerPool(num_workers={self.num_workers}, num_threads={self.num_threads}, "
            f"prefetch_factor={self.prefetch_factor}, {state})"
        )


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
