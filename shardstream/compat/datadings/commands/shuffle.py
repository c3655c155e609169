"""Shuffle an existing dataset file (``shardstream shuffle``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ....cli import main as cli_main
from . import argv_or_sys, entry_point, run_engine

__all__ = ["entry", "main", "shuffle"]


def shuffle(infile: str, outfile: str, args: Any) -> None:
    """Write ``infile`` shuffled to ``outfile``; ``args`` has datadings' ``true_shuffle``,
    ``buf_size``, ``chunk_size`` and ``no_confirm`` (missing ones take the defaults)."""
    argv: list[object] = ["shuffle", infile, outfile]
    if getattr(args, "true_shuffle", False):
        argv.append("--true-shuffle")
    for name in ("buf_size", "chunk_size"):
        if getattr(args, name, None) is not None:
            argv += ["--" + name.replace("_", "-"), getattr(args, name)]
    if getattr(args, "no_confirm", False):
        argv.append("-y")
    run_engine(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``shuffle INFILE OUTFILE [-y] [--true-shuffle] [--buf-size F] [--chunk-size N]``; returns the exit code."""

    return cli_main(["shuffle", *argv_or_sys(argv)])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
