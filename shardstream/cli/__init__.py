"""The ``shardstream`` command: one subcommand per module in this package.

Exit codes: 0 success, 1 failure (bad input, a shardstream error, or an operating-system
error on output such as a full disk, a read-only file system or a denied permission, reported
in one line without a traceback), 2 usage error. ``shardstream`` without a command prints the
help on stdout and exits 2, as ``git`` prints its help and exits non-zero (nothing was done);
``shardstream --version`` prints the version.

Every command takes ``-q/--quiet`` and ``-y`` and shows its defaults in ``--help`` (see
:mod:`shardstream.cli._help`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import ShardstreamError
from ._help import finish_parsers

__all__ = ["main", "build_parser", "command_modules", "OUTPUT_ERRNOS"]

#: ``OSError`` numbers reported as one-line errors: the output cannot be written (full disk or
#: quota, a file too large, a read-only file system, a denied permission, an I/O error).
OUTPUT_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC,
        getattr(errno, "EDQUOT", None),
        errno.EFBIG,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
    )
    if code is not None
)


def command_modules() -> list[ModuleType]:
    """Every module of this package that defines a subcommand (``add_parser`` and ``run``).

    Each module's ``add_parser(subparsers)`` registers its parser and sets ``run`` as the
    parser's default ``run``; ``run(args) -> int`` returns the exit code.
    """
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser") and hasattr(module, "run"):
            modules.append(module)
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="shardstream",
        description="Pack image datasets into indexed, checksummed shards and stream them.",
        epilog="Run 'shardstream COMMAND --help' for a command's options.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in command_modules():
        command.add_parser(subparsers)
    finish_parsers(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else list(argv)):
        parser.print_help()  # like git: the help, on stdout, and a usage-error exit code
        return 2
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a full disk under redirected output shows here, not at exit
        return code
    except ShardstreamError as e:
        print(f"shardstream {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if isinstance(e, BrokenPipeError) or e.errno not in OUTPUT_ERRNOS:
            raise
        print(f"shardstream {args.command}: error: {describe_os_error(e)}", file=sys.stderr)
        _drop_stdout()  # what is still buffered cannot be written either
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): silence the final flush too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def describe_os_error(error: OSError) -> str:
    """One line for an ``OSError``: its text, the file(s) it names and the errno name.

    Args:
        error: the error.

    Returns:
        e.g. ``"No space left on device: 'out/x.msgpack' (ENOSPC)"``.
    """
    text = error.strerror or str(error)
    files = [f for f in (error.filename, error.filename2) if f is not None]
    if files:
        text += ": " + " -> ".join(repr(os.fsdecode(f)) for f in files)
    name = errno.errorcode.get(error.errno) if error.errno is not None else None
    return f"{text} ({name})" if name else text


def _drop_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        try:
            sys.stdout.flush()
        except OSError:
            pass
