"""Shared-memory slots: the buffers batches travel through from workers to the consumer.

The consumer owns a ring of slots, one per batch in flight. A slot is a POSIX shared-memory
segment whose names are predictable (``<prefix>_<slot>_<generation>``): a worker that finds
the slot too small for its batch creates the next generation itself, writes the batch there and
reports the new name; the consumer then unlinks the old segment. Because the consumer knows the
only name a worker may create for a slot, it can unlink everything on close, even segments made
by a worker that was killed before it could report them. The prefix is claimed (see
:func:`shardstream._lifeline.claim_prefix`): when the consumer and its workers are all killed,
the resource tracker unlinks the segments, and if it was killed too, the next ring does.

Batches are *lent*: the consumer's arrays are views into the slot (no copy-out), and the slot
goes back to the free list only when the last of them is garbage collected. A consumer that holds
on to batches therefore makes the ring grow (a new slot per batch held), never overwrites them.
The consumer maps each segment with its own ``mmap`` and never closes it explicitly: the mapping
lives until the ring and the last lent view have let go of it, so closing the pool leaves batches
still held by the user intact.
"""

from __future__ import annotations

import _posixshmem  # the stdlib's own shm_unlink, as multiprocessing.shared_memory uses it
import mmap
import os
import secrets
import weakref
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from .._lifeline import claim_prefix, reap_unclaimed, release_prefix
from ..errors import TransportError

__all__ = ["SlotRing", "WorkerSlots", "grown_size", "map_segment", "unlink_segment"]

_PAGE = 4096
# a worker maps a slot's pages at once rather than faulting them in one by one while it writes a
# batch: a 25 MB segment mapped and written in ~2.7 ms instead of ~10-14 ms (measured here)
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def grown_size(current: int, needed: int) -> int:
    """Return the size of a replacement segment: at least ``needed``, at least 1.5x ``current``.

    Args:
        current: the slot's current size in bytes (0 when it has no segment yet).
        needed: the bytes the batch needs.

    Returns:
        The new size, rounded up to a whole page.
    """
    size = max(needed, current + current // 2, 1)
    return -(-size // _PAGE) * _PAGE


def create_segment(name: str, size: int) -> shared_memory.SharedMemory:
    """Create segment ``name`` of ``size`` bytes, reserving its memory up front.

    Args:
        name: the segment name.
        size: its size in bytes.

    Returns:
        The segment, mapped.

    Raises:
        TransportError: the memory cannot be reserved (``/dev/shm`` full).
    """
    try:
        segment = shared_memory.SharedMemory(name=name, create=True, size=size)
    except FileExistsError:  # left by a batch whose growth was never reported
        unlink_segment(name)
        segment = shared_memory.SharedMemory(name=name, create=True, size=size)
    fd = getattr(segment, "_fd", -1)
    if fd >= 0 and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as error:
            segment.close()
            segment.unlink()
            raise TransportError(
                f"cannot reserve {size} bytes of shared memory for a batch ({error}); "
                "/dev/shm is too small: enlarge it or lower the batch size or prefetch_factor"
            ) from None
    return segment


def unlink_segment(name: str) -> bool:
    """Remove segment ``name`` if it exists.

    Args:
        name: the segment name.

    The segment is unlinked by name, never mapped: a worker may have created it a moment ago
    and not sized it yet (an empty segment cannot be mapped), which happens when the pool is
    abandoned while a worker is growing a slot.

    Returns:
        Whether a segment was removed.
    """
    path = name if name.startswith("/") else "/" + name
    # Registered and unregistered as a pair, like attaching and unlinking a SharedMemory, so the
    # shared resource tracker's books balance whether or not the creating worker registered it.
    resource_tracker.register(path, "shared_memory")
    try:
        _posixshmem.shm_unlink(path)
    except FileNotFoundError:
        return False
    finally:
        resource_tracker.unregister(path, "shared_memory")
    return True


def map_segment(name: str, size: int, *, populate: bool = False) -> mmap.mmap:
    """Map the existing segment ``name`` with a mapping of this process's own.

    Unlike a ``SharedMemory`` object's mapping, this one is never closed explicitly: it is
    unmapped when the last reference to it (or to an array viewing it) is gone.

    Args:
        name: the segment name.
        size: the bytes to map.
        populate: map every page now (``MAP_POPULATE`` where the platform has it) rather than
            fault them in one by one on first touch: for a worker, which fills the whole slot.

    Returns:
        The writable mapping.
    """
    return _own_mapping(shared_memory.SharedMemory(name=name), size, populate=populate)


def _own_mapping(
    segment: shared_memory.SharedMemory, size: int, *, populate: bool = False
) -> mmap.mmap:
    """A mapping of ``segment`` of our own; ``segment`` itself is closed."""
    flags = mmap.MAP_SHARED | (_POPULATE if populate else 0)
    try:
        # SharedMemory keeps its descriptor in _fd, which typeshed leaves out; mmap dups it
        return mmap.mmap(segment._fd, size, flags=flags)  # type: ignore[attr-defined]
    finally:
        segment.close()


def _name(prefix: str, slot: int, generation: int) -> str:
    return f"{prefix}_{slot}_{generation}"


class SlotRing:
    """The consumer's slots: which are free, their current segments, growth, leases and cleanup.

    Args:
        count: the number of slots to start with (the most batches in flight); the ring grows
            by one slot whenever all are taken (in flight or lent to the consumer).
    """

    def __init__(self, count: int) -> None:
        reap_unclaimed()  # segments of consumers killed before they could unlink them
        self.prefix = f"ss{os.getpid():x}{secrets.token_hex(3)}"
        self._owner = claim_prefix(self.prefix)
        self._generation = [0] * count
        self._size = [0] * count
        self._map: list[mmap.mmap | None] = [None] * count
        self._free = list(range(count - 1, -1, -1))

    def acquire(self) -> int:
        """Take a free slot (adding one when none is free) and return its number."""
        if self._free:
            return self._free.pop()
        self._generation.append(0)
        self._size.append(0)
        self._map.append(None)
        return len(self._map) - 1

    def release(self, slot: int) -> None:
        """Give slot ``slot`` back."""
        self._free.append(slot)

    def describe(self, slot: int) -> tuple[int, str | None, int, str]:
        """Return what a worker needs to write into ``slot``.

        Returns:
            ``(slot, current name or None, current size, name for a grown segment)``.
        """
        generation = self._generation[slot]
        current = _name(self.prefix, slot, generation) if self._map[slot] else None
        return slot, current, self._size[slot], _name(self.prefix, slot, generation + 1)

    def adopt(self, slot: int, name: str, size: int) -> None:
        """Make ``name`` (created by a worker as the slot's next generation) the slot's segment.

        Args:
            slot: the slot number.
            name: the new segment's name.
            size: its size in bytes.
        """
        if self._map[slot] is not None:
            unlink_segment(_name(self.prefix, slot, self._generation[slot]))
        self._generation[slot] += 1
        self._map[slot] = map_segment(name, size)
        self._size[slot] = size

    def buffer(self, slot: int) -> mmap.mmap | None:
        """Return the mapping of ``slot`` (``None`` when it has no segment yet)."""
        return self._map[slot]

    def lend(self, slot: int) -> np.ndarray | None:
        """Return the bytes of ``slot`` as an array the batch's leaves can view.

        The slot returns to the free list when this array and every view of it are garbage
        collected; until then no worker writes into it.

        Args:
            slot: a slot a worker has just filled.

        Returns:
            A uint8 array over the whole segment, or ``None`` when the slot has no segment (the
            slot is then free again at once).
        """
        mapping = self._map[slot]
        if mapping is None:
            self.release(slot)
            return None
        whole = np.frombuffer(mapping, np.uint8)
        weakref.finalize(whole, self.release, slot)
        return whole

    def shutdown(self) -> None:
        """:meth:`close`, then give up the prefix's claim (the ring is not used again)."""
        self.close()
        owner, self._owner = self._owner, -1
        release_prefix(self.prefix, owner)

    def close(self) -> None:
        """Unlink every segment of every slot, including grown ones nobody reported.

        The ring stays usable (the next batch creates fresh segments); batches still lent keep
        their (now nameless) memory until they are collected, and then free their slots.
        """
        for slot, mapping in enumerate(self._map):
            if mapping is not None:
                unlink_segment(_name(self.prefix, slot, self._generation[slot]))
                self._map[slot] = None
            unlink_segment(_name(self.prefix, slot, self._generation[slot] + 1))


class WorkerSlots:
    """A worker's view of the slots: segments it has mapped (its own mappings), by slot number.

    Like the consumer's, these mappings are never closed explicitly: arrays a collation placed
    in a slot (:meth:`~shardstream.engine.scratch.BatchBuffers.arena`) may outlive the slot's growth.
    """

    def __init__(self) -> None:
        self._mapped: dict[int, tuple[str, mmap.mmap]] = {}

    def current(self, slot: int, name: str | None, size: int) -> np.ndarray | None:
        """Return the slot's current segment as a writable uint8 array (``None`` if it has none).

        Args:
            slot: the slot number.
            name: its current segment (``None`` when it has none).
            size: the current segment's size.
        """
        if name is None or size == 0:
            return None
        return np.frombuffer(self._map(slot, name, size), np.uint8)

    def buffer_for(self, slot: int, name: str | None, size: int, grow: str, needed: int):
        """Return a buffer of at least ``needed`` bytes for ``slot``, growing it when too small.

        Args:
            slot: the slot number.
            name: its current segment (``None`` when it has none).
            size: the current segment's size.
            grow: the name to create a larger segment under.
            needed: the bytes the batch needs.

        Returns:
            ``(buffer, new name or None, new size)``; the name is set when the slot grew.

        Raises:
            TransportError: a larger segment cannot be reserved.
        """
        if needed == 0:
            return None, None, size
        if name is not None and size >= needed:
            return self._map(slot, name, size), None, size
        self._mapped.pop(slot, None)
        # a slot's first segment gets 1/8 headroom: batches of ragged payloads (the device
        # modes' pixels) vary by a few %, and one a little larger than the first would be
        # copied out of place and grow the slot again
        new_size = grown_size(size, needed if size else needed + needed // 8)
        mapping = _own_mapping(create_segment(grow, new_size), new_size, populate=True)
        self._mapped[slot] = (grow, mapping)
        return mapping, grow, new_size

    def _map(self, slot: int, name: str, size: int) -> mmap.mmap:
        mapped = self._mapped.get(slot)
        if mapped is None or mapped[0] != name:
            mapped = (name, map_segment(name, size, populate=True))
            self._mapped[slot] = mapped
        return mapped[1]

    def close(self) -> None:
        """Forget every mapping (unmapped once unreferenced; the consumer unlinks the segments)."""
        self._mapped.clear()
