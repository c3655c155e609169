"""Extract samples from a dataset (``shardstream sample``)."""

from __future__ import annotations

from collections.abc import Sequence

from ....cli import main as cli_main
from . import argv_or_sys, entry_point, run_engine

__all__ = ["entry", "main", "sample"]


def sample(infile: str, outfile: str, number: int, strategy: str) -> None:
    """Write ``number`` samples of ``infile`` to ``outfile``: the first ones (``"sequential"``)
    or the first of a :class:`~shardstream.order.Shuffler`'s order (``"random"``)."""
    run_engine(["sample", infile, outfile, number, "--strategy", strategy])


def main(argv: Sequence[str] | None = None) -> int:
    """``sample INFILE OUTFILE N [-s/--strategy random|sequential]``; returns the exit code."""

    return cli_main(["sample", *argv_or_sys(argv)])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
