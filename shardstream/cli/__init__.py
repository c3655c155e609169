"""The ``shardstream`` command: one subcommand per module in this package.

Exit codes: 0 success, 1 failure (bad input, a shardstream error), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import ShardstreamError

__all__ = ["main", "build_parser", "command_modules"]


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
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in command_modules():
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ShardstreamError as e:
        print(f"shardstream {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): silence the final flush too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
