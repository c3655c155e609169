"""Run a read benchmark on a given dataset (``shardstream bench``).

Reads msgpack files, shards, ZIP files or directory trees (see
:class:`~shardstream.read.DirectoryReader` for patterns). datadings' ``-b/--buffering`` is
accepted; shardstream's reader memory-maps the file, so it changes nothing.
"""

from __future__ import annotations

import argparse
import os.path as pt
import time
from collections.abc import Callable, Sequence
from typing import Any

from ....cli import main as cli_main
from ..reader import DirectoryReader, MsgpackReader, Shuffler
from ..tools import make_printer
from . import argv_or_sys, entry_point

__all__ = ["bench", "entry", "main", "reader_directory", "reader_msgpack"]


def reader_msgpack(args: Any) -> tuple[MsgpackReader, int]:
    """A :class:`MsgpackReader` of ``args.infile`` (``args.buffering`` is passed on) and the
    file's size in bytes."""
    kwargs = {"buffering": args.buffering} if getattr(args, "buffering", None) else {}
    return MsgpackReader(args.infile, **kwargs), pt.getsize(args.infile)


def reader_directory(args: Any) -> tuple[DirectoryReader, int]:
    """A :class:`DirectoryReader` of ``args.infile`` (``separator``, ``include``, ``exclude``,
    ``root_dir`` from ``args``) and 0 (bytes are counted while reading)."""
    reader = DirectoryReader(
        args.infile,
        separator=args.separator,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        root_dir=args.root_dir,
    )
    return reader, 0


def bench(readerfun: Callable[[Any], tuple[Any, int]], args: Any) -> None:
    """Time reading every sample of ``readerfun(args)`` (``args.shuffle``: in a
    :class:`Shuffler`'s order, ``args.raw``: packed bytes only) and print the figures as
    datadings does (MB = 2**20 bytes)."""
    started = time.time()
    reader, num_bytes = readerfun(args)
    if args.shuffle:
        reader = Shuffler(reader)
    print("setup time:", time.time() - started, "seconds")
    printer = make_printer(desc="bench " + pt.basename(args.infile), total=len(reader))
    started = time.time()
    for _ in reader.rawiter() if args.raw else reader:
        printer()
    seconds = max(time.time() - started, 1e-9)
    count = printer.n
    printer.close()
    rate = num_bytes / seconds / 1024 / 1024
    print(
        f"{count} samples read in {seconds:.2f} seconds, {count / seconds:.2f} samples/s, "
        f"{rate:.2f} MB/s"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("infile")
    parser.add_argument("-r", "--raw", action="store_true")
    parser.add_argument("-s", "--shuffle", action="store_true")
    parser.add_argument("-b", "--buffering", type=int)
    parser.add_argument("--separator", type=str, default="\t")
    parser.add_argument("--root-dir", type=str, default="")
    parser.add_argument("--include", nargs="+", type=str, default=())
    parser.add_argument("--exclude", nargs="+", type=str, default=())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``bench INFILE [-r] [-s] [-b N] [--separator S] [--root-dir D] [--include P ...]
    [--exclude P ...]``, run by ``shardstream bench``; returns the exit code."""

    args = _parser().parse_args(argv_or_sys(argv))
    engine = [args.infile, "--separator", args.separator, "--root-dir", args.root_dir]
    engine += ["-r"] * args.raw + ["-s"] * args.shuffle
    for option, patterns in (("--include", args.include), ("--exclude", args.exclude)):
        if patterns:
            engine += [option, *patterns]
    return cli_main(["bench", *engine])


def entry() -> None:
    """Run :func:`main` as a script."""
    entry_point(main)


if __name__ == "__main__":
    entry()
