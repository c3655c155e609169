"""``shardstream merge``: write the samples of several datasets into one.

Strategies:

- ``concat``: every sample of the first input in order, then the second, and so on.
- ``random`` (default): each next sample comes from an input drawn with probability
  proportional to the samples it has left, so every interleaving of the inputs is equally
  likely and each input's samples stay in their order (shuffled first with ``--shuffle``).

``--shuffle`` shuffles each input (a :class:`~shardstream.order.Shuffler`) before merging. The
seed of ``random`` and ``--shuffle`` is random unless ``--seed`` is given, and is printed.
Samples are copied as raw bytes, never decoded. Keys must be unique across the inputs: a key
found twice stops the merge with an error naming the key and both inputs, and no output is
written. Class names (``<input>.labels.txt``) are carried when the inputs that have them agree;
inputs naming their classes differently stop the merge before anything is written (a label
number would mean different classes), and an input without names gets a warning.

Differences from ``datadings-merge`` (3.4.7), all deliberate:

- it runs (datadings crashed on ``args.infiles`` before merging);
- ``random`` weighs each input by its *remaining* samples; datadings weighed the inputs by their
  *total* lengths, which is not a uniform interleaving (a smaller input ran out early and the
  end of the output was a long run of the largest input's samples);
- the seed is printed and can be given (datadings used the unseeded global ``random`` for the
  choice and ``Shuffler``'s fixed default seed for ``--shuffle``);
- a duplicate key names the key and both inputs (datadings' writer raised a bare ``ValueError``);
- an empty merge writes an empty dataset (datadings raised ``ValueError("zero samples found")``
  for ``random``);
- an output that is one of the inputs is a usage error (exit 2), datadings exited 1;
- manifests and globs of shards are accepted as inputs; a ``.manifest`` output is written as a
  sharded set (shards of ``--shard-size`` bytes, by default the inputs' largest data file).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import DuplicateKeyError, LabelError
from ..order import Shuffler
from ..read import Reader
from ._common import (
    INPUT_HELP,
    OUTPUT_HELP,
    DatasetOutput,
    add_overwrite_argument,
    add_quiet_argument,
    add_seed_argument,
    add_shard_size_argument,
    check_outputs,
    counted,
    input_labels,
    make_progress,
    random_seed,
    shard_size_for,
)
from ._remote import add_storage_options, open_input, storage_options_of

__all__ = ["add_parser", "run", "merged_labels", "random_interleave"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``merge`` subcommand."""
    parser = subparsers.add_parser(
        "merge",
        help="merge several datasets into one",
        description=__doc__.split("\n\n")[0],
        epilog="concat: inputs one after the other; random: a uniformly random interleaving "
        "that keeps each input's order",
    )
    parser.add_argument("infiles", nargs="+", metavar="infile", help=INPUT_HELP)
    parser.add_argument("outfile", help=f"the merged dataset to write: {OUTPUT_HELP}")
    parser.add_argument(
        "-s",
        "--strategy",
        choices=("concat", "random"),
        default="random",
        help="how to interleave the inputs (default: random)",
    )
    parser.add_argument("--shuffle", action="store_true", help="shuffle each input first")
    add_seed_argument(parser, "seed of the random choices and shuffles (default: random, printed)")
    add_shard_size_argument(parser)
    add_storage_options(parser)
    add_overwrite_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the merged dataset; returns 0."""
    check_outputs(args.parser, args.infiles, [args.outfile])
    options = storage_options_of(args)
    shard_size = shard_size_for(args.parser, args.shard_size, args.infiles, [args.outfile], options)
    labels = merged_labels(args.infiles, options)
    readers: list[Reader] = []
    try:
        for spec in args.infiles:
            readers.append(open_input(args, spec))
        _merge(args, readers, shard_size, labels)
    finally:
        for reader in readers:
            reader.close()
    return 0


def merged_labels(
    infiles: list[str], storage_options: dict[str, Any] | None = None
) -> list[str] | None:
    """The class names of the merged dataset: those of the inputs that have a names file.

    Inputs whose names files agree (the same names in the same order) give those names; an
    input without one gets a warning on stderr (its labels are taken to mean the same classes).

    Args:
        infiles: the input arguments.
        storage_options: for URL inputs.

    Returns:
        The names, or None when no input has a names file.

    Raises:
        LabelError: two inputs name their classes differently (nothing is written: the same
            label number would mean different classes in the merged set).
    """
    found = [(spec, input_labels(spec, storage_options)) for spec in infiles]
    named = [(spec, names) for spec, names in found if names is not None]
    if not named:
        return None
    first_spec, first = named[0]
    for spec, names in named[1:]:
        if names != first:
            where = next(
                (i for i, (a, b) in enumerate(zip(first, names)) if a != b),
                min(len(first), len(names)),
            )
            raise LabelError(
                f"{spec}: its class names differ from those of {first_spec} (label {where}: "
                f"{_name_at(names, where)} vs {_name_at(first, where)}); a merged label would "
                "mean different classes (nothing was written)"
            )
    for spec, maybe_names in found:
        if maybe_names is None:
            print(
                f"shardstream merge: warning: {spec} has no class names file; its labels are "
                f"taken to mean the {len(first)} classes of {first_spec}",
                file=sys.stderr,
            )
    return first


def _name_at(names: list[str], index: int) -> str:
    return repr(names[index]) if index < len(names) else f"none ({len(names)} names)"


def random_interleave(lengths: list[int], rng: random.Random) -> Iterator[int]:
    """Input numbers in merge order: each step picks an input with probability proportional
    to the samples it has left.

    Args:
        lengths: samples per input.
        rng: the random generator (one ``randrange`` call per sample).

    Returns:
        An iterator yielding input ``i`` exactly ``lengths[i]`` times.
    """
    remaining = list(lengths)
    total = sum(remaining)
    while total:
        draw = rng.randrange(total)
        source = 0
        while draw >= remaining[source]:
            draw -= remaining[source]
            source += 1
        remaining[source] -= 1
        total -= 1
        yield source


# --- helpers --------------------------------------------------------------------------------


def _merge(
    args: argparse.Namespace,
    readers: list[Reader],
    shard_size: int | None,
    labels: list[str] | None,
) -> None:
    needs_seed = args.strategy == "random" or args.shuffle
    seed = (random_seed() if args.seed is None else args.seed) if needs_seed else None
    rng = random.Random(seed)
    sources: list[Any] = readers
    if args.shuffle:
        sources = [Shuffler(r, seed=rng.randrange(2**32)) for r in readers]
    streams = [s.iter(yield_key=True, raw=True) for s in sources]
    if args.strategy == "concat":
        order: Iterator[int] = (i for i, r in enumerate(readers) for _ in range(len(r)))
    else:
        order = random_interleave([len(r) for r in readers], rng)
    total = sum(len(r) for r in readers)
    source = -1
    key = None
    try:
        with DatasetOutput(
            path=args.outfile,
            shard_size=shard_size,
            overwrite=args.no_confirm,
            labels=labels,
            storage_options=storage_options_of(args),
        ) as writer:
            if seed is not None:
                print(f"seed: {seed} (--seed {seed} repeats this merge)", flush=True)
            bar = make_progress(args.quiet, total, "merge")
            try:
                for source in counted(order, bar):
                    key, raw = next(streams[source])
                    writer.write(key, raw)
            finally:
                bar.close()
    except DuplicateKeyError:
        first = _first_holder(readers, key, source)
        raise DuplicateKeyError(
            f"{args.outfile}: key {key!r} of input {args.infiles[source]} is also in input "
            f"{args.infiles[first]}; merged keys must be unique (nothing was written)"
        ) from None
    print(f"wrote {writer.written:,} samples from {len(readers)} inputs to {writer.describe()}")


def _first_holder(readers: list[Reader], key: Any, current: int) -> int:
    """The first input other than ``current`` holding ``key`` (``current`` if none does)."""
    for i, reader in enumerate(readers):
        if i != current and key in reader:
            return i
    return current
