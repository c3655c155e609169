"""Cat msgpack files: print each sample of a dataset, abbreviated (``shardstream cat``)."""

from __future__ import annotations

from collections.abc import Sequence

from ....cli import main as cli_main
from . import argv_or_sys, entry_point, run_engine

__all__ = ["cat", "entry", "main"]


def cat(infile: str, maxstring: int) -> None:
    """Print every sample of ``infile``, strings and bytes cut at ``maxstring`` characters."""
    run_engine(["cat", infile, "--maxstring", maxstring])


def main(argv: Sequence[str] | None = None) -> int:
    """``cat INFILE [-s/--maxstring N]``; returns the exit code."""

    return cli_main(["cat", *argv_or_sys(argv)])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
