"""``shardstream export FORMAT IN OUT``: write a packed set as WebDataset tar shards or Parquet.

- ``export webdataset IN OUTDIR``: tar shards ``OUTDIR/<name>-000000.tar``, ... that the
  ``webdataset`` package reads (``--samples-per-shard`` samples each);
- ``export parquet IN OUT.parquet``: one Parquet file, a row per sample, images as binary
  columns (opens in Hugging Face ``datasets``, DuckDB, pandas).

Nothing is lost: ``shardstream write webdataset OUTDIR/*.tar`` (every member is kept by default)
and ``shardstream write parquet OUT.parquet`` give every sample back exactly (the field mapping is described in
:mod:`shardstream.format.interchange`). Outputs are written atomically.
"""

from __future__ import annotations

import argparse
import sys

from ..write.export import DEFAULT_ROWS_PER_GROUP, export_parquet, export_webdataset
from ..write.sharded import sharded_output_paths
from ._common import INPUT_HELP, add_overwrite_argument, add_quiet_argument, make_progress
from ._remote import add_storage_options, open_input, require_local_output

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``export`` subcommand with its ``webdataset`` and ``parquet`` formats."""
    parser = subparsers.add_parser(
        "export",
        help="write a packed set as WebDataset tar shards or a Parquet file (lossless)",
        description=__doc__.split("\n\n")[0],
    )
    formats = parser.add_subparsers(dest="export_format", metavar="FORMAT")
    wds = formats.add_parser(
        "webdataset", help="WebDataset tar shards", description="Write WebDataset tar shards."
    )
    wds.add_argument("input", help=INPUT_HELP)
    wds.add_argument("outdir", help="folder of the tar shards")
    wds.add_argument("--name", default=None, help="shard name stem (default: the input's name)")
    wds.add_argument(
        "--samples-per-shard", type=_positive, default=10_000, help="samples per tar shard"
    )
    parquet = formats.add_parser(
        "parquet", help="one Parquet file", description="Write one Parquet file."
    )
    parquet.add_argument("input", help=INPUT_HELP)
    parquet.add_argument("output", help="the Parquet file")
    parquet.add_argument(
        "--rows-per-group", type=_positive, default=DEFAULT_ROWS_PER_GROUP, help="rows per group"
    )
    for sub in (wds, parquet):
        add_storage_options(sub)
        add_overwrite_argument(sub)
        add_quiet_argument(sub)
    parser.set_defaults(run=run, export_format=None, export_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export the input; print one line naming what was written."""
    if args.export_format is None:
        args.export_parser.print_usage(sys.stderr)
        print("shardstream export: error: name a FORMAT: parquet, webdataset", file=sys.stderr)
        return 2
    output = args.outdir if args.export_format == "webdataset" else args.output
    require_local_output(f"export {args.export_format}", output, "the exporters write files")
    reader = open_input(args, args.input)
    try:
        total = len(reader)
        with make_progress(args.quiet, total, _name_of(args.input)) as bar:

            def advance(done: int) -> None:
                bar.update(done - bar.n)

            if args.export_format == "webdataset":
                name = args.name or sharded_output_paths(_name_of(args.input))[1]
                shards = export_webdataset(
                    iter(reader),
                    args.outdir,
                    name=name,
                    samples_per_shard=args.samples_per_shard,
                    overwrite=args.no_confirm,
                    progress=advance,
                )
                print(f"{total:,} samples -> {len(shards)} tar shard(s) in {args.outdir}")
            else:
                export_parquet(
                    lambda: iter(reader),
                    args.output,
                    rows_per_group=args.rows_per_group,
                    overwrite=args.no_confirm,
                    progress=advance,
                )
                print(f"{total:,} samples -> {args.output}")
    finally:
        reader.close()
    return 0


def _name_of(spec: str) -> str:
    """The last name of a path or URL (``Path`` would fold a URL's ``//``)."""
    return spec.rstrip("/").rsplit("/", 1)[-1]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an int: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
