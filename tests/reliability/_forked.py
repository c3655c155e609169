"""Run a function in a forked child with a time limit: a crash or a hang is a result, not the end
of the test run.

The child inherits the parent's imports (fork), so a trial costs milliseconds. Its address space
is capped a little above what it already maps, so a decoder that tries to allocate gigabytes
fails with MemoryError inside the trial instead of pushing the machine into swap.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: how much more address space than the parent maps a trial may take
EXTRA_ADDRESS_SPACE = 1 << 30


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of a forked call.

    Attributes:
        status: ``"returned"``, ``"raised"``, ``"crashed"`` (killed by a signal, e.g. SIGSEGV)
            or ``"hung"`` (still running at the time limit, then killed).
        value: what the function returned (``"returned"``).
        exc_type: the exception's class, fully qualified (``"raised"``).
        exc_mro: names of every class the exception's class derives from (``"raised"``).
        detail: the traceback (``"raised"``), the signal (``"crashed"``) or the limit (``"hung"``).
    """

    status: str
    value: Any = None
    exc_type: str = ""
    exc_mro: tuple[str, ...] = ()
    detail: str = ""


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_forked(function: Callable[[], Any], timeout: float = 10.0) -> Outcome:
    """Call ``function()`` in a forked child; wait at most ``timeout`` seconds for it.

    Returns:
        The :class:`Outcome`; ``value`` must be picklable.
    """
    read_end, write_end = os.pipe()
    limit = _vm_size() + EXTRA_ADDRESS_SPACE
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                result = ("returned", function(), "", (), "")
            except BaseException as error:  # everything is reported, nothing escapes
                kind = type(error)
                result = (
                    "raised",
                    None,
                    f"{kind.__module__}.{kind.__qualname__}",
                    tuple(f"{c.__module__}.{c.__qualname__}" for c in kind.__mro__),
                    "".join(traceback.format_exception(error))[-4000:],
                )
            payload = pickle.dumps(result)
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    chunks = []
    os.set_blocking(read_end, False)
    status = None
    while True:
        try:
            chunk = os.read(read_end, 1 << 16)
            if chunk:
                chunks.append(chunk)
                continue
        except BlockingIOError:
            pass
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            status = wait_status
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return Outcome(status="hung", detail=f"still running after {timeout} s")
        time.sleep(0.002)
    os.set_blocking(read_end, True)
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    if os.WIFSIGNALED(status):
        return Outcome(status="crashed", detail=signal.Signals(os.WTERMSIG(status)).name)
    if not chunks:
        return Outcome(status="crashed", detail=f"exit code {os.waitstatus_to_exitcode(status)}")
    kind, value, exc_type, exc_mro, detail = pickle.loads(b"".join(chunks))
    return Outcome(status=kind, value=value, exc_type=exc_type, exc_mro=exc_mro, detail=detail)


def is_typed(outcome: Outcome) -> bool:
    """Whether the call returned, or raised an exception from :mod:`shardstream.errors`."""
    return outcome.status == "returned" or (
        outcome.status == "raised" and "shardstream.errors.ShardstreamError" in outcome.exc_mro
    )
