"""Convert the legacy index of a dataset to the new style (``shardstream convert-index``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ....cli import main as cli_main
from . import argv_or_sys, entry_point, run_engine

__all__ = ["convert_index", "entry", "main"]


def convert_index(path: str | os.PathLike, outdir: str | os.PathLike | None) -> None:
    """Write the new index files (and md5 lines) of the dataset ``path`` (data file or its
    ``.index``) from its legacy index, into ``outdir`` (default: next to the data file)."""
    run_engine(["convert-index", path, *(["--outdir", outdir] if outdir else [])])


def main(argv: Sequence[str] | None = None) -> int:
    """``convert_index INFILE [-o/--outdir PATH]``; returns the exit code."""

    return cli_main(["convert-index", *argv_or_sys(argv)])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
