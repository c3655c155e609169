"""Reusable batch buffers for collation inside worker processes.

A worker process copies every collated batch into a shared-memory slot before it collates the
next one, so the arrays a collation fills are garbage a moment later. Allocating them afresh for
every batch costs more than filling them: a batch of 256 float images is 154 MB of new pages to
fault in and zero each time (measured here: ~20-45 ms per such batch, more than the copy
itself). :func:`batch_array` hands out the same buffer again instead, per thread and per name,
but only where that is safe: in a worker process (:func:`enable`, called by the worker loop).
Anywhere else, e.g. a loader with ``num_workers=0`` whose batches go straight to the user, it
returns a new array every time.

Better still, a worker collates straight into the shared-memory slot its batch will travel in:
while it loads a batch it opens an *arena* over the slot's current segment (:func:`arena`), and
:func:`batch_array` carves batch fields out of it. The transport then finds those leaves already
in place (:func:`~shardstream.engine.transport.plan_tree` with ``in_place``) and copies only
the rest; a batch that outgrows the slot is copied as usual.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

__all__ = ["Arena", "arena", "batch_array", "enable", "enabled"]

_reuse = False
_local = threading.local()
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
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes == 0 or start + nbytes > self.buffer.size:
            return None
        self.used = start + nbytes
        return self.buffer[start : start + nbytes].view(dtype).reshape(shape)


_arena: Arena | None = None


@contextlib.contextmanager
def arena(buffer: np.ndarray | None) -> Iterator[Arena | None]:
    """Let :func:`batch_array` place batch fields in ``buffer`` while the block runs.

    Only one batch is collated at a time in a worker process, so the arena is process-wide
    (collation may run on any of the worker's threads).

    Args:
        buffer: the slot's segment as a writable uint8 array, or ``None`` for no arena.

    Yields:
        The arena (``None`` when ``buffer`` is ``None``); its ``used`` says how many leading
        bytes of ``buffer`` hold fields.
    """
    global _arena
    current = Arena(buffer) if buffer is not None and _reuse else None
    _arena = current
    try:
        yield current
    finally:
        _arena = None


def enable() -> None:
    """Let :func:`batch_array` reuse buffers in this process (a worker whose batches are copied
    out before the next collation)."""
    global _reuse
    _reuse = True


def enabled() -> bool:
    """Whether :func:`batch_array` reuses buffers in this process."""
    return _reuse


def batch_array(
    name: str, shape: tuple[int, ...], dtype: np.dtype | type, *, temporary: bool = False
) -> np.ndarray:
    """Return an uninitialised C-contiguous array to collate a batch field into.

    In a worker process this is memory in the batch's slot while an :func:`arena` is open
    (unless ``temporary``), or else the same memory as the last call with this ``name``,
    ``shape`` and ``dtype`` on this thread (so its contents are only valid until the next such
    call); elsewhere it is always a new array.

    Args:
        name: what the buffer holds (e.g. the field's path in the batch).
        shape: the array's shape.
        dtype: the array's dtype.
        temporary: the array is an intermediate, not a field of the batch (never placed in
            the slot).

    Returns:
        The array.
    """
    if not _reuse:
        return np.empty(shape, dtype)
    dtype = np.dtype(dtype)
    place = _arena
    if place is not None and not temporary:
        array = place.take(tuple(shape), dtype)
        if array is not None:
            _forget(name)  # the slot serves this field now: free earlier batches' buffer
            return array
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (name, tuple(shape), dtype)
    array = buffers.get(key)
    if array is None:
        _forget(name)  # a field whose shape or dtype changed
        array = buffers[key] = np.empty(shape, dtype)
    return array


def _forget(name: str) -> None:
    """Drop this thread's reusable buffers for field ``name``."""
    buffers = getattr(_local, "buffers", None)
    if buffers:
        for key in [k for k in buffers if k[0] == name]:
            del buffers[key]
