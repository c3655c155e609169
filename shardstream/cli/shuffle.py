"""``shardstream shuffle``: write a copy of a dataset with its samples in random order.

By default a :class:`~shardstream.order.QuasiShuffler` (fast: reads contiguous chunks of
``--chunk-size`` samples and mixes them through a buffer of ``--buf-size`` samples); with
``--true-shuffle`` a :class:`~shardstream.order.Shuffler` (a uniform permutation, random reads).
Samples are copied as raw bytes, never decoded. The seed is random unless ``--seed`` is given and
is printed either way, so ``--seed`` repeats a run exactly. The input's class names
(``<input>.labels.txt``) are written next to the output.

Differences from ``datadings-shuffle`` (3.4.7), all deliberate:

- without ``--buf-size`` the quasi shuffle uses its documented default 0.01 (1 % of the
  dataset); datadings crashed with a ``TypeError``;
- without ``--chunk-size`` it uses 16 (the QuasiShuffler default; datadings passed None);
- the seed is printed and can be given; datadings drew an unrecorded random seed for the quasi
  shuffle and always used seed ``len(dataset)`` for ``--true-shuffle`` (the same order on every
  run); here both draw a random seed unless ``--seed`` is given;
- input and output being the same file is a usage error (exit 2), datadings exited 1;
- a manifest or a glob of shards is accepted as input; a ``.manifest`` output is written as a
  sharded set (shards of ``--shard-size`` bytes, by default the input's largest data file).
"""

from __future__ import annotations

import argparse

from ..order import QuasiShuffler, Shuffler
from ._common import positive_float, positive_int, random_seed
from ._copy import add_copy_parser, copy_shard_size, write_copy
from ._remote import open_input

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``shuffle`` subcommand."""
    return add_copy_parser(
        subparsers,
        "shuffle",
        help="write a shuffled copy of a dataset",
        description=__doc__.split("\n\n")[0],
        outfile_help="the shuffled dataset to write",
        seed_help="seed of the order (default: random, printed)",
        arguments=_add_arguments,
        run=run,
    )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--true-shuffle",
        action="store_true",
        help="uniform random permutation (random reads; slower on disks than the default)",
    )
    parser.add_argument(
        "--buf-size",
        type=positive_float,
        default=0.01,
        help="quasi shuffle buffer in samples; any value below 1 means 1%% of the dataset "
        "(default: 0.01). Bigger is more random and uses more memory",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=16,
        help="quasi shuffle: consecutive samples read at once (default: 16). Bigger is faster "
        "and less random",
    )


def run(args: argparse.Namespace) -> int:
    """Write the shuffled copy; returns 0."""
    shard_size = copy_shard_size(args)
    seed = random_seed() if args.seed is None else args.seed
    with open_input(args, args.infile) as reader:
        order: Shuffler | QuasiShuffler
        if args.true_shuffle:
            order = Shuffler(reader, seed=seed)
            how = "true shuffle"
        else:
            quasi = QuasiShuffler(
                reader, buf_size=args.buf_size, chunk_size=args.chunk_size, seed=seed
            )
            how = f"quasi shuffle, buffer {quasi.buf_size} samples, chunks of {quasi.chunk_size}"
            order = quasi
        writer = write_copy(
            args,
            order.iter(yield_key=True, raw=True),
            shard_size=shard_size,
            total=len(reader),
            desc="shuffle",
            announce=f"seed: {seed} ({how}; --seed {seed} repeats this order)",
        )
        print(f"wrote {writer.written:,} samples to {writer.describe()}")
    return 0
