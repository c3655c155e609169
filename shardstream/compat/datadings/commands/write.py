"""Create dataset files (``shardstream write NAME``): ``write DATASET [options]``.

The data sets are the datadings-compatible sets of :mod:`shardstream.sets`; ``write DATASET
-h`` shows each one's source files, URLs, sample keys and options.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from natsort import natsorted

from ....cli import main as cli_main
from ..sets import find_sets
from . import argv_or_sys, entry_point

__all__ = ["entry", "find_writers", "format_writers", "main", "writer_link"]


def find_writers() -> list[str]:
    """Names of the data sets that can be written (``"VOC2012"``, ...)."""
    return list(find_sets())


def writer_link(w: str) -> str:
    """A Sphinx cross reference to the writer module of data set ``w``."""
    return f":py:mod:`{w} <shardstream.compat.datadings.sets.{w}_write>`"


def format_writers(writers: Iterable[str]) -> str:
    """The writers grouped by first letter, one ``"X:\\n    A, B"`` block per letter (as links
    when the ``DOCSBUILD`` environment variable is set)."""
    order: OrderedDict[str, list[str]] = OrderedDict()
    for w in writers:
        order.setdefault(w.upper()[0], []).append(w)
    link = os.getenv("DOCSBUILD")
    return "\n".join(
        f"{char}:\n    " + ", ".join(map(writer_link, ws) if link else ws)
        for char, ws in order.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``write DATASET [options]``, run by ``shardstream write``; returns the exit code.

    Without a data set it prints the list of data sets (with ``-h``: and exit code 0, else 1).
    """

    argv = argv_or_sys(argv)
    if not argv or argv[0].startswith("-"):
        print(__doc__.split("\n\n")[0])
        print("\nThe following datasets are supported:\n")
        print(format_writers(natsorted(find_writers())))
        return 0 if argv and argv[0] in ("-h", "--help") else 1
    return cli_main(["write", *argv])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
