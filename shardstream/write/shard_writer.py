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

With ``hash_data=False`` the writer does not hash the data file: :meth:`InPlaceWriter.close_data`
writes and closes it and returns its (staged) path, the caller hashes it, typically together
with other shards' data files (:func:`~shardstream.write.md5lanes.file_hexdigests`), and
``close(data_md5=...)`` writes the sidecars and commits as :meth:`RawWriter.close` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SampleTooLargeError, WriterClosedError
from ..format.checksums import sample_digest
from ..format.codec import MSGPACK_SIZE_LIMIT
from .writer import RawWriter, raw_sample_bytes, reject_key

__all__ = ["BUFFERS", "InPlaceWriter"]

#: Write buffers of a writer: one being filled, the others written and waiting for md5.
BUFFERS = 4


class InPlaceWriter(RawWriter):
    """:class:`RawWriter` whose samples may be built in place (see the module docstring).

    Arguments as :class:`~shardstream.write.Writer`; ``buffering`` (default 4 MiB) is the size
    of each of the :data:`BUFFERS` write buffers (a larger sample gets a buffer of its size);
    ``hash_data=False``: the caller hashes the data file (see the module docstring).
    """

    def __init__(
        self,
        outfile: str | os.PathLike,
        buffering: int = 0,
        overwrite: bool = False,
        *,
        wait: float = 0.0,
        hash_data: bool = True,
        **progress_kwargs: Any,
    ) -> None:
        super().__init__(outfile, buffering, overwrite, wait=wait, **progress_kwargs)
        self._sink.hashing = hash_data
        self._buffers = [bytearray(self._chunk_limit) for _ in range(BUFFERS)]
        self._current = 0  # the buffer being filled
        self._fill = 0  # its bytes in use
        self._data_closed = False
        self._data_md5: str | None = None

    def close_data(self) -> Path:
        """Write what is buffered and close the data file (no more samples); return the staged
        file's path, to hash before :meth:`close` (which then needs ``data_md5``).

        Raises:
            WriterClosedError: the writer is closed.
            OSError: writing failed (the writer is aborted).
        """
        if self._closed:
            raise WriterClosedError(f"{self.path}: writer is closed")
        if not self._data_closed:
            try:
                super()._close_data()
            except BaseException:
                self.abort()
                raise
            self._data_closed = True
        return self._staged.temp_paths[0]

    def close(self, data_md5: str | None = None) -> None:
        """Finish the dataset as :meth:`RawWriter.close` does; ``data_md5``: the data file's
        md5, hashed by the caller (needed with ``hash_data=False``, ignored otherwise).

        Raises:
            ConfigError: ``hash_data=False`` and no ``data_md5`` (the writer is aborted).
        """
        self._data_md5 = data_md5
        super().close()

    def _close_data(self) -> str:
        if not self._data_closed:
            hashed = super()._close_data()
            self._data_closed = True
            if self._sink.hashing:
                return hashed
        elif self._sink.hashing:
            return self._sink.hexdigest()
        if self._data_md5 is None:
            raise ConfigError(f"{self.path}: hash_data=False needs close(data_md5=...)")
        return self._data_md5

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
        if self._closed or self._data_closed:
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
        if type(key) is not str or key in self._key_set or self._closed or self._data_closed:
            reject_key(self.path, key, self._closed or self._data_closed)
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
