"""``shardstream sample``: write N samples of a dataset to a new one.

Strategies:

- ``random`` (default): the first N samples of a :class:`~shardstream.order.Shuffler`'s first
  epoch, in that shuffled order. Without ``--seed`` the Shuffler's default seed
  (``len(dataset)``) is used, exactly as datadings does, so the same input always gives the
  same sample; ``--seed`` picks another.
- ``sequential``: the first N samples in order.

Samples are copied as raw bytes, never decoded. Asking for more samples than the dataset holds
prints a warning and writes all of them. The input's class names (``<input>.labels.txt``) are
written next to the output.

Differences from ``datadings-sample`` (3.4.7), all deliberate:

- ``--seed`` (datadings had no way to draw another random sample);
- the warning goes to stderr (datadings printed it to stdout) and the output is refused before
  writing if it exists (datadings' sample had no ``-y`` and always asked);
- an output that is the input is a usage error (exit 2), datadings exited 1; N must be >= 1;
- a manifest or a glob of shards is accepted as input; a ``.manifest`` output is written as a
  sharded set (shards of ``--shard-size`` bytes, by default the input's largest data file).
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice

from ..order import Shuffler
from ._common import positive_int
from ._copy import add_copy_parser, copy_shard_size, write_copy
from ._remote import open_input

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``sample`` subcommand."""
    return add_copy_parser(
        subparsers,
        "sample",
        help="write N random or leading samples to a new dataset",
        description=__doc__.split("\n\n")[0],
        outfile_help="the dataset to write",
        seed_help="seed of the random sample (default: the dataset's length)",
        arguments=_add_arguments,
        run=run,
    )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", type=positive_int, metavar="N", help="samples to write")
    parser.add_argument(
        "-s",
        "--strategy",
        choices=("random", "sequential"),
        default="random",
        help="random: first N of a shuffled order; sequential: first N (default: random)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the sample; returns 0."""
    shard_size = copy_shard_size(args)
    with open_input(args, args.infile) as reader:
        n = len(reader)
        number = args.number
        if number > n:
            print(
                f"shardstream sample: warning: N = {number} is more than the {n} samples of "
                f"{args.infile}; writing all {n}",
                file=sys.stderr,
            )
            number = n
        if args.strategy == "random":
            samples = Shuffler(reader, seed=args.seed).iter(yield_key=True, raw=True)
        else:
            samples = reader.iter(0, number, yield_key=True, raw=True)
        writer = write_copy(
            args, islice(samples, number), shard_size=shard_size, total=number, desc="sample"
        )
        print(f"wrote {writer.written:,} of {n:,} samples ({args.strategy}) to {writer.describe()}")
    return 0
