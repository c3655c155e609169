"""An ordered process pool whose workers hand packed samples back through shared memory.

Sending 100 KB samples back through a pipe costs a pickle, two kernel copies and an unpickle each,
about as much CPU as md5 itself, which would make the pool slower than reading in one process.
Instead, each chunk of work in flight owns a *slot* of one shared memory block: the worker writes
the chunk's packed samples into its slot and returns only their offsets, and the calling process
copies each sample out once (to hand it to the writer) before the slot is reused. A sample that
does not fit in what is left of its slot comes back through the pipe as bytes.

Results are yielded in submission order and at most ``slots`` chunks are in flight, so memory
stays bounded however fast the workers are. Workers ignore SIGINT (Ctrl-C stops the caller,
which shuts the pool down) and die with the calling process, even when it is killed with
``SIGKILL`` (see :mod:`shardstream._lifeline`). With the ``fork`` start method the shared block
is an anonymous shared mapping the workers inherit: it has no name in ``/dev/shm`` and vanishes
with the last process mapping it. Otherwise it is a named segment, unlinked when the pool closes
(or by the resource tracker when the pool's processes are killed); one whose owner and tracker
were killed is removed by the next pool (see :func:`shardstream._lifeline.claim_prefix`).
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import secrets
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import shared_memory
from typing import Any

from .._lifeline import bind_to_parent, claim_prefix, deathsig_fits, reap_unclaimed, release_prefix

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
        self._memory: shared_memory.SharedMemory | mmap.mmap | None = None
        self._view: memoryview | None = None
        self._name = ""
        self._prefix = ""
        self._owner = -1
        if workers > 1:
            context = multiprocessing.get_context()
            method = context.get_start_method()
            self._allocate(self._slots * slot_bytes, inherited=method == "fork")
            parent = None if method == "forkserver" else os.getpid()
            try:
                self._executor = ProcessPoolExecutor(
                    workers,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(parent, deathsig_fits(method)),
                )
                self._executor.submit(int).result()  # start every process now
            except BaseException:
                self.close()
                raise

    def _allocate(self, size: int, *, inherited: bool) -> None:
        token = secrets.token_hex(6)
        if inherited:  # forked workers inherit the mapping: nothing named to leak
            mapped = mmap.mmap(-1, size)
            memory: shared_memory.SharedMemory | mmap.mmap = mapped
            self._name = f"inherited-{token}"
            _inherited[self._name] = mapped
            self._view = memoryview(mapped)
        else:
            reap_unclaimed()
            self._prefix = f"ssw{os.getpid():x}{token}"
            self._owner = claim_prefix(self._prefix)
            memory = shared_memory.SharedMemory(f"{self._prefix}_pool", create=True, size=size)
            self._name = memory.name
            self._view = memory.buf
        self._memory = memory

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (cancelling queued chunks) and release the shared memory."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        memory, self._memory = self._memory, None
        if memory is not None:
            _inherited.pop(self._name, None)
            if isinstance(memory, mmap.mmap):
                self._view.release()  # type: ignore[union-attr]
                memory.close()
            else:
                memory.close()
                memory.unlink()
                release_prefix(self._prefix, self._owner)
            self._view = None

    def take(self, ref: Ref) -> bytes:
        """The bytes of a sample a worker stored (valid until the next chunk is consumed)."""
        if type(ref) is bytes:
            return ref
        start, size = ref
        return bytes(self._view[start : start + size])  # type: ignore[index]

    def map(
        self, function: Callable[[list, Any, Output], list], chunks: Iterable[list], options: Any
    ) -> Iterator[list]:
        """Yield ``function(chunk, options, output)`` for each chunk, in order.

        ``function`` must be picklable (module level). Refs in a yielded result must be passed
        to :meth:`take` before the next result is requested.
        """
        if self._executor is None:
            for whole in chunks:
                yield function(whole, options, Output())
            return
        free = deque(range(self._slots))
        pending: deque[tuple[Future, int]] = deque()
        chunks = iter(chunks)
        name = self._name
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


#: Anonymous shared blocks by name, set before forking: forked workers find theirs here.
_inherited: dict[str, mmap.mmap] = {}
#: Named blocks a (non-forked) worker has attached, by name.
_attached: dict[str, shared_memory.SharedMemory] = {}


def _run_in_slot(
    function: Callable[[list, Any, Output], list],
    chunk: list,
    options: Any,
    name: str,
    start: int,
    size: int,
) -> list:
    inherited = _inherited.get(name)
    if inherited is not None:
        return function(chunk, options, Output(memoryview(inherited), start, size))
    memory = _attached.get(name)
    if memory is None:
        for old in _attached.values():  # a previous conversion's block
            old.close()
        _attached.clear()
        memory = _attached[name] = shared_memory.SharedMemory(name=name)
    return function(chunk, options, Output(memory.buf, start, size))


def _start_worker(parent: int | None, deathsig: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bind_to_parent(parent, deathsig=deathsig)
