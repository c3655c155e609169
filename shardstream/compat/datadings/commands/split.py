"""Split one dataset into several smaller ones (``shardstream split``).

Positions ``A B`` make three files: samples ``[0, A)``, ``[A, B)`` and ``[B, end)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ....cli import main as cli_main
from . import argv_or_sys, entry_point, run_engine

__all__ = ["entry", "main", "split_dataset"]


def split_dataset(
    infile: str, outfiles: Sequence[str], splits: Sequence[int], overwrite: bool
) -> None:
    """Write the parts of ``infile`` cut at ``splits`` to ``outfiles`` (one more than
    ``splits``); ``overwrite`` replaces existing outputs without asking."""
    run_engine(["split", infile, *splits, "-o", *outfiles, *(["-y"] if overwrite else [])])


def main(argv: Sequence[str] | None = None) -> int:
    """``split INFILE POS [POS ...] [-o OUT ...] [-y]``; returns the exit code."""

    return cli_main(["split", *argv_or_sys(argv)])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
