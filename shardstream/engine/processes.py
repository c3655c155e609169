"""The multi-process engine (``num_workers > 0``): the consumer side of the worker processes.

Tasks go to the worker with the fewest outstanding batches (ties in turn), at most
``prefetch_factor`` per worker; replies are reordered into task order. The consumer waits on
the reply pipes and the process sentinels together, so a worker that dies is noticed at once.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from .._lifeline import deathsig_fits
from ..errors import ConfigTypeError, LoaderTimeoutError, WorkerDiedError
from .batches import Failure, describe_batch, describe_sample
from .slots import SlotRing
from .stats import PoolStats
from .tasks import BatchTask, BatchWork
from .transport import read_tree
from .worker import worker_main

__all__ = ["ProcessEngine"]

#: seconds a terminated worker gets before it is killed
_GRACE_S = 1.0
#: seconds to wait for the batches in flight when a run of persistent workers ends early
_DRAIN_S = 10.0


class _Worker:
    __slots__ = ("outstanding", "process", "results", "tasks")

    def __init__(self, process: Any, tasks: Any, results: Any) -> None:
        self.process = process
        self.tasks = tasks
        self.results = results
        self.outstanding = 0


class _Feeder:
    """Sends pickled tasks on a thread, so the consumer never blocks on a full pipe.

    A send to a worker that died blocks only until every worker is stopped (the pipe then
    breaks), and the consumer meanwhile notices the death by the process sentinel.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="shardstream-feeder", daemon=True)
        self._thread.start()

    def send(self, connection: Any, data: bytes) -> None:
        """Queue ``data`` (a pickled message) for ``connection``."""
        self._queue.put((connection, data))

    def stop(self) -> None:
        """Send what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            connection, data = item
            try:
                connection.send_bytes(data)
            except Exception:  # the worker is gone; its sentinel tells the consumer
                pass


_STOP = bytes(ForkingPickler.dumps(None))


class _InFlight:
    __slots__ = ("reply", "slot", "task", "worker")

    def __init__(self, task: BatchTask, worker: int, slot: int) -> None:
        self.task = task
        self.worker = worker
        self.slot = slot
        self.reply: tuple | None = None


class ProcessEngine:
    """Worker processes, their pipes, shared index cells and shared-memory slots.

    Args:
        work: the work (sent to each worker once).
        num_workers: worker processes.
        num_threads: threads per worker.
        prefetch: batches in flight per worker.
        persistent: keep the workers between runs.
        timeout: seconds to wait for one batch, ``None`` for no limit.
        context: the multiprocessing context.
    """

    def __init__(
        self,
        *,
        work: BatchWork,
        num_workers: int,
        num_threads: int,
        prefetch: int,
        persistent: bool,
        timeout: float | None,
        context: Any,
    ) -> None:
        self.work = work
        self.num_workers = num_workers
        self.num_threads = num_threads
        self.prefetch = prefetch
        self.persistent = persistent
        self.timeout = timeout
        self.context = context
        self.slots = SlotRing(prefetch * num_workers)
        self.cells = context.RawArray("q", num_workers * num_threads)
        self.batches = context.RawArray("q", num_workers)
        self.first_live = context.RawValue("q", 0)
        self.workers: list[_Worker] = []
        self.in_flight: dict[int, _InFlight] = {}
        self.order: collections.deque[int] = collections.deque()
        self.next_ticket = 0
        self.closed = False
        self._turn = 0
        self._draining = False
        self._feeder: _Feeder | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker processes."""
        for i in range(len(self.cells)):
            self.cells[i] = -1
        for i in range(self.num_workers):
            self.batches[i] = -1
        resource_tracker.ensure_running()  # one tracker shared by the workers, before forking
        with _no_native_thread_pools():
            self._start_workers()
        self._feeder = _Feeder()  # started after forking: the workers inherit no extra thread

    def _start_workers(self) -> None:
        method = self.context.get_start_method()
        # a forkserver child's parent is the server; the worker then watches whatever parent it has
        parent = None if method == "forkserver" else os.getpid()
        deathsig = deathsig_fits(method)
        for number in range(self.num_workers):
            task_read, task_write = self.context.Pipe(duplex=False)
            result_read, result_write = self.context.Pipe(duplex=False)
            process = self.context.Process(
                target=worker_main,
                args=(
                    self.work,
                    number,
                    task_read,
                    result_write,
                    self.cells,
                    self.batches,
                    self.num_threads,
                    parent,
                    self.first_live,
                    deathsig,
                ),  # fmt: skip
                name=f"shardstream-loader-{number}",
                daemon=True,
            )
            try:
                process.start()
            except (pickle.PicklingError, TypeError, AttributeError) as error:
                self.stop_workers(graceful=False)
                raise ConfigTypeError(
                    f"work={self.work!r} cannot be sent to worker processes started with "
                    f"{self.context.get_start_method()!r}: {error}"
                ) from error
            finally:
                task_read.close()
                result_write.close()
            self.workers.append(_Worker(process, task_write, result_read))

    def stop_workers(self, *, graceful: bool) -> None:
        """Stop every worker (asking first when ``graceful``) and free the slots."""
        self.first_live.value = sys.maxsize
        workers, self.workers = self.workers, []
        feeder = self._feeder
        if graceful and feeder is not None:
            for worker in workers:
                feeder.send(worker.tasks, _STOP)
            _join_all([w.process for w in workers], _GRACE_S)
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
        _join_all([w.process for w in workers], _GRACE_S)
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
        if feeder is not None:
            feeder.stop()  # every worker is gone: pending sends fail fast
            self._feeder = None
        for worker in workers:
            worker.tasks.close()
            worker.results.close()
            try:
                worker.process.close()
            except ValueError:
                pass
        for entry in self.in_flight.values():
            self.slots.release(entry.slot)
        self.in_flight.clear()
        self.order.clear()
        self.slots.close()

    def release(self) -> None:
        """:meth:`shutdown`, as run by the pool's GC finalizer (it joins processes, not threads)."""
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the workers and unlink all shared memory (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.stop_workers(graceful=False)
        self.slots.shutdown()

    # ---- a run ---------------------------------------------------------------------------
    def run(
        self, tasks: Iterable[BatchTask], stats: PoolStats, pin: bool
    ) -> Iterator[tuple[BatchTask, Any]]:
        """Yield ``(task, batch)`` in task order (see :meth:`WorkerPool.run`)."""
        if not self.workers:
            self.start()
        self.first_live.value = self.next_ticket
        source = iter(tasks)
        exhausted = False
        capacity = self.prefetch * self.num_workers
        finished = False
        try:
            while True:
                start = time.perf_counter()
                while not exhausted and len(self.in_flight) < capacity:
                    try:
                        task = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    self._submit(task)
                if not self.order:
                    finished = True
                    return
                head = self.in_flight[self.order[0]]
                deadline = None if self.timeout is None else start + self.timeout
                while head.reply is None:
                    self._receive(deadline, head)
                ticket = self.order.popleft()
                del self.in_flight[ticket]
                tree = self._deliver(head, stats, pin)
                stats.add_wait(time.perf_counter() - start)
                if tree is not None:
                    yield head.task, tree
        except KeyboardInterrupt:
            self.shutdown()
            raise
        finally:
            if not finished and not self.closed:
                self._abandon()
            elif not self.persistent and not self.closed:
                self.stop_workers(graceful=True)

    def _submit(self, task: BatchTask) -> None:
        if not isinstance(task, BatchTask):
            raise ConfigTypeError(f"tasks must be BatchTask objects, got {type(task).__name__}")
        count = len(self.workers)
        best = min(
            range(count),
            key=lambda w: (self.workers[w].outstanding, (w - self._turn) % count),
        )
        self._turn = (best + 1) % count
        slot = self.slots.acquire()
        ticket = self.next_ticket
        try:
            data = bytes(ForkingPickler.dumps((ticket, task, *self.slots.describe(slot))))
        except Exception:
            self.slots.release(slot)
            raise
        self.next_ticket += 1
        self.in_flight[ticket] = _InFlight(task, best, slot)
        self.order.append(ticket)
        worker = self.workers[best]
        worker.outstanding += 1
        self._feeder.send(worker.tasks, data)  # type: ignore[union-attr]  # set by start()

    def _receive(self, deadline: float | None, waiting: _InFlight | None = None) -> None:
        """Wait for replies (or a death) and file them under their tickets.

        ``waiting`` is the batch the consumer waits for, named if the deadline passes.
        """
        timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
        pipes = {w.results: n for n, w in enumerate(self.workers)}
        sentinels = {w.process.sentinel: n for n, w in enumerate(self.workers)}
        ready = wait([*pipes, *sentinels], timeout)
        if not ready:
            self._timed_out(waiting)
        for item in ready:
            if item in pipes:
                try:
                    reply = item.recv()
                except (EOFError, OSError):
                    self._died(pipes[item])
                self._file(pipes[item], reply)
        for item in ready:
            if item in sentinels:
                self._died(sentinels[item])

    def _file(self, worker: int, reply: tuple) -> None:
        kind, ticket = reply[0], reply[1]
        if kind == "open_fail":
            failure: Failure = reply[2]
            self._fail()
            raise failure.error()
        if kind == "ok" and reply[3] is not None:
            self.slots.adopt(reply[2], reply[3], reply[4])
        self.workers[worker].outstanding -= 1
        entry = self.in_flight.get(ticket)
        if entry is not None:
            entry.reply = reply

    def _deliver(self, entry: _InFlight, stats: PoolStats, pin: bool) -> Any:
        reply = entry.reply
        return_slot = True
        try:
            kind = reply[0]
            if kind == "fail":
                raise reply[2].error()
            if kind == "empty":
                stats.add_batch(0, reply[2], 0, reply[3])
                return None
            _, _, slot, _, _, spec, samples, skipped, nbytes, stages = reply
            if pin:  # pinned leaves are copies: the slot is free again at once
                tree = read_tree(pickle.loads(spec), self.slots.buffer(slot), pin_memory=True)
            else:  # views into the slot, lent until the last of them is collected
                lent = self.slots.lend(slot)
                tree = read_tree(pickle.loads(spec), lent, copy=False)
                del lent
                return_slot = False
            stats.add_batch(samples, skipped, nbytes, stages)
            return tree
        finally:
            if return_slot:
                self.slots.release(entry.slot)

    def _abandon(self) -> None:
        """End a run early: drain persistent workers (or stop them), so the next run starts clean."""
        self.first_live.value = self.next_ticket
        if not self.persistent:
            self.stop_workers(graceful=False)
            return
        deadline = time.perf_counter() + _DRAIN_S
        self._draining = True
        try:
            while any(w.outstanding for w in self.workers):
                self._receive(deadline)
        except BaseException:
            if not self.closed:
                self.stop_workers(graceful=False)
            return
        finally:
            self._draining = False
        for ticket in self.order:
            self.slots.release(self.in_flight[ticket].slot)
        self.in_flight.clear()
        self.order.clear()

    # ---- faults ------------------------------------------------------------------------------
    def _loading(self, worker: int) -> list[int]:
        base = worker * self.num_threads
        cells = [self.cells[base + t] for t in range(self.num_threads)]
        return [int(index) for index in cells if index >= 0]

    def _doing(self, worker: int) -> tuple[str, list[int]]:
        indices = self._loading(worker)
        if indices:
            return ", ".join(describe_sample(self.work, i) for i in indices), indices
        entry = self.in_flight.get(int(self.batches[worker]))
        if entry is not None:
            return f"collating or sending {describe_batch(self.work, entry.task)}", []
        return "no sample (idle)", []

    def _fail(self) -> None:
        """Close the pool after a fault (only stop the workers while draining an ended run)."""
        if self._draining:
            self.stop_workers(graceful=False)
        else:
            self.shutdown()

    def _died(self, worker: int) -> None:
        process = self.workers[worker].process
        process.join(_GRACE_S)
        code = process.exitcode
        pid = process.pid
        doing, indices = self._doing(worker)
        self._fail()
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"was killed by {name}"
            if -code == signal.SIGKILL:
                how += " (often the out-of-memory killer)"
            elif -code == getattr(signal, "SIGBUS", None):
                how += " (often /dev/shm running out of space)"
        else:
            how = f"exited with code {code}"
        raise WorkerDiedError(
            f"loader worker {worker} (pid {pid}) {how} while loading {doing}; the pool is closed",
            code,
            tuple(indices),
        )

    def _timed_out(self, waiting: _InFlight | None) -> None:
        doing = "; ".join(f"worker {n}: {self._doing(n)[0]}" for n in range(len(self.workers)))
        indices: tuple[int, ...] = ()
        what = "the batches in flight"
        if waiting is not None:
            indices = tuple(int(i) for i in waiting.task.indices)
            what = describe_batch(self.work, waiting.task)
        self._fail()
        raise LoaderTimeoutError(
            f"no batch within timeout={self.timeout} s: waiting for {what}; still loading: "
            f"{doing}; the worker processes are stopped and the pool is closed",
            timeout=self.timeout,
            indices=indices,
        )


@contextlib.contextmanager
def _no_native_thread_pools() -> Iterator[None]:
    """Stop OpenCV's thread pool while worker processes are forked, then restore it.

    A forked child inherits the pool's state but not its threads; resizing that pool in the
    child (as the worker does, to one thread) then waits forever on the parent's threads
    (measured here: a hang in ``pthread_cond_destroy``) once this process has run any parallel
    OpenCV op. Shrinking the pool to one thread first joins those threads cleanly.
    """
    cv2 = sys.modules.get("cv2")
    threads = cv2.getNumThreads() if cv2 is not None else 1
    if threads > 1:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        if threads > 1:
            cv2.setNumThreads(threads)


def _join_all(processes: list[Any], seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    for process in processes:
        process.join(max(0.0, deadline - time.perf_counter()))


def default_context(name: str | None) -> Any:
    """Return the multiprocessing context to use: ``name``, else fork where it exists."""
    if name is not None:
        return multiprocessing.get_context(name)
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()
