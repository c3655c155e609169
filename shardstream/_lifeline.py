"""Worker processes that die with their parent, and shared memory that outlives no owner.

A worker calls :func:`bind_to_parent` first thing after it starts. On Linux it asks the kernel for
``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``), then checks that its parent is
still the one expected (the parent may have died between the fork and the ``prctl``: the child
was then re-parented and no signal will ever come). ``PR_SET_PDEATHSIG`` fires when the parent
*thread* that created the child exits, not the process, so it is used only for children started
from the main thread (see :func:`deathsig_fits`); every worker also runs a watchdog thread that
polls ``os.getppid()``, which covers the other cases and other platforms.

Shared-memory segments whose names share a prefix claimed with :func:`claim_prefix` are
removed by a later run once every process of their owner is dead (:func:`reap_unclaimed`),
whatever killed them, also when the resource tracker that would have removed them died too.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import signal
import sys
import threading
import time
from multiprocessing import resource_tracker

__all__ = ["bind_to_parent", "claim_prefix", "deathsig_fits", "reap_unclaimed", "release_prefix"]

#: from <linux/prctl.h>
_PR_SET_PDEATHSIG = 1
#: seconds between the watchdog's looks at the parent pid
WATCHDOG_POLL_S = 0.1
_SHM_DIR = "/dev/shm"
#: Owner files of :func:`claim_prefix`: ``sso_<prefix>`` (not ``<prefix>...``, so listing a
#: prefix's segments does not list its owner file).
_OWNER_PATTERN = re.compile(r"sso_(?P<prefix>ss[a-z]?[0-9a-f]+)")


def deathsig_fits(start_method: str) -> bool:
    """Whether children started now may use ``PR_SET_PDEATHSIG`` safely.

    Args:
        start_method: the multiprocessing start method the children are started with.

    Returns:
        True when the children's parent thread lives as long as their parent process: a
        ``forkserver`` child's parent is the server's only thread, other children's parent
        thread is the current one, which must be the main thread.
    """
    if not sys.platform.startswith("linux"):
        return False
    return start_method == "forkserver" or threading.current_thread() is threading.main_thread()


def bind_to_parent(parent: int | None, *, deathsig: bool) -> None:
    """Make the calling process (a worker) die as soon as its parent does.

    Args:
        parent: the pid the worker's parent must have; ``None`` takes the current parent (a
            ``forkserver`` child, whose parent is the server, not the process that asked).
        deathsig: also ask the kernel for ``SIGKILL`` on the parent's death (see
            :func:`deathsig_fits`).

    The worker is killed at once when its parent is already gone; otherwise a daemon watchdog
    thread kills it within :data:`WATCHDOG_POLL_S` seconds of the parent's death.
    """
    expected = os.getppid() if parent is None else parent
    if deathsig:
        _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != expected:  # the parent died before the prctl took effect
        _die()
    watchdog = threading.Thread(
        target=_watch, args=(expected,), name="shardstream-parent-watchdog", daemon=True
    )
    watchdog.start()


def _set_pdeathsig(signum: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watchdog alone covers it
        pass


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCHDOG_POLL_S)
    _die()


def _die() -> None:
    # SIGKILL, not sys.exit: a worker stuck in a transform or holding locks must not run
    # finalizers that could wait on the dead parent
    os.kill(os.getpid(), signal.SIGKILL)


def claim_prefix(prefix: str) -> int:
    """Mark the segments named ``<prefix>_*`` as owned by this process (and its forked children).

    Creates ``/dev/shm/sso_<prefix>`` and holds an exclusive ``flock`` on it. The lock is
    released by the kernel when the last process holding the descriptor dies, however it dies,
    so :func:`reap_unclaimed` can tell dead owners from live ones without trusting pids (which
    are reused, and differ between containers sharing ``/dev/shm``). The owner file is
    registered with the resource tracker like the segments, so the tracker removes it with them.

    Args:
        prefix: the segments' name prefix (``ss`` + letters and hex digits).

    Returns:
        The owner file's descriptor, for :func:`release_prefix` (-1 without ``/dev/shm``).
    """
    path = os.path.join(_SHM_DIR, _owner_name(prefix))
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # no locks here: the owner file then always looks live
        pass
    resource_tracker.register(f"/{_owner_name(prefix)}", "shared_memory")
    return fd


def release_prefix(prefix: str, fd: int) -> None:
    """Remove the owner file of :func:`claim_prefix` (the segments are the caller's to unlink).

    Args:
        prefix: the prefix claimed.
        fd: the descriptor :func:`claim_prefix` returned.
    """
    if fd < 0:
        return
    try:
        os.unlink(os.path.join(_SHM_DIR, _owner_name(prefix)))
    except OSError:
        pass
    resource_tracker.unregister(f"/{_owner_name(prefix)}", "shared_memory")
    os.close(fd)


def reap_unclaimed() -> list[str]:
    """Unlink the segments (and owner files) of every claimed prefix whose owners are all dead.

    Returns:
        The names removed (empty where ``/dev/shm`` does not exist).
    """
    try:
        names = os.listdir(_SHM_DIR)
    except OSError:
        return []
    removed = []
    for name in names:
        match = _OWNER_PATTERN.fullmatch(name)
        if match is None or _claimed(os.path.join(_SHM_DIR, name)):
            continue
        prefix = match.group("prefix") + "_"
        for other in names:
            if other.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(_SHM_DIR, other))
                    removed.append(other)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(_SHM_DIR, name))
            removed.append(name)
    return removed


def _owner_name(prefix: str) -> str:
    return f"sso_{prefix}"


def _claimed(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone meanwhile, or not ours
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by a live owner (or no locks here)
        return True
    finally:
        os.close(fd)
    return False
