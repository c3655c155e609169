"""A :class:`~shardstream.write.RawWriter` whose samples are built in place in its write buffer.

A whole-shard task (:func:`~shardstream.write.shard_plan.write_shard`) writes original image
bytes: each sample is a short msgpack head, the file's bytes and a short tail. With a plain
writer the bytes are read into a new object, joined with head and tail (a copy), handed to the
writer and written, each step allocating ~100 KB. :class:`InPlaceWriter` instead lends the
caller room in its write buffer (:meth:`InPlaceWriter.room`): the source file is read straight
into it, checked there, framed by its head and tail, and appended
(:meth:`InPlaceWriter.append_room`). The buffer is written to the data file in one call when it
is full, and md5 and the per-sample xxh3 hash the same memory; nothing else touches the bytes.

:data:`BUFFERS` buffers take turns: while the full ones are md5-hashed on the writer's hashing
thread, the next samples are read into the next one (as :class:`RawWriter` lets 16 MiB wait for
md5). The files are byte for byte those of :class:`RawWriter`.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import SampleTooLargeError, WriterClosedError
from ..format.checksums import sample_digest
from ..format.codec import MSGPACK_SIZE_LIMIT
from .writer import RawWriter, raw_sample_bytes, reject_key

__all__ = ["BUFFERS", "InPlaceWriter"]

#: Write buffers of a writer: one being filled, the others written and waiting for md5.
BUFFERS = 4


class InPlaceWriter(RawWriter):
    """:class:`RawWriter` whose samples may be built in place (see the module docstring).

    Arguments as :class:`~shardstream.write.Writer`; ``buffering`` (default 4 MiB) is the size
    of each of the :data:`BUFFERS` write buffers (a larger sample gets a buffer of its size).
    """

    def __init__(
        self,
        outfile: str | os.PathLike,
        buffering: int = 0,
        overwrite: bool = False,
        *,
        wait: float = 0.0,
        **progress_kwargs: Any,
    ) -> None:
        super().__init__(outfile, buffering, overwrite, wait=wait, **progress_kwargs)
        self._buffers = [bytearray(self._chunk_limit) for _ in range(BUFFERS)]
        self._current = 0  # the buffer being filled
        self._fill = 0  # its bytes in use

    @property
    def bytes_written(self) -> int:
        """Bytes of samples written so far (the data file's size once closed)."""
        return self._position

    def room(self, size: int) -> tuple[bytearray, int]:
        """Room for the next sample: ``(buffer, start)``, where ``buffer[start:start + size]``
        may be written. Valid until the next call of any other method of this writer.

        Raises:
            WriterClosedError: the writer is closed.
            OSError: writing the full buffer to the data file failed.
        """
        if self._closed:
            raise WriterClosedError(f"{self.path}: writer is closed")
        buffer = self._buffers[self._current]
        if self._fill + size > len(buffer):
            self._flush()
            buffer = self._buffers[self._current]
            if size > len(buffer):
                buffer = self._buffers[self._current] = bytearray(size)
        return buffer, self._fill

    def append_room(self, key: str, size: int) -> None:
        """Append the first ``size`` bytes of the last :meth:`room` as the sample ``key``.

        Raises:
            InvalidKeyError, DuplicateKeyError, WriterClosedError: as :meth:`RawWriter.write`.
            SampleTooLargeError: ``size`` is past msgpack's limit, or more than the room lent.
        """
        if type(key) is not str or key in self._key_set or self._closed:
            reject_key(self.path, key, self._closed)
        buffer = self._buffers[self._current]
        start = self._fill
        end = start + size
        if end > len(buffer) or size > MSGPACK_SIZE_LIMIT:
            raise SampleTooLargeError(
                f"{self.path}: sample {key!r} of {size} bytes is larger than the room lent for "
                f"it ({len(buffer) - start}) or msgpack's limit ({MSGPACK_SIZE_LIMIT})"
            )
        self._keys.append(key)
        self._key_set.add(key)
        self._digests.append(sample_digest(memoryview(buffer)[start:end]))
        self._position += size
        self._offsets.append(self._position)
        self._fill = end

    def _append(self, key: str, packed: bytes, size: int) -> None:
        """:meth:`RawWriter.write`'s append: the bytes are copied into the buffer."""
        if size > MSGPACK_SIZE_LIMIT:
            raw_sample_bytes(packed, key, self.path)  # raises with the standard message
        buffer, start = self.room(size)
        buffer[start : start + size] = packed
        self.append_room(key, size)

    def _flush(self) -> None:
        if self._fill:
            self._sink.submit([memoryview(self._buffers[self._current])[: self._fill]])
            self._current = (self._current + 1) % BUFFERS
            self._fill = 0
            # the buffer filled next went to md5 BUFFERS - 1 flushes ago: its hash must be done
            self._sink.wait(pending=BUFFERS - 1)
        done = len(self._keys)
        if done > self._reported:
            self._progress.update(done - self._reported)
            self._reported = done
