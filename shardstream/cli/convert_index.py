"""``shardstream convert-index``: write the new index files of a dataset that has a legacy index.

Old datadings files carry one ``X.index`` (a msgpack map of key to offset). This writes
``X.offsets``, ``X.keys``, ``X.key_hashes`` and ``X.filter`` from it, next to the data file or in
``--outdir``, and rewrites ``X.md5`` with lines for them (see
:func:`~shardstream.format.legacy.convert_legacy_index`). The legacy index is left in place.
All files appear together, atomically.

Differences from ``datadings``' ``convert_index`` module (3.4.7), all deliberate:

- it is a subcommand (datadings installed no console script for it);
- without an ``X.md5`` one is created that also covers the data file (datadings failed);
- files are written atomically; ``--outdir`` is created if missing.
"""

from __future__ import annotations

import argparse

from ..format.legacy import convert_legacy_index
from ._remote import require_local_output

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``convert-index`` subcommand."""
    parser = subparsers.add_parser(
        "convert-index",
        help="write new index files for a dataset with a legacy .index",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("infile", help="the data file or its legacy .index file")
    parser.add_argument(
        "-o",
        "--outdir",
        default=None,
        metavar="DIR",
        help="write the new files here (default: next to the data file)",
    )
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Convert the index and print each file written; returns 0."""
    for spec in (args.infile, args.outdir or ""):
        require_local_output("convert-index", spec, "it writes index files next to the data")
    for path in convert_legacy_index(args.infile, args.outdir):
        print(f"wrote {path}")
    return 0
