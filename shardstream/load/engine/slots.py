"""Shared-memory slots: the buffers batches travel through from workers to the consumer.

The consumer owns a ring of slots, one per batch in flight. A slot is a POSIX shared-memory
segment whose names are predictable (``<prefix>_<slot>_<generation>``): a worker that finds
the slot too small for its batch creates the next generation itself, writes the batch there and
reports the new name; the consumer then unlinks the old segment. Because the consumer knows the
only name a worker may create for a slot, it can unlink everything on close, even segments made
by a worker that was killed before it could report them.
"""

from __future__ import annotations

import os
import secrets
from multiprocessing import shared_memory

from ...errors import TransportError

__all__ = ["SlotRing", "WorkerSlots", "grown_size", "unlink_segment"]

_PAGE = 4096


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

    Returns:
        Whether a segment was removed.
    """
    try:
        segment = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return False
    release(segment)
    segment.unlink()
    return True


def release(segment: shared_memory.SharedMemory) -> None:
    """Unmap ``segment`` in this process (no-op while arrays still view it; GC unmaps it later)."""
    try:
        segment.close()
    except BufferError:
        pass


def _name(prefix: str, slot: int, generation: int) -> str:
    return f"{prefix}_{slot}_{generation}"


class SlotRing:
    """The consumer's slots: which are free, their current segments, growth and cleanup.

    Args:
        count: the number of slots (the most batches in flight).
    """

    def __init__(self, count: int) -> None:
        self.prefix = f"ss{os.getpid():x}{secrets.token_hex(3)}"
        self._generation = [0] * count
        self._size = [0] * count
        self._segment: list[shared_memory.SharedMemory | None] = [None] * count
        self._free = list(range(count - 1, -1, -1))

    def acquire(self) -> int:
        """Take a free slot and return its number."""
        return self._free.pop()

    def release(self, slot: int) -> None:
        """Give slot ``slot`` back."""
        self._free.append(slot)

    def describe(self, slot: int) -> tuple[int, str | None, int, str]:
        """Return what a worker needs to write into ``slot``.

        Returns:
            ``(slot, current name or None, current size, name for a grown segment)``.
        """
        generation = self._generation[slot]
        current = _name(self.prefix, slot, generation) if self._segment[slot] else None
        return slot, current, self._size[slot], _name(self.prefix, slot, generation + 1)

    def adopt(self, slot: int, name: str, size: int) -> None:
        """Make ``name`` (created by a worker as the slot's next generation) the slot's segment.

        Args:
            slot: the slot number.
            name: the new segment's name.
            size: its size in bytes.
        """
        old = self._segment[slot]
        if old is not None:
            release(old)
            old.unlink()
        self._generation[slot] += 1
        self._segment[slot] = shared_memory.SharedMemory(name=name)
        self._size[slot] = size

    def buffer(self, slot: int) -> memoryview | None:
        """Return the buffer of ``slot`` (``None`` when it has no segment yet)."""
        segment = self._segment[slot]
        return None if segment is None else segment.buf

    def close(self) -> None:
        """Unlink every segment of every slot, including grown ones nobody reported."""
        for slot, segment in enumerate(self._segment):
            if segment is not None:
                release(segment)
                try:
                    segment.unlink()
                except FileNotFoundError:
                    pass
                self._segment[slot] = None
            unlink_segment(_name(self.prefix, slot, self._generation[slot] + 1))


class WorkerSlots:
    """A worker's view of the slots: segments it has mapped, by slot number."""

    def __init__(self) -> None:
        self._mapped: dict[int, tuple[str, shared_memory.SharedMemory]] = {}

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
            mapped = self._mapped.get(slot)
            if mapped is None or mapped[0] != name:
                self._drop(slot)
                mapped = (name, shared_memory.SharedMemory(name=name))
                self._mapped[slot] = mapped
            return mapped[1].buf, None, size
        self._drop(slot)
        new_size = grown_size(size, needed)
        segment = create_segment(grow, new_size)
        self._mapped[slot] = (grow, segment)
        return segment.buf, grow, new_size

    def _drop(self, slot: int) -> None:
        mapped = self._mapped.pop(slot, None)
        if mapped is not None:
            release(mapped[1])

    def close(self) -> None:
        """Unmap every segment (the consumer unlinks them)."""
        for slot in list(self._mapped):
            self._drop(slot)
