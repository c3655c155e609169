"""The exclusive lock of an output: one writer per dataset path, across processes.

:class:`DatasetLock` is an ``flock`` on the hidden file ``.<anchor>.lock`` next to the output,
held for a writer's lifetime and released by the kernel when its process dies (so a killed
writer never leaves a stale lock). The file is removed on release, while still locked; a process
that locked a file that was removed meanwhile retries, so two holders never coexist.

The holder writes ``<pid> <role>`` into the file: ``writer`` for a writer, ``settle`` for a
reader that finishes an interrupted commit (see :func:`shardstream.format.atomic.settle`). A
writer waits a moment for a ``settle`` holder instead of reporting the output as busy.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from ..errors import DatasetLockedError

__all__ = ["LOCK_SUFFIX", "DatasetLock", "lock_path"]

LOCK_SUFFIX = ".lock"
_WRITER, _SETTLE = "writer", "settle"
#: seconds a writer waits for a lock held by a reader that finishes a commit (or by a holder
#: that has not written its role yet) before it reports the output as locked
_BRIEF_HOLD = 2.0


def lock_path(anchor: str | os.PathLike) -> Path:
    """The lock file of the output ``anchor``: ``.<anchor name>.lock``."""
    anchor = Path(anchor)
    return anchor.with_name(f".{anchor.name}{LOCK_SUFFIX}")


class DatasetLock:
    """An exclusive ``flock`` on ``.<anchor>.lock``; see :meth:`acquire`.

    Args:
        path: the lock file.
        fd: its descriptor, locked.
    """

    def __init__(self, *, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, anchor: str | os.PathLike, *, wait: float = 0.0) -> DatasetLock:
        """Lock the output ``anchor`` for this process, waiting up to ``wait`` seconds.

        Args:
            anchor: the output path (data file or manifest).
            wait: seconds to wait for another holder (0: fail at once; ``math.inf``: forever).

        Raises:
            DatasetLockedError: another process (or another writer here) holds it.
            OSError: the lock file cannot be created (e.g. no write permission).
        """
        path = lock_path(anchor)
        start = time.monotonic()
        deadline = start + max(0.0, wait)
        delay = 0.001
        while True:
            lock = cls._try(path)
            if lock is not None:
                lock._write_role(_WRITER)
                return lock
            now = time.monotonic()
            pid, role = _holder(path)
            # a reader finishing a commit holds the lock for moments: not a reason to fail
            brief = role != _WRITER and now < start + _BRIEF_HOLD
            if now >= deadline and not brief:
                holder = f" (pid {pid})" if pid else ""
                raise DatasetLockedError(
                    Path(anchor),
                    f"another writer{holder} is writing it (lock {path.name}); "
                    "two writers never share an output",
                )
            time.sleep(min(delay, max(0.001, deadline - now)))
            delay = min(delay * 2, 0.05)

    @classmethod
    def try_acquire(cls, anchor: str | os.PathLike) -> DatasetLock | None:
        """Lock ``anchor`` briefly (to finish a commit) if free, else return None (never waits).

        Raises:
            OSError: the lock file cannot be created.
        """
        lock = cls._try(lock_path(anchor))
        if lock is not None:
            lock._write_role(_SETTLE)
        return lock

    @classmethod
    def _try(cls, path: Path) -> DatasetLock | None:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us may have removed the file after we opened it: then our lock
            # is on a dead inode and someone else may lock a new file under the name. Retry.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (
                mine.st_dev,
                mine.st_ino,
            ):
                return cls(path=path, fd=fd)
            os.close(fd)

    def _write_role(self, role: str) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()} {role}\n".encode(), 0)
        except OSError:
            pass  # only used in messages and to tell brief holders

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def fileno(self) -> int | None:
        """The locked descriptor (``None`` once released). A forked child should close its
        copy: the lock lasts while any process holds one."""
        return self._fd

    def release(self) -> None:
        """Remove the lock file and unlock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: see _try
        except OSError:
            pass
        finally:
            os.close(fd)


def _holder(path: Path) -> tuple[str, str]:
    """``(pid, role)`` written in a lock file (empty strings where unknown)."""
    try:
        words = path.read_text()[:40].split()
    except (OSError, UnicodeDecodeError):
        return "", ""
    pid = words[0] if words and words[0].isdigit() else ""
    return pid, words[1] if len(words) > 1 else ""
