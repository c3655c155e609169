"""What both writers share around their staged files: locking the output, the progress bar, and
the close-on-success / abort-on-exception protocol.

:class:`~shardstream.write.Writer` stages one dataset's files and :class:`~shardstream.write.
ShardedWriter` a folder of shards; both commit with :class:`~shardstream.format.atomic.
StagedFiles`. Before staging, :func:`lock_output` takes the output's lock, finishes an
interrupted commit of it, removes killed writers' temporaries and applies the overwrite policy;
:class:`StagedOutput` is the context-manager protocol both follow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..format.atomic import DatasetLock, remove_stale_temporaries, settle_locked
from .prompt import confirm_overwrite

__all__ = ["StagedOutput", "lock_output", "progress_bar"]

_S = TypeVar("_S", bound="StagedOutput")


def lock_output(
    path: Path,
    overwrite: bool,
    wait: float,
    finals: list[str],
    *,
    existing: Sequence[Path] = (),
) -> DatasetLock:
    """Lock the output ``path`` for a writer and prepare it.

    Finishes an interrupted commit of ``path``, removes the temporaries killed writers left for
    the names in ``finals``, then applies the overwrite policy (see
    :class:`~shardstream.write.Writer`) when ``path`` or any of ``existing`` exists.

    Args:
        path: the output (a data file, or a sharded set's manifest); its lock is taken.
        overwrite: replace an existing output without asking.
        wait: seconds to wait for another writer's lock (0: fail at once).
        finals: the final names whose leftover temporaries are removed.
        existing: other paths whose presence also means the output exists (a sharded set's
            first shard).

    Returns:
        The held lock; the caller releases it.

    Raises:
        DatasetLockedError: another writer holds the lock (after ``wait`` seconds).
        DatasetExistsError: the output exists and may not be replaced.
    """
    lock = DatasetLock.acquire(path, wait=wait)
    try:
        settle_locked(path)
        remove_stale_temporaries(path, finals)
        if (path.exists() or any(p.exists() for p in existing)) and not overwrite:
            confirm_overwrite(path)
    except BaseException:
        lock.release()
        raise
    return lock


def progress_bar(path: Path, progress_kwargs: dict[str, Any]) -> tuple[Any, bool]:
    """A tqdm bar for writing ``path`` (desc = file name) and whether output is quiet."""
    from tqdm import tqdm

    quiet = bool(progress_kwargs.get("disable", False))
    progress_kwargs.setdefault("desc", path.name)
    progress_kwargs.setdefault("unit", " samples")
    return tqdm(**progress_kwargs), quiet


class StagedOutput(ABC):
    """A writer of staged files: a context manager that commits them on a clean exit
    (:meth:`close`) and discards them when the block raises (:meth:`abort`).

    Subclasses set ``_closed`` (False while open) and implement :meth:`close` and :meth:`abort`.
    """

    _closed: bool

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def closed(self) -> bool:
        """True after :meth:`close` or :meth:`abort`."""
        return self._closed

    @abstractmethod
    def close(self) -> None:
        """Commit everything staged; the output appears as a whole."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything staged; the previous output (if any) stays as it was."""
