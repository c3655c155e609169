"""What the commands that copy one dataset's samples into a new one share (``sample``, ``shuffle``).

Such a command takes an input and an output (:func:`add_copy_parser`), checks them and picks the
shard size before opening anything (:func:`copy_shard_size`), and copies raw samples, never
decoded, into a :class:`~shardstream.cli._common.DatasetOutput` that keeps the input's class
names, with a progress bar (:func:`write_copy`).

Not a subcommand: the leading underscore keeps :func:`shardstream.cli.command_modules` from
loading it as one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

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
    shard_size_for,
)
from ._remote import add_storage_options, storage_options_of

__all__ = ["add_copy_parser", "copy_shard_size", "write_copy"]


def add_copy_parser(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    outfile_help: str,
    seed_help: str,
    arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """Register a copying subcommand: ``infile outfile``, its own arguments, then ``--seed``,
    ``--shard-size``, ``-y`` and ``-q``.

    Args:
        subparsers: the ``shardstream`` subparsers.
        name: the command's name.
        help: its one-line help.
        description: its description.
        outfile_help: what the output is, before the common words on output arguments.
        seed_help: what ``--seed`` seeds, and what happens without it.
        arguments: adds the command's own arguments after the output.
        run: the command's ``run(args)``.

    Returns:
        The command's parser (``args.parser`` when it runs).
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument("infile", help=INPUT_HELP)
    parser.add_argument("outfile", help=f"{outfile_help}: {OUTPUT_HELP}")
    arguments(parser)
    add_seed_argument(parser, seed_help)
    add_shard_size_argument(parser)
    add_storage_options(parser)
    add_overwrite_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(run=run, parser=parser)
    return parser


def copy_shard_size(args: argparse.Namespace) -> int | None:
    """Check the input and output of a copying command, before anything is opened or written.

    Returns:
        The shard size of a ``.manifest`` output (see
        :func:`~shardstream.cli._common.shard_size_for`).

    Raises:
        SystemExit: a usage error (status 2): the output is the input or one of its shards.
    """
    check_outputs(args.parser, [args.infile], [args.outfile])
    return shard_size_for(
        args.parser, args.shard_size, [args.infile], [args.outfile], storage_options_of(args)
    )


def write_copy(
    args: argparse.Namespace,
    samples: Iterable[tuple[str, bytes]],
    *,
    shard_size: int | None,
    total: int,
    desc: str,
    announce: str | None = None,
) -> DatasetOutput:
    """Write ``(key, raw bytes)`` samples to ``args.outfile``, with the input's class names.

    Args:
        args: the parsed options (``infile``, ``outfile``, ``no_confirm``, ``quiet``).
        samples: the samples to copy, in output order.
        shard_size: from :func:`copy_shard_size`.
        total: the samples expected (for the progress bar).
        desc: the progress bar's label.
        announce: a line printed (and flushed) once the output is open, before copying.

    Returns:
        The closed output (``written``, ``describe()``).

    Raises:
        DatasetExistsError: the output exists and may not be replaced.
        ShardstreamError: reading a sample or writing the output failed (nothing is written).
    """
    options = storage_options_of(args)
    with DatasetOutput(
        path=args.outfile,
        shard_size=shard_size,
        overwrite=args.no_confirm,
        labels=input_labels(args.infile, options),
        storage_options=options,
    ) as writer:
        if announce is not None:
            print(announce, flush=True)
        bar = make_progress(args.quiet, total, desc)
        try:
            for key, raw in counted(samples, bar):
                writer.write(key, raw)
        finally:
            bar.close()
    return writer
