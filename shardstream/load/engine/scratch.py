"""Reusable batch buffers for collation inside worker processes.

A worker process copies every collated batch into a shared-memory slot before it collates the
next one, so the arrays a collation fills are garbage a moment later. Allocating them afresh for
every batch costs more than filling them: a batch of 256 float images is 154 MB of new pages to
fault in and zero each time (measured here: ~20-45 ms per such batch, more than the copy
itself). :func:`batch_array` hands out the same buffer again instead, per thread and per name,
but only where that is safe: in a worker process (:func:`enable`, called by the worker loop).
Anywhere else, e.g. a loader with ``num_workers=0`` whose batches go straight to the user, it
returns a new array every time.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["batch_array", "enable", "enabled"]

_reuse = False
_local = threading.local()


def enable() -> None:
    """Let :func:`batch_array` reuse buffers in this process (a worker whose batches are copied
    out before the next collation)."""
    global _reuse
    _reuse = True


def enabled() -> bool:
    """Whether :func:`batch_array` reuses buffers in this process."""
    return _reuse


def batch_array(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """Return an uninitialised C-contiguous array to collate a batch field into.

    In a worker process this is the same memory as the last call with this ``name``, ``shape``
    and ``dtype`` on this thread (so its contents are only valid until the next such call);
    elsewhere it is always a new array.

    Args:
        name: what the buffer holds (e.g. the field's path in the batch).
        shape: the array's shape.
        dtype: the array's dtype.

    Returns:
        The array.
    """
    if not _reuse:
        return np.empty(shape, dtype)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    key = (name, tuple(shape), np.dtype(dtype))
    array = buffers.get(key)
    if array is None:
        stale = [k for k in buffers if k[0] == name]  # a field whose shape changed
        for k in stale:
            del buffers[k]
        array = buffers[key] = np.empty(shape, dtype)
    return array
