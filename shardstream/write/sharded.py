"""ShardedWriter: one dataset written as numbered shards plus a manifest, atomically as a whole.

``ShardedWriter("out/train.msgpack", shard_size=512 << 20)`` writes ``out/train-00000.msgpack``,
``out/train-00001.msgpack``, ... (each a complete dataset with its index and ``.md5`` files) and
``out/train.manifest`` listing them (see :mod:`shardstream.format.manifest`), which
:class:`~shardstream.read.ShardedReader` opens as one dataset, and ``out/train.set-offsets``,
every shard's offsets in one file for remote readers (:mod:`shardstream.format.set_offsets`).

A shard takes samples until the next one would push it past ``shard_size`` bytes; a sample larger
than ``shard_size`` on its own gets a shard of its own. Keys are unique across all shards.

Shards are written into a hidden staging folder next to the output
(``.train.manifest.<random>.tmp``). Nothing appears under a final name before
:meth:`ShardedWriter.close`, which commits every shard file and the manifest as one group (see
:mod:`shardstream.format.atomic`): a commit record is the commit point, the manifest is renamed
last, and shards a previous manifest of the same name listed but the new one does not are deleted
after it. An exception inside ``with``, :meth:`abort`, or a kill before the commit point leaves the
previous dataset (manifest and shards) untouched; a kill after it leaves the new one, completed by
the next reader or writer of the manifest. The writer holds an exclusive lock on the manifest
path (``.train.manifest.lock``) for its lifetime.
"""

from __future__ import annotations

import os
import shutil
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import (
    ConfigError,
    NotADatasetFileError,
)
from ..format.atomic import DatasetLock, StagedFiles, make_temp_dir
from ..format.codec import make_packer
from ..format.integrity import load_md5file
from ..format.manifest import MANIFEST_SUFFIX, ShardEntry, load_manifest, manifest_bytes
from ..format.paths import SIDECAR_SUFFIXES, DatasetPaths
from ..format.set_offsets import SetOffsets, set_offsets_of_shards, set_offsets_path
from .staging import StagedOutput, lock_output, progress_bar
from .writer import RawWriter, pack_sample, raw_sample_bytes, reject_key, sample_key

__all__ = ["ShardedWriter", "shard_name", "sharded_output_paths"]

_DATA_SUFFIX = ".msgpack"


def sharded_output_paths(output: str | os.PathLike) -> tuple[Path, str]:
    """The manifest path and the shard name stem for an output path.

    ``out/train.msgpack``, ``out/train.manifest`` and ``out/train`` all give
    ``(Path("out/train.manifest"), "train")``.

    Args:
        output: the output as given by the user.

    Returns:
        ``(manifest path, stem)``.

    Raises:
        ConfigError: the name is empty once its suffix is removed.
    """
    output = Path(output)
    stem = output.name
    for suffix in (MANIFEST_SUFFIX, _DATA_SUFFIX):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if not stem:
        raise ConfigError(f"output {os.fspath(output)!r}: needs a name before its suffix")
    return output.with_name(stem + MANIFEST_SUFFIX), stem


def shard_name(stem: str, index: int) -> str:
    """The file name of shard ``index``: ``<stem>-00000.msgpack`` (5 digits, more if needed)."""
    return f"{stem}-{index:05d}{_DATA_SUFFIX}"


class ShardedWriter(StagedOutput):
    """Write a dataset as shards of at most ``shard_size`` bytes each, plus a manifest.

    Use as a context manager; :meth:`write` takes sample dicts like
    :class:`~shardstream.write.FileWriter`, :meth:`write_raw` packed bytes like
    :class:`~shardstream.write.RawWriter`::

        with ShardedWriter("out/train.msgpack", shard_size=256 << 20, overwrite=True) as writer:
            for sample in samples:
                writer.write(sample)

    Args:
        output: ``out/name.msgpack``, ``out/name.manifest`` or ``out/name``; shards are named
            ``out/name-00000.msgpack``, ... and the manifest ``out/name.manifest``.
        shard_size: the most bytes of packed samples per shard (at least 1).
        overwrite: replace an existing dataset of that name. Otherwise, if the manifest or the
            first shard exists: ask on an interactive terminal, else raise
            :class:`~shardstream.errors.DatasetExistsError` (a ``FileExistsError``).
        buffering: bytes each shard's writer gathers per write (see
            :class:`~shardstream.write.Writer`); 0 means its default.
        wait: seconds to wait when another writer holds the manifest's lock (0: fail at once).
        **progress_kwargs: passed to ``tqdm`` (``disable=True`` hides the bar and the final
            "N samples written" line).

    Attributes:
        path: the manifest path.

    Raises:
        ConfigError: ``shard_size`` is not a positive int, or the output has no name.
        NotADatasetFileError: the manifest path is a directory.
        DatasetExistsError: the output exists and may not be replaced.
        DatasetLockedError: another writer is writing the same output (a
            ``DatasetExistsError``).
    """

    def __init__(
        self,
        output: str | os.PathLike,
        *,
        shard_size: int,
        overwrite: bool = False,
        buffering: int = 0,
        wait: float = 0.0,
        **progress_kwargs: Any,
    ) -> None:
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ConfigError(f"shard_size must be a positive int (bytes), got {shard_size!r}")
        self.path, self._stem = sharded_output_paths(output)
        self._directory = self.path.parent
        if self.path.is_dir():
            raise NotADatasetFileError(self.path)
        self._directory.mkdir(parents=True, exist_ok=True)
        first = self._directory / shard_name(self._stem, 0)
        finals = [self.path.name, set_offsets_path(self.path).name]
        self._lock = lock_output(self.path, overwrite, wait, finals, existing=[first])
        try:
            self._previous = _listed_shards(self.path)
            self._staging = make_temp_dir(self.path)
        except BaseException:
            self._lock.release()
            raise
        self._finalizer = weakref.finalize(self, _discard, self._staging, self._lock)
        self._shard_size = shard_size
        self._buffering = buffering
        self._entries: list[ShardEntry] = []
        self._shard: RawWriter | None = None
        self._shard_bytes = 0
        self._keys: set[str] = set()
        self._bytes = 0
        self._closed = False
        self._pack = make_packer().pack
        self._progress, self._quiet = progress_bar(self.path, progress_kwargs)

    # --- state --------------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Number of samples written so far (all shards)."""
        return len(self._keys)

    @property
    def bytes_written(self) -> int:
        """Bytes of packed samples written so far (all shards)."""
        return self._bytes

    @property
    def shard_paths(self) -> list[Path]:
        """The final paths of the shards finished so far (all of them after :meth:`close`)."""
        return [self._directory / entry.path for entry in self._entries]

    # --- writing ------------------------------------------------------------------------------

    def write(self, sample: Mapping[str, Any]) -> None:
        """Pack ``sample`` (a dict with a unique str ``"key"``) and append it.

        Raises:
            MissingKeyError, InvalidKeyError, DuplicateKeyError, ReservedKeyError,
            SampleEncodeError, SampleTooLargeError, WriterClosedError: as
                :meth:`FileWriter.write <shardstream.write.FileWriter.write>`.
        """
        key = sample_key(sample, self.path)
        self._check_key(key)
        packed = pack_sample(sample, key, self.path, self._pack)
        self._append(key, packed)

    def write_raw(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Append already packed sample bytes under ``key``.

        Raises:
            InvalidKeyError, DuplicateKeyError, SampleTooLargeError, SampleEncodeError,
            WriterClosedError: as :meth:`RawWriter.write <shardstream.write.RawWriter.write>`.
        """
        self._check_key(key)
        data = raw_sample_bytes(data, key, self.path)
        self._append(key, data)

    def end_shard(self) -> None:
        """Finish the current shard now; the next sample starts a new one.

        With no sample written since the last shard ended, this writes an empty shard (so a
        shard planned by item count keeps its number when all its items were left out).

        Raises:
            WriterClosedError: the writer is closed.
        """
        if self._closed:
            reject_key(self.path, "", True)
        if self._shard is None:
            self._start_shard()
        self._finish_shard()

    def _check_key(self, key: Any) -> None:
        if type(key) is not str or key in self._keys or self._closed:
            reject_key(self.path, key, self._closed)

    def _append(self, key: str, data: bytes) -> None:
        size = len(data)
        if (
            self._shard is not None
            and self._shard_bytes
            and self._shard_bytes + size > self._shard_size
        ):
            self._finish_shard()
        shard = self._shard if self._shard is not None else self._start_shard()
        shard.write(key, data)
        self._keys.add(key)
        self._shard_bytes += size
        self._bytes += size
        self._progress.update(1)

    def _start_shard(self) -> RawWriter:
        name = shard_name(self._stem, len(self._entries))
        self._shard = shard = RawWriter(
            self._staging / name, buffering=self._buffering, overwrite=True, disable=True
        )
        self._shard_bytes = 0
        return shard

    def _finish_shard(self) -> None:
        shard, self._shard = self._shard, None
        if shard is None:
            return
        shard.close()
        md5 = load_md5file(DatasetPaths(shard.path).md5)[shard.path.name]
        self._entries.append(ShardEntry(shard.path.name, shard.written, self._shard_bytes, md5))

    # --- finishing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the last shard, move every shard into place, then write the manifest.

        A dataset without samples gets one empty shard. Calling ``close`` again is a no-op. If
        anything fails, everything staged is removed and the error propagates.
        """
        if self._closed:
            return
        staged = None
        try:
            if self._shard is None and not self._entries:
                self._start_shard()
            if self._shard is not None:
                self._finish_shard()
            staged = StagedFiles(anchor=self.path, locked=True)
            for entry in self._entries:
                self._stage_shard(staged, entry.path)
            offsets = self._stage_set_offsets(staged)
            staged.write_bytes(self.path, manifest_bytes(self.path, self._entries, offsets))
            self._stage_stale_shards(staged)
            staged.commit(last=self.path)
        except BaseException:
            if staged is not None and staged.committed:
                # past the commit point: the record lists files in the staging folder, which
                # stays for the next opener to finish the commit (and the next writer to remove)
                self._closed = True
                self._progress.close()
                self._finalizer.detach()
                self._lock.release()
            else:
                self.abort()
            raise
        self._closed = True
        self._progress.close()
        self._finalizer()  # removes the (now empty) staging folder and unlocks
        if not self._quiet:
            print(f"{self.written} samples written in {len(self._entries)} shards")

    def abort(self) -> None:
        """Discard every shard written so far; the previous dataset (if any) stays as it was."""
        if self._closed:
            return
        self._closed = True
        self._progress.close()
        shard, self._shard = self._shard, None
        try:
            if shard is not None:
                shard.abort()
        finally:
            self._finalizer()

    def _stage_shard(self, staged: StagedFiles, name: str) -> None:
        """Add one finished shard's files to the commit, in the order a reader pins them."""
        source = DatasetPaths(self._staging / name)
        target = DatasetPaths(self._directory / name)
        staged.adopt(source.data, target.data)
        for suffix in SIDECAR_SUFFIXES:  # the md5 file comes after the index files
            if source.sidecar(suffix).exists():
                staged.adopt(source.sidecar(suffix), target.sidecar(suffix))
            else:
                staged.remove_on_commit(target.sidecar(suffix))  # e.g. an old legacy .index

    def _stage_set_offsets(self, staged: StagedFiles) -> SetOffsets | None:
        """Add the set's offsets file (every shard's offsets in one) to the commit."""
        data = set_offsets_of_shards(self._staging, [entry.path for entry in self._entries])
        if data is None:
            return None
        target = set_offsets_path(self.path)
        staged.write_bytes(target, data)
        return SetOffsets.of(target.name, data)

    def _stage_stale_shards(self, staged: StagedFiles) -> None:
        """Delete, after the manifest, the shards only the previous manifest listed."""
        current = {entry.path for entry in self._entries}
        for name in sorted(self._previous - current):
            paths = DatasetPaths(self._directory / name)
            if paths.data.parent != self._directory:
                continue  # another folder's shard: not ours to delete
            for path in (paths.data, *(paths.sidecar(s) for s in SIDECAR_SUFFIXES)):
                staged.remove_on_commit(path)


def _discard(staging: Path, lock: DatasetLock) -> None:
    """Finalizer: remove the staging folder, then unlock."""
    try:
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.release()


def _listed_shards(manifest: Path) -> set[str]:
    """Shard names listed by an existing, readable manifest (empty if there is none)."""
    if not manifest.is_file():
        return set()
    try:
        return {entry.path for entry in load_manifest(manifest).shards}
    except Exception:  # a broken or partial old manifest: nothing to clean up safely
        return set()
