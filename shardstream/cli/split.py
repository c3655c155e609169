"""``shardstream split``: cut a dataset into consecutive parts at given sample positions.

Positions ``A B`` make three files: ``[0, A)``, ``[A, B)`` and ``[B, end)``: file ``i`` holds
samples ``pos[i-1]`` to ``pos[i] - 1``. Positions must be strictly ascending and inside
``1 .. len - 1``. Outputs are named ``<root>-<i><ext>`` after the input unless ``-o`` gives one
name per part. Samples are copied as raw bytes, never decoded. All outputs are written together
and appear only when every one is complete; any failure leaves none of them.

Differences from ``datadings-split`` (3.4.7), all deliberate:

- exact ranges: datadings' running counter was off by one (with 5 samples and positions ``2 4``
  its files held samples ``[0, 1]``, ``[2, 3, 4]``, ``[4]`` and then it crashed with an
  ``IndexError``);
- positions must be strictly ascending (datadings accepted repeats, making empty files) and bad
  positions, a wrong number of ``-o`` names or an output that is the input are usage errors
  (exit 2; datadings exited 1);
- existing outputs are refused (or confirmed on a terminal) before anything is written, and a
  refusal stops the command (datadings skipped a declined file and wrote the others);
- ``-o`` may be repeated as well as given several names; a manifest or a glob of shards is
  accepted as input (``-o`` is needed for a glob); a ``-o`` name ending in ``.manifest`` is
  written as a sharded set (shards of ``--shard-size`` bytes, by default the input's largest
  data file).
"""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from itertools import islice

from ..format.manifest import is_manifest
from ._common import (
    INPUT_HELP,
    OUTPUT_HELP,
    DatasetOutput,
    add_overwrite_argument,
    add_quiet_argument,
    add_shard_size_argument,
    check_outputs,
    counted,
    is_glob,
    make_progress,
    open_input,
    positive_int,
    shard_size_for,
)

__all__ = ["add_parser", "run", "default_outputs"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``split`` subcommand."""
    parser = subparsers.add_parser(
        "split",
        help="cut a dataset into parts at sample positions",
        description=__doc__.split("\n\n")[0],
        epilog="example: 'shardstream split all.msgpack 1000 -o val.msgpack train.msgpack' "
        "puts samples 0-999 in val.msgpack and the rest in train.msgpack",
    )
    parser.add_argument("infile", help=INPUT_HELP)
    parser.add_argument(
        "positions",
        type=positive_int,
        nargs="+",
        metavar="POS",
        help="index of the first sample of the next part (ascending)",
    )
    parser.add_argument(
        "-o",
        "--outfiles",
        nargs="+",
        action="extend",
        metavar="OUT",
        help="outputs, one per part, each " + OUTPUT_HELP + " (default: <root>-<i><ext> after "
        "the input, packed files for a manifest input)",
    )
    add_shard_size_argument(parser)
    add_overwrite_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the parts; returns 0."""
    parser, positions = args.parser, args.positions
    if any(b <= a for a, b in zip(positions, positions[1:])):
        parser.error(f"positions must be strictly ascending, got {' '.join(map(str, positions))}")
    outputs = args.outfiles
    if outputs is None:
        if is_glob(args.infile):
            parser.error("give the output names with -o when the input is a glob")
        outputs = default_outputs(args.infile, len(positions) + 1)
    elif len(outputs) != len(positions) + 1:
        parser.error(
            f"expected {len(positions) + 1} output names (one per part), got {len(outputs)}"
        )
    check_outputs(parser, [args.infile], outputs)
    shard_size = shard_size_for(parser, args.shard_size, [args.infile], outputs)
    with open_input(args.infile) as reader:
        n = len(reader)
        if n < 2:
            parser.error(f"{args.infile} holds {n} sample{'s' if n != 1 else ''}: nothing to split")
        if positions[-1] >= n:
            parser.error(
                f"position {positions[-1]} is past the last sample: {args.infile} holds {n} "
                f"samples, so positions must be at most {n - 1}"
            )
        bounds = [0, *positions, n]
        with ExitStack() as stack:
            writers = [
                stack.enter_context(
                    DatasetOutput(
                        path=out,
                        shard_size=shard_size if is_manifest(out) else None,
                        overwrite=args.no_confirm,
                    )
                )
                for out in outputs
            ]
            bar = make_progress(args.quiet, n, "split")
            stack.callback(bar.close)
            samples = counted(reader.iter(0, yield_key=True, raw=True), bar)
            for writer, start, stop in zip(writers, bounds, bounds[1:]):
                for key, raw in islice(samples, stop - start):
                    writer.write(key, raw)
        for writer, start, stop in zip(writers, bounds, bounds[1:]):
            print(f"{writer.describe()}: samples {start}-{stop - 1} ({stop - start:,})")
    return 0


def default_outputs(infile: str, parts: int) -> list[str]:
    """Output names ``<root>-<i><ext>`` for ``parts`` parts of ``infile``.

    A manifest's parts are single packed files, so they get the extension ``.msgpack``.

    Args:
        infile: the input path.
        parts: number of outputs.

    Returns:
        The names, ``i`` counting from 0.
    """
    root, ext = os.path.splitext(infile)
    if is_manifest(infile):
        ext = ".msgpack"
    return [f"{root}-{i}{ext}" for i in range(parts)]
