"""An ordered process pool whose workers hand packed samples back through shared memory.

Sending 100 KB samples back through a pipe costs a pickle, two kernel copies and an unpickle each,
about as much CPU as md5 itself, which would make the pool slower than reading in one process.
Instead, each chunk of work in flight owns a *slot* of one shared memory block: the worker writes
the chunk's packed samples into its slot and returns only their offsets, and the calling process
copies each sample out once (to hand it to the writer) before the slot is reused. A sample that
does not fit in what is left of its slot comes back through the pipe as bytes.

Results are yielded in submission order and at most ``slots`` chunks are in flight, so memory
stays bounded however fast the workers are. Workers ignore SIGINT (Ctrl-C stops the caller,
which shuts the pool down). The shared memory is released when the pool closes, and by Python's
resource tracker if the process dies.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import shared_memory
from typing import Any

__all__ = ["OrderedPool", "Output", "Ref"]

#: Where a packed sample is: ``(offset, size)`` in the shared block, or the bytes themselves.
Ref = tuple[int, int] | bytes

#: Bytes of shared memory per chunk in flight.
DEFAULT_SLOT_BYTES = 8 << 20


class Output:
    """Where a worker puts packed samples: a slot of the shared block, or plain bytes.

    Args:
        buffer: the shared block's buffer, or ``None`` (every sample is returned as bytes).
        start: the slot's first byte.
        size: the slot's size.
    """

    def __init__(self, buffer: memoryview | None = None, start: int = 0, size: int = 0) -> None:
        self._buffer = buffer
        self._position = start
        self._end = start + size

    def put(self, parts: list[bytes]) -> Ref:
        """Store the concatenation of ``parts``; return where it is (see :data:`Ref`)."""
        size = sum(map(len, parts))
        if self._buffer is None or self._position + size > self._end:
            return b"".join(parts)
        start = position = self._position
        for part in parts:
            self._buffer[position : position + len(part)] = part
            position += len(part)
        self._position = position
        return start, size


class OrderedPool:
    """Run ``function(chunk, options, output)`` for each chunk; yield the results in order.

    With ``workers == 1`` everything runs in the calling process (``output`` returns bytes).
    Use as a context manager; the worker processes start in the constructor, before the caller
    starts threads of its own (forking a process with threads can deadlock).

    Args:
        workers: worker processes (1: none).
        slots: chunks in flight at most (default ``4 * workers``).
        slot_bytes: shared memory per chunk in flight.
    """

    def __init__(
        self, workers: int, *, slots: int | None = None, slot_bytes: int = DEFAULT_SLOT_BYTES
    ) -> None:
        self._workers = workers
        self._slots = slots or 4 * workers
        self._slot_bytes = slot_bytes
        self._executor: ProcessPoolExecutor | None = None
        self._memory: shared_memory.SharedMemory | None = None
        if workers > 1:
            self._memory = shared_memory.SharedMemory(create=True, size=self._slots * slot_bytes)
            try:
                self._executor = ProcessPoolExecutor(workers, initializer=_ignore_sigint)
                self._executor.submit(int).result()  # start every process now
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (cancelling queued chunks) and release the shared memory."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._memory is not None:
            self._memory.close()
            self._memory.unlink()
            self._memory = None

    def take(self, ref: Ref) -> bytes:
        """The bytes of a sample a worker stored (valid until the next chunk is consumed)."""
        if type(ref) is bytes:
            return ref
        start, size = ref
        return bytes(self._memory.buf[start : start + size])

    def map(
        self, function: Callable[[list, Any, Output], list], chunks: Iterable[list], options: Any
    ) -> Iterator[list]:
        """Yield ``function(chunk, options, output)`` for each chunk, in order.

        ``function`` must be picklable (module level). Refs in a yielded result must be passed
        to :meth:`take` before the next result is requested.
        """
        if self._executor is None:
            for chunk in chunks:
                yield function(chunk, options, Output())
            return
        free = deque(range(self._slots))
        pending: deque[tuple[Future, int]] = deque()
        chunks = iter(chunks)
        name = self._memory.name
        try:
            while True:
                while free:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    slot = free.popleft()
                    job = (
                        function,
                        chunk,
                        options,
                        name,
                        slot * self._slot_bytes,
                        self._slot_bytes,
                    )
                    pending.append((self._executor.submit(_run_in_slot, *job), slot))
                if not pending:
                    return
                future, slot = pending.popleft()
                result = future.result()
                yield result  # the caller takes its samples out of the slot before resuming
                free.append(slot)
        finally:
            for future, _ in pending:
                future.cancel()


_attached: dict[str, shared_memory.SharedMemory] = {}


def _run_in_slot(
    function: Callable[[list, Any, Output], list],
    chunk: list,
    options: Any,
    name: str,
    start: int,
    size: int,
) -> list:
    memory = _attached.get(name)
    if memory is None:
        for old in _attached.values():  # a previous conversion's block
            old.close()
        _attached.clear()
        memory = _attached[name] = shared_memory.SharedMemory(name=name)
    return function(chunk, options, Output(memory.buf, start, size))


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
