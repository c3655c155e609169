"""Writers: ``Writer`` (abstract), ``FileWriter`` for sample dicts, ``RawWriter`` for packed bytes.

A writer streams samples into a hidden temp file next to the output, hashing the bytes with md5 on a
background thread while the caller packs the next ones. ``close()`` writes the index files
(``.offsets``, ``.keys``, ``.key_hashes``, ``.filter``), the per-sample checksums ``.xxh3``
(each sample's xxh3-64, computed as it is appended: no second pass over the data; see
:mod:`shardstream.format.checksums`) and ``.md5`` (as datadings writes it) under temp names too, fsyncs them, and commits
all seven files as one (:class:`~shardstream.format.atomic.StagedFiles`: a
commit record written last is the commit point). An exception inside ``with Writer(...)``, an
explicit :meth:`Writer.abort`, a crash or a kill before the commit point leaves any previous
dataset under the output name untouched; a kill after it leaves the new dataset, completed by the
next reader or writer. A writer holds an exclusive lock on its output (``.X.lock``) for its
lifetime, so a second writer of the same path fails (or waits); on start it finishes an
interrupted commit and removes the temporaries of killed writers of that path.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from abc import abstractmethod
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import (
    DuplicateKeyError,
    InvalidKeyError,
    MissingKeyError,
    NotADatasetFileError,
    ReservedKeyError,
    SampleEncodeError,
    SampleTooLargeError,
    WriterClosedError,
)
from ..format.atomic import DatasetLock, StagedFiles, fault_point
from ..format.checksums import encode_checksums, sample_digest
from ..format.codec import MSGPACK_SIZE_LIMIT, RESERVED_FIELDS, make_packer
from ..format.index import encode_index_files
from ..format.integrity import format_md5_file, md5_hex
from ..format.paths import SIDECAR_SUFFIXES, DatasetPaths
from .staging import StagedOutput, lock_output, progress_bar

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "lock_output",
    "FileWriter",
    "RawWriter",
    "Writer",
    "pack_sample",
    "progress_bar",
    "raw_sample_bytes",
    "reject_key",
    "sample_key",
]

#: Packed samples are gathered until this many bytes, then written and handed to md5 together.
DEFAULT_CHUNK_BYTES = 4 << 20
#: Bytes handed to the md5 thread but not yet hashed before ``write`` blocks.
_MAX_PENDING_BYTES = 16 << 20
#: Chunks smaller than this are hashed inline (a thread hop costs more than md5 of them).
_INLINE_BYTES = 1 << 16
#: Chunks of more parts than this are joined into one buffer (one write, one md5 update).
_JOIN_PARTS = 64


class _HashingSink:
    """Writes buffers to the data file at once and md5-hashes them on a background thread.

    hashlib releases the GIL, so md5 (the slowest step of a compatible writer) runs on a second
    core while the caller packs and writes the next samples. Buffers are hashed in the order
    they were written; one background task per chunk keeps thread hand-offs rare.
    """

    def __init__(self, file: Any, hashing: bool = True) -> None:
        self._file = file
        self.hashing = hashing  # False: the caller hashes the file once it is written
        self._md5 = hashlib.md5()
        self._hasher: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[Future, int]] = deque()
        self._pending_bytes = 0

    def submit(self, parts: Sequence[bytes | memoryview]) -> None:
        """Write ``parts`` (in order) to the file now and queue them for md5."""
        if len(parts) > _JOIN_PARTS:
            parts = [b"".join(parts)]  # many small samples: one copy beats many calls
        size = 0
        for part in parts:
            _write_all(self._file, part)
            size += len(part)
        if not self.hashing:
            return
        if size < _INLINE_BYTES and not self._pending:
            for part in parts:
                self._md5.update(part)
            return
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(1, thread_name_prefix="shardstream-md5")
        while self._pending and self._pending_bytes + size > _MAX_PENDING_BYTES:
            self._wait_oldest()
        self._pending.append((self._hasher.submit(_update_all, self._md5, parts), size))
        self._pending_bytes += size

    def _wait_oldest(self) -> None:
        hashed, size = self._pending.popleft()
        self._pending_bytes -= size
        hashed.result()

    def wait(self, pending: int = 0) -> None:
        """Block until at most ``pending`` submitted buffers are not hashed yet (re-raising
        errors): 0, every one is hashed."""
        while len(self._pending) > pending:
            self._wait_oldest()

    def hexdigest(self) -> str:
        self.wait()
        return self._md5.hexdigest()

    def shutdown(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown(wait=True, cancel_futures=True)
            self._hasher = None
        self._pending.clear()
        self._pending_bytes = 0


def _update_all(md5: Any, parts: Sequence[bytes | memoryview]) -> None:
    for part in parts:
        md5.update(part)


def _write_all(file: Any, chunk: bytes | bytearray | memoryview) -> None:
    view = memoryview(chunk)
    while view:
        view = view[file.write(view) :]


def _discard(staged: StagedFiles, file: Any, sink: _HashingSink, lock: DatasetLock) -> None:
    """Finalizer for writers dropped without close(): remove their temp files, unlock."""
    try:
        sink.shutdown()
    finally:
        try:
            file.close()
            staged.abort()
        finally:
            lock.release()


def sample_key(sample: Any, path: Path) -> Any:
    """The ``"key"`` of a sample dict about to be written to ``path``.

    Raises:
        SampleEncodeError: ``sample`` is not a mapping.
        MissingKeyError: it has no ``"key"`` field.
    """
    if type(sample) is not dict and not isinstance(sample, Mapping):
        raise SampleEncodeError(f"{path}: a sample must be a dict, got {type(sample).__name__}")
    try:
        return sample["key"]
    except KeyError:
        raise MissingKeyError(f"{path}: sample has no 'key' field") from None


def reject_key(path: Path, key: Any, closed: bool) -> None:
    """Raise the error that explains why ``key`` cannot be written to ``path`` now.

    Call it only once a key failed the writer's fast check (not a str, seen before, or the
    writer is closed).

    Raises:
        WriterClosedError, InvalidKeyError, DuplicateKeyError: in that order of precedence.
    """
    if closed:
        raise WriterClosedError(f"{path}: writer is closed")
    if type(key) is not str:
        raise InvalidKeyError(
            f"{path}: sample key must be a str, got {type(key).__name__} {key!r:.80}"
        )
    raise DuplicateKeyError(f"{path}: duplicate key {key!r} not allowed")


def pack_sample(sample: Mapping[str, Any], key: str, path: Path, pack: Any) -> bytes:
    """Check a sample's field names and pack it with ``pack`` (a msgpack ``Packer.pack``).

    Raises:
        ReservedKeyError: a field is named ``nd`` or ``complex``.
        SampleTooLargeError: a value is past msgpack's size limits.
        SampleEncodeError: a value msgpack cannot encode.
    """
    if not RESERVED_FIELDS.isdisjoint(sample):
        reserved = sorted(map(str, RESERVED_FIELDS.intersection(sample)))
        raise ReservedKeyError(f"{path}: sample {key!r} uses reserved field name(s) {reserved}")
    try:
        return pack(sample)
    except ValueError as e:
        if "too large" in str(e) or "too big" in str(e):
            raise SampleTooLargeError(
                f"{path}: sample {key!r} holds a value past msgpack's size limits ({e})"
            ) from e
        raise SampleEncodeError(f"{path}: sample {key!r} cannot be encoded: {e}") from e
    except (TypeError, OverflowError) as e:
        raise SampleEncodeError(f"{path}: sample {key!r} cannot be encoded: {e}") from e


def raw_sample_bytes(data: Any, key: str, path: Path) -> bytes:
    """Already packed sample bytes as an immutable ``bytes`` (size checked before copying).

    Raises:
        SampleEncodeError: ``data`` is not bytes-like.
        SampleTooLargeError: it is past msgpack's size limit.
    """
    if type(data) is bytes:
        size = len(data)
    else:
        try:
            view = memoryview(data)
        except TypeError:
            raise SampleEncodeError(
                f"{path}: raw sample {key!r} must be bytes-like, got {type(data).__name__}"
            ) from None
        size = view.nbytes
    if size > MSGPACK_SIZE_LIMIT:
        raise SampleTooLargeError(
            f"{path}: sample {key!r} packs to {size} bytes, over msgpack's limit of "
            f"{MSGPACK_SIZE_LIMIT}"
        )
    # immutable: the caller may reuse a bytearray or drop a view after write
    return data if type(data) is bytes else view.tobytes()


class Writer(StagedOutput):
    """Base class of dataset writers; use as a context manager::

        with FileWriter("out.msgpack", overwrite=True) as writer:
            for sample in samples:
                writer.write(sample)

    Args:
        outfile: path of the data file (conventionally ``*.msgpack``); parents are created.
        buffering: bytes gathered per write to disk; 0 (default) means 4 MiB. Nothing is visible
            under the output name before ``close()`` either way, so this only tunes speed.
        overwrite: replace an existing dataset. If False and ``outfile`` exists: on an interactive
            terminal ask yes/no/abort (no -> ``FileExistsError``, abort -> ``KeyboardInterrupt``);
            without a terminal raise :class:`~shardstream.errors.DatasetExistsError` (a
            ``FileExistsError``) without asking. The old dataset stays intact until ``close()``.
        **progress_kwargs: passed to ``tqdm`` (``desc`` defaults to the file name; ``total``;
            ``disable=True`` hides the bar and the final "N samples written" line).
        wait: seconds to wait when another writer holds the output's lock (0: fail at once,
            ``math.inf``: wait for it). Two writers never write one path at the same time.

    Attributes:
        written: number of samples written so far.
        path: the data file path.

    Raises:
        NotADatasetFileError: ``outfile`` is a directory.
        DatasetLockedError: another writer (in any process) is writing ``outfile``; a
            :class:`~shardstream.errors.DatasetExistsError`.
    """

    def __init__(
        self,
        outfile: str | os.PathLike,
        buffering: int = 0,
        overwrite: bool = False,
        *,
        wait: float = 0.0,
        **progress_kwargs,
    ):
        self.path = Path(outfile)
        self._paths = DatasetPaths(self.path)
        if self.path.is_dir():
            raise NotADatasetFileError(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        finals = [self.path.name] + [self._paths.sidecar(s).name for s in SIDECAR_SUFFIXES]
        self._lock = lock_output(self.path, overwrite, wait, finals)
        self._chunk_limit = buffering if buffering > 0 else DEFAULT_CHUNK_BYTES
        self._parts: list[bytes] = []  # packed samples not yet written
        self._parts_bytes = 0
        self._reported = 0  # samples already counted on the progress bar
        self._keys: list[str] = []
        self._key_set: set[str] = set()
        self._offsets = array("Q", [0])
        self._digests = array("Q")  # xxh3-64 of each sample, for the .xxh3 file
        self._position = 0
        self._pack = make_packer().pack
        self._staged = StagedFiles(anchor=self.path, locked=True)
        try:
            self._file = self._staged.open(self.path)
        except BaseException:
            self._lock.release()
            raise
        self._sink = _HashingSink(self._file)
        self._finalizer = weakref.finalize(
            self, _discard, self._staged, self._file, self._sink, self._lock
        )
        self._closed = False
        self._progress, self._quiet = progress_bar(self.path, progress_kwargs)

    # --- state ------------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Number of samples written so far."""
        return len(self._keys)

    def close(self) -> None:
        """Finish the dataset: flush data, write index, checksum and md5 files, rename all in place.

        Calling it again is a no-op. If anything fails, the temp files are removed, the previous
        dataset (if any) is left intact, and the error propagates.
        """
        if self._closed:
            return
        try:
            data_md5 = self._close_data()
            index_files = encode_index_files(self._paths, self._keys, self._offsets)
            for path, content in index_files:
                self._staged.write_bytes(path, content)
            entries = [(self.path.name, data_md5)]
            entries += [(path.name, md5_hex(content)) for path, content in index_files]
            checksums = encode_checksums(self._digests, self._position)  # not in the md5 file
            self._staged.write_bytes(self._paths.checksums, checksums)
            self._staged.write_bytes(self._paths.md5, format_md5_file(entries).encode("utf-8"))
            self._staged.remove_on_commit(self._paths.legacy_index)  # of the replaced dataset
            self._staged.commit(last=self._paths.md5)
        except BaseException:
            self.abort()
            raise
        self._finish()
        if not self._quiet:
            print(f"{self.written} samples written")

    def _close_data(self) -> str:
        """Write what is buffered, fsync and close the data file; return its md5."""
        self._flush()
        data_md5 = self._sink.hexdigest()
        fault_point("fsync", self._staged.temp_paths[0])
        os.fsync(self._file.fileno())
        self._file.close()
        return data_md5

    def abort(self) -> None:
        """Discard everything written; the output path keeps its previous content (if any)."""
        if self._closed:
            return
        self._closed = True
        self._progress.close()
        self._parts = []
        self._finalizer()  # stops the threads, closes the file, deletes the temp files, unlocks

    def _finish(self) -> None:
        self._closed = True
        self._finalizer.detach()
        self._lock.release()
        self._sink.shutdown()
        self._progress.close()
        self._parts = []

    # --- writing ----------------------------------------------------------------------------

    @abstractmethod
    def write(self, *args: Any) -> None:
        """Append one sample to the dataset."""

    def _append(self, key: str, packed: bytes, size: int) -> None:
        """Append ``size`` packed bytes under an already checked key.

        Raises:
            SampleTooLargeError: ``size`` is past msgpack's limit.
        """
        if size > MSGPACK_SIZE_LIMIT:
            raw_sample_bytes(packed, key, self.path)  # raises with the standard message
        self._keys.append(key)
        self._key_set.add(key)
        self._digests.append(sample_digest(packed))
        self._position += size
        self._offsets.append(self._position)
        self._parts.append(packed)
        self._parts_bytes += size
        if self._parts_bytes >= self._chunk_limit:
            self._flush()

    def _flush(self) -> None:
        parts, self._parts = self._parts, []
        self._parts_bytes = 0
        if parts:
            self._sink.submit(parts)
        done = len(self._keys)
        if done > self._reported:
            self._progress.update(done - self._reported)
            self._reported = done


class FileWriter(Writer):
    """Writer for sample dicts; each needs a unique str ``"key"``.

    Fields may hold anything msgpack stores plus numpy arrays/scalars and complex numbers (encoded
    as msgpack-numpy does). Field names ``nd`` and ``complex`` are reserved.
    """

    def write(self, sample: Mapping[str, Any]) -> None:
        """Pack and append ``sample``.

        Raises:
            MissingKeyError: no ``"key"`` field (a ``KeyError``).
            InvalidKeyError: the key is not a str (a ``TypeError``).
            DuplicateKeyError: the key was written before (a ``ValueError``).
            ReservedKeyError: a field is named ``nd`` or ``complex`` (a ``ValueError``).
            SampleTooLargeError: a value or the whole sample is past msgpack's size limits.
            SampleEncodeError: a value msgpack cannot encode (a ``TypeError``).
            WriterClosedError: the writer is closed.
        """
        key = sample_key(sample, self.path)
        if type(key) is not str or key in self._key_set or self._closed:
            reject_key(self.path, key, self._closed)
        packed = pack_sample(sample, key, self.path, self._pack)
        self._append(key, packed, len(packed))


class RawWriter(Writer):
    """Writer for samples that are already msgpack-encoded (e.g. copied from another dataset)."""

    def write(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` verbatim under ``key``.

        Raises:
            InvalidKeyError, DuplicateKeyError, SampleTooLargeError, WriterClosedError: as
                :meth:`FileWriter.write`.
            SampleEncodeError: ``data`` is not a bytes-like object.
        """
        if type(key) is not str or key in self._key_set or self._closed:
            reject_key(self.path, key, self._closed)
        data = raw_sample_bytes(data, key, self.path)
        self._append(key, data, len(data))
