"""Worker processes that die with their parent, and shared memory that outlives no owner.

A worker calls :func:`bind_to_parent` first thing after it starts. On Linux it asks the kernel for
``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``), then checks that its parent is
still the one expected (the parent may have died between the fork and the ``prctl``: the child
was then re-parented and no signal will ever come). ``PR_SET_PDEATHSIG`` fires when the parent
*thread* that created the child exits, not the process, so it is used only for children started
from the main thread (see :func:`deathsig_fits`); every worker also runs a watchdog thread that
polls ``os.getppid()``, which covers the other cases and other platforms.

Shared-memory segments named with :func:`owned_name` carry their creator's pid, so a later run
can remove those of owners that are dead (:func:`reap_segments`) whatever killed them.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import threading
import time

__all__ = ["bind_to_parent", "deathsig_fits", "owned_name", "pid_alive", "reap_segments"]

#: from <linux/prctl.h>
_PR_SET_PDEATHSIG = 1
#: seconds between the watchdog's looks at the parent pid
WATCHDOG_POLL_S = 0.1
_SHM_DIR = "/dev/shm"


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


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as dead).

    Args:
        pid: the process id.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return True


def owned_name(tag: str, token: str) -> str:
    """A shared-memory segment name that records this process as its owner.

    Args:
        tag: what kind of segment (letters only), e.g. ``"w"`` for the writer's pool.
        token: a random hex token making the name unique.

    Returns:
        ``ss<tag>_<pid>_<token>``, matched by :func:`reap_segments`.
    """
    return f"ss{tag}_{os.getpid()}_{token}"


def reap_segments(pattern: str, *, base: int = 10) -> list[str]:
    """Unlink the segments in ``/dev/shm`` matching ``pattern`` whose owner process is dead.

    Args:
        pattern: a regular expression for whole names with a group named ``pid``: the owner.
        base: the base the pid is written in (10 or 16).

    Returns:
        The names removed (empty where ``/dev/shm`` does not exist).
    """
    try:
        names = os.listdir(_SHM_DIR)
    except OSError:
        return []
    regex = re.compile(pattern)
    removed = []
    for name in names:
        match = regex.fullmatch(name)
        if match is None:
            continue
        pid = int(match.group("pid"), base)
        if pid == os.getpid() or pid_alive(pid):
            continue
        try:
            os.unlink(os.path.join(_SHM_DIR, name))
        except OSError:  # removed meanwhile, or not ours to remove
            continue
        removed.append(name)
    return removed
