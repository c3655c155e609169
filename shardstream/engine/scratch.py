"""Reusable batch buffers for collation inside worker processes.

A worker process copies every collated batch into a shared-memory slot before it collates the
next one, so the arrays a collation fills are garbage a moment later. Allocating them afresh for
every batch costs more than filling them: a batch of 256 float images is 154 MB of new pages to
fault in and zero each time (measured here: ~20-45 ms per such batch, more than the copy
itself). A :class:`BatchBuffers` made with ``reuse=True`` hands out the same buffer again instead,
per thread and per name; the worker loop makes one and hands it to the work with each batch
(:attr:`~shardstream.engine.tasks.BatchTask.buffers`), which hands it to a preset's collation.
Anywhere else, e.g. a loader with ``num_workers=0`` whose batches go straight to the user,
:data:`FRESH` returns a new array every time.

Better still, a worker collates straight into the shared-memory slot its batch will travel in:
while it loads a batch it opens an *arena* over the slot's current segment
(:meth:`BatchBuffers.arena`), and :meth:`BatchBuffers.array` carves batch fields out of it. The transport then finds those leaves already
in place (:func:`~shardstream.engine.transport.plan_tree` with ``in_place``) and copies only
the rest; a batch that outgrows the slot is copied as usual.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import numpy as np

__all__ = ["FRESH", "Arena", "BatchBuffers"]

_ALIGN = 64  # as the transport aligns leaves


class Arena:
    """A bump allocator over one buffer (a slot's segment) for the fields of one batch.

    Args:
        buffer: a writable uint8 array (the whole segment).
    """

    def __init__(self, buffer: np.ndarray) -> None:
        self.buffer = buffer
        self.used = 0

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """An array of ``shape``/``dtype`` at the next aligned offset, ``None`` when full."""
        start = -(-self.used // _ALIGN) * _ALIGN
        nbytes = math.prod(map(int, shape)) * dtype.itemsize  # exact; ~10x quicker than np.prod
        if nbytes == 0 or start + nbytes > self.buffer.size:
            return None
        self.used = start + nbytes
        return self.buffer[start : start + nbytes].view(dtype).reshape(shape)


class BatchBuffers:
    """Where a collation gets the arrays of a batch's fields.

    Args:
        reuse: hand out the same memory again for the same name, shape and dtype (per thread),
            or memory in the batch's slot while an :meth:`arena` is open; only where every batch
            is copied out before the next is collated (a worker process). ``False``: a new
            array every time.
    """

    def __init__(self, *, reuse: bool) -> None:
        self.reuse = reuse
        self._local = threading.local()
        self._arena: Arena | None = None

    def __reduce__(self) -> tuple:
        # the cached memory stays in the process that made it: a copy starts empty
        return (_buffers, (self.reuse,))

    @contextlib.contextmanager
    def arena(self, buffer: np.ndarray | None) -> Iterator[Arena | None]:
        """Let :meth:`array` place batch fields in ``buffer`` while the block runs.

        Only one batch is collated at a time in a worker process, so the arena is shared by the
        worker's threads (collation may run on any of them).

        Args:
            buffer: the slot's segment as a writable uint8 array, or ``None`` for no arena.

        Yields:
            The arena (``None`` when ``buffer`` is ``None`` or nothing is reused); its ``used``
            says how many leading bytes of ``buffer`` hold fields.
        """
        current = Arena(buffer) if buffer is not None and self.reuse else None
        self._arena = current
        try:
            yield current
        finally:
            self._arena = None

    def array(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype | type, *, temporary: bool = False
    ) -> np.ndarray:
        """An uninitialised C-contiguous array to collate a batch field into.

        With ``reuse`` this is memory in the batch's slot while an :meth:`arena` is open (unless
        ``temporary``), or else the same memory as the last call with this ``name``, ``shape``
        and ``dtype`` on this thread (so its contents are only valid until the next such call);
        without, always a new array.

        Args:
            name: what the buffer holds (e.g. the field's path in the batch).
            shape: the array's shape.
            dtype: the array's dtype.
            temporary: the array is an intermediate, not a field of the batch (never placed in
                the slot).
        """
        if not self.reuse:
            return np.empty(shape, dtype)
        dtype = np.dtype(dtype)
        place = self._arena
        if place is not None and not temporary:
            array = place.take(tuple(shape), dtype)
            if array is not None:
                self._forget(name)  # the slot serves this field now: free earlier batches' buffer
                return array
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        key = (name, tuple(shape), dtype)
        array = buffers.get(key)
        if array is None:
            self._forget(name)  # a field whose shape or dtype changed
            array = buffers[key] = np.empty(shape, dtype)
        return array

    def slot_array(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray | None:
        """An uninitialised array in the batch's slot, or ``None`` when no arena is open (e.g.
        no slot yet, or :data:`FRESH`) or the slot is full.

        For fields a sample's work fills before the collation sees them (a preset's ragged
        pixels): a collation that finds them in place lets the transport skip their copy. The
        arena is a bump allocator: callers on several threads must serialise their calls.
        """
        place = self._arena
        if place is None:
            return None
        return place.take(tuple(shape), np.dtype(dtype))

    def _forget(self, name: str) -> None:
        """Drop this thread's reusable buffers for field ``name``."""
        buffers = getattr(self._local, "buffers", None)
        if buffers:
            for key in [k for k in buffers if k[0] == name]:
                del buffers[key]


def _buffers(reuse: bool) -> BatchBuffers:
    return BatchBuffers(reuse=reuse)


#: a new array on every call: for batches that go straight to their user (no worker process)
FRESH = BatchBuffers(reuse=False)
