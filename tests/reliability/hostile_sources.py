"""Helpers for the hostile-input tests: forked trials with a timeout, archive builders, the CLI."""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
import tarfile
import traceback
import zipfile
from collections.abc import Callable
from typing import Any

from tests.write.demo_tree import jpeg

__all__ = ["cli", "forked", "jpeg", "make_tar", "make_zip", "zip_of_zeros", "assert_clean_failure"]


def forked(function: Callable[[], Any], timeout: float = 20.0) -> tuple[str, Any]:
    """Run ``function()`` in a forked child; return ``("ok", result)``, ``("raised", (type name,
    module, message, traceback))``, ``("hung", None)`` or ``("crashed", exitcode)``.

    A hang or a crash of the child cannot take the test run down with it.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        try:
            send.send(("ok", function()))
        except BaseException as e:  # report any failure to the parent, with its type
            kind = type(e)
            send.send(("raised", (kind.__name__, kind.__module__, str(e), traceback.format_exc())))

    process = context.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            return "hung", None
        return receive.recv()
    except EOFError:
        process.join(5)
        return "crashed", process.exitcode
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receive.close()


def make_zip(path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> str:
    """A ZIP file with these members."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def zip_of_zeros(path, name: str, size: int, *, extra: dict[str, bytes] | None = None) -> str:
    """A ZIP whose member ``name`` is ``size`` zero bytes, deflated (written in 1 MiB pieces,
    so building it never holds the member in memory): a decompression bomb (~1000 : 1)."""
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for other, data in (extra or {}).items():
            archive.writestr(other, data)
        with archive.open(name, "w", force_zip64=size > (1 << 31)) as member:
            left = size
            while left:
                piece = block[: min(left, len(block))]
                member.write(piece)
                left -= len(piece)
    return str(path)


def make_tar(path, members: list[tuple[str, bytes]], mode: str = "w") -> str:
    """A tar (``mode`` ``"w"`` or ``"w:gz"``) with these members; names may hold undecodable
    bytes as surrogate escapes (written as raw bytes)."""
    with tarfile.open(
        path, mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def cli(*args: str, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m shardstream ARGS`` (this checkout, through PYTHONPATH) and capture it."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "shardstream", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )


def assert_clean_failure(result: subprocess.CompletedProcess, *names: str) -> str:
    """The command failed with one error line naming each of ``names``, without a traceback;
    returns that line."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]
