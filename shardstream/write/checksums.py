"""Adding the per-sample checksum file ``X.xxh3`` to an existing set, atomically.

Sets written by datadings or by older shardstream versions have no checksum file; their damage
is found per file only (by the ``.md5`` file). :func:`add_checksums` hashes every sample as it is
now and commits ``X.xxh3`` atomically (a staged file renamed into place under the set's writer
lock; see :mod:`shardstream.format.atomic`); no other file changes. Run it on a set whose data passed its md5 check
(``shardstream verify --add-checksums`` does so), or damage already there is recorded as good.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..format.atomic import DatasetLock, StagedFiles, remove_stale_temporaries, settle_locked
from ..format.checksums import compute_checksums, encode_checksums
from ..format.paths import DatasetPaths
from ..read.msgpack import MsgpackReader

__all__ = ["add_checksums"]

#: seconds to wait for another writer of the set
_WAIT = 60.0


def add_checksums(path: str | os.PathLike, progress: Any = None) -> Path:
    """Write (or rewrite) the per-sample checksum file of the set ``path``, atomically.

    Takes the set's writer lock, finishes an interrupted commit, hashes every sample and
    commits ``X.xxh3`` (replacing a stale one).

    Args:
        path: the data file (or any of its sidecars).
        progress: an object with ``update(n)`` (e.g. a tqdm bar), advanced per sample.

    Returns:
        The checksum file's path.

    Raises:
        DatasetLockedError: another writer held the set for a minute.
        DatasetNotFoundError, MissingIndexError, IndexMismatchError, ...: the set does not open.
        DatasetChangedError: the data changed while it was hashed.
    """
    paths = DatasetPaths.of(path)
    lock = DatasetLock.acquire(paths.data, wait=_WAIT)
    try:
        settle_locked(paths.data)
        remove_stale_temporaries(paths.data, [paths.checksums.name, paths.md5.name])
        with MsgpackReader(paths.data, checksums=False) as reader:
            samples = reader.slice(0, None, raw=True, copy=False)
            if progress is not None:
                samples = _counted(samples, progress)
            digests = compute_checksums(samples, len(reader))
            content = encode_checksums(digests, paths.data.stat().st_size)
            reader.check_unchanged()
        staged = StagedFiles(anchor=paths.data, locked=True)
        try:
            staged.write_bytes(paths.checksums, content)
            staged.commit()
        except BaseException:
            staged.abort()
            raise
    finally:
        lock.release()
    return paths.checksums


def _counted(samples: Any, progress: Any) -> Any:
    for sample in samples:
        yield sample
        progress.update(1)
