"""Merge two or more dataset files (``shardstream merge``).

Strategies: ``concat`` (inputs in the order given) and ``random`` (each next sample from an
input drawn by its share of the samples).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence

from ....cli import main as cli_main
from . import argv_or_sys, entry_point, run_engine

__all__ = ["cumsum", "entry", "main", "merge_concat", "merge_random", "select_set", "setup_ranges"]


def merge_concat(infiles: Sequence[str], outfile: str, shuffle: bool) -> None:
    """Write every sample of each input in turn to ``outfile`` (each shuffled if ``shuffle``)."""
    run_engine(["merge", *infiles, outfile, "--strategy", "concat", *(["--shuffle"] * shuffle)])


def merge_random(infiles: Sequence[str], outfile: str, shuffle: bool = False) -> None:
    """Write a random interleaving of the inputs to ``outfile`` (each shuffled if ``shuffle``)."""
    run_engine(["merge", *infiles, outfile, "--strategy", "random", *(["--shuffle"] * shuffle)])


def cumsum(it: Iterable[float]) -> Iterator[float]:
    """Running totals of ``it``."""
    total = 0
    for x in it:
        total += x
        yield total


def setup_ranges(lens: Sequence[int]) -> list[float]:
    """Cumulative shares of ``lens`` (the upper borders :func:`select_set` draws against).

    Raises:
        ZeroDivisionError: all lengths are 0.
    """
    total = sum(lens)
    return list(cumsum(n / total for n in lens))


def select_set(ranges: Sequence[float]) -> int:
    """Index of the range a uniform random number in ``[0, 1)`` falls into."""
    rand = random.uniform(0, 1)
    for i, border in enumerate(ranges):
        if rand < border:
            return i
    return len(ranges) - 1


def main(argv: Sequence[str] | None = None) -> int:
    """``merge INFILE [INFILE ...] OUTFILE [-s/--strategy concat|random] [--shuffle]``; returns the exit code."""

    return cli_main(["merge", *argv_or_sys(argv)])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
