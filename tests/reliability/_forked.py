"""Run a function in a forked child with a time limit: a crash or a hang is a result, not the end
of the test run.

The child inherits the parent's imports (fork), so a trial costs milliseconds. Its address space
is capped a little above what it already maps, so a decoder that tries to allocate gigabytes
fails with MemoryError inside the trial instead of pushing the machine into swap.

A fork costs time in proportion to the memory the parent maps, and late in a full test run the
pytest process maps gigabytes (about 0.1 s a fork). :func:`run_isolated` therefore forks from a
small helper process (a "zygote", started once per test run with only the modules its calls
need): the same fresh child per call, for a module-level function and picklable arguments.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import importlib
import io
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: how much more address space than the parent maps a trial may take
EXTRA_ADDRESS_SPACE = 1 << 30


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of a forked call.

    Attributes:
        status: ``"returned"``, ``"raised"``, ``"crashed"`` (killed by a signal, e.g. SIGSEGV)
            or ``"hung"`` (still running at the time limit, then killed); ``"zygote"`` only
            between the zygote and :func:`run_isolated` (the call could not be made).
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


# --- forking from a small helper process --------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
_zygote: tuple[subprocess.Popen, socket.socket] | None = None


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(8, "little") + payload)


def _receive(sock: socket.socket) -> bytes | None:
    """One framed message, or None at the end of the stream."""
    chunks, wanted, header = [], 8, True
    while wanted:
        chunk = sock.recv(min(wanted, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        wanted -= len(chunk)
        if not wanted and header:
            wanted, header, chunks = int.from_bytes(b"".join(chunks), "little"), False, []
    return b"".join(chunks)


def _warm(name: str) -> None:
    """Import ``module``, or import ``module:function`` and call ``function()`` once."""
    module, _, function = name.partition(":")
    imported = importlib.import_module(module)
    if function:
        getattr(imported, function)()


def serve(fd: int) -> None:
    """The zygote's loop: read (warm, function, args, timeout), answer run_forked's Outcome."""
    sock = socket.socket(fileno=fd)
    warmed: set[str] = set()
    while (request := _receive(sock)) is not None:
        try:
            warm, function, args, timeout = pickle.loads(request)
            for name in warm:
                if name not in warmed:
                    _warm(name)
                    warmed.add(name)
            outcome = run_forked(functools.partial(function, *args), timeout)
        except BaseException as error:  # a request this process cannot run: the caller sees it
            outcome = Outcome(status="zygote", detail="".join(traceback.format_exception(error)))
        _send(sock, pickle.dumps(outcome))


def _stop(process: subprocess.Popen, sock: socket.socket) -> None:
    sock.close()  # the zygote reads the end of its stream and returns
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start() -> tuple[subprocess.Popen, socket.socket]:
    ours, theirs = socket.socketpair()
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from tests.reliability._forked import serve; serve({theirs.fileno()})",
        ],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
    )
    theirs.close()
    atexit.register(_stop, process, ours)
    return process, ours


def _rebuild_array(data: bytes, align: int, low: int, shape, strides, dtype, writeable: bool):
    """An array with the layout of the one :class:`_LayoutPickler` took apart."""
    base = np.empty(len(data) + 16, np.uint8)
    shift = (align - base.ctypes.data) % 16
    base[shift : shift + len(data)] = np.frombuffer(data, np.uint8)
    array = np.ndarray(shape, dtype, buffer=base, offset=shift - low, strides=strides)
    array.flags.writeable = writeable
    return array


class _LayoutPickler(pickle.Pickler):
    """Pickles numpy arrays with their layout (strides, including zero and negative ones, the
    alignment and the read-only flag) and only the bytes they span, where plain pickling would
    send contiguous, writable copies: the fuzzed layouts must reach the child as drawn."""

    def reducer_override(self, obj):
        if type(obj) is not np.ndarray or obj.dtype.hasobject:
            return NotImplemented
        low = sum(s * (n - 1) for s, n in zip(obj.strides, obj.shape) if s < 0)
        high = sum(s * (n - 1) for s, n in zip(obj.strides, obj.shape) if s > 0)
        start = obj.__array_interface__["data"][0] + low
        span = high - low + obj.itemsize if obj.size else 0
        data = ctypes.string_at(start, span) if span else b""
        writeable = obj.flags.writeable
        return _rebuild_array, (data, start % 16, low, obj.shape, obj.strides, obj.dtype, writeable)


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _LayoutPickler(buffer).dump(value)
    return buffer.getvalue()


def run_isolated(
    function: Callable[..., Any],
    *args: Any,
    timeout: float = 10.0,
    warm: Sequence[str] = (),
) -> Outcome:
    """``run_forked(lambda: function(*args), timeout)``, forked from the zygote instead of this
    process.

    Args:
        function: a module-level function (pickled by name; the zygote imports its module).
        args: its arguments, pickled (numpy arrays keep their strides, alignment and
            read-only flag; see :class:`_LayoutPickler`).
        timeout: seconds the call may take before it counts as hung.
        warm: modules (``"module"``) or functions (``"module:function"``) the zygote imports or
            calls once before its first fork that needs them, so that imports the call would
            make lazily happen once, not in every child.

    Raises:
        RuntimeError: the zygote could not take the call (its detail says why) or stopped.
    """
    global _zygote
    if _zygote is None or _zygote[0].poll() is not None:
        _zygote = _start()
    process, sock = _zygote
    _send(sock, _dumps((tuple(warm), function, args, timeout)))
    sock.settimeout(timeout + 120)
    try:
        answer = _receive(sock)
    except TimeoutError:
        answer = None
    if answer is None:
        process.kill()
        _zygote = None
        raise RuntimeError("the zygote process stopped or did not answer")
    outcome = pickle.loads(answer)
    if outcome.status == "zygote":
        raise RuntimeError(f"the zygote could not run {function!r}:\n{outcome.detail}")
    return outcome
