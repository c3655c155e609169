"""The ``shardstream`` command: one subcommand per module in this package.

Exit codes: 0 success, 1 failure (bad input, a shardstream error), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import ShardstreamError
from . import demo

__all__ = ["main", "build_parser"]

#: subcommand modules; each provides ``add_parser(subparsers)`` and ``run(args) -> int``
COMMANDS = (demo,)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="shardstream",
        description="Pack image datasets into indexed, checksummed shards and stream them.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
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
        return 0
