"""``shardstream cat``: print every sample of a dataset, one abbreviated line each.

Lines are made with :mod:`reprlib`: strings and bytes longer than ``--maxstring`` characters keep
their start and end around ``...``; dicts show every field; nested lists and deeper levels are
cut as reprlib does. A closed pipe (``shardstream cat x | head -1``) ends the command quietly with
exit code 0.

Differences from ``datadings-cat`` (3.4.7), all deliberate:

- bytes are abbreviated at ``--maxstring`` like strings (datadings cut them at reprlib's fixed 30
  characters whatever ``--maxstring`` said), and numpy arrays print on one line;
- field names are never abbreviated (datadings cut them like any string);
- no empty line is printed after the last sample;
- a manifest or a glob of shards is accepted besides a single file.
"""

from __future__ import annotations

import argparse
import os
import reprlib
import sys
from typing import Any

from ..read.open import open_dataset
from ._common import INPUT_HELP, positive_int
from ._remote import add_storage_options, storage_options_of

__all__ = ["add_parser", "run", "SampleRepr"]


class SampleRepr(reprlib.Repr):
    """reprlib settings for one-line sample summaries.

    Args:
        maxstring: strings and bytes longer than this are abbreviated (start ``...`` end).
    """

    def __init__(self, *, maxstring: int = 40) -> None:
        super().__init__()
        self.maxstring = maxstring
        self.maxother = max(self.maxother, maxstring)
        self.maxdict = sys.maxsize  # every field of a sample

    def repr_dict(self, value: dict, level: int) -> str:
        """Fields sorted by name (as reprlib does), names never abbreviated."""
        if not value:
            return "{}"
        if level <= 0:
            return "{...}"
        try:
            names = sorted(value)
        except TypeError:
            names = list(value)
        parts = [
            (repr(name) if isinstance(name, str) else self.repr1(name, level - 1))
            + ": "
            + self.repr1(value[name], level - 1)
            for name in names
        ]
        return "{" + ", ".join(parts) + "}"

    def repr_bytes(self, value: bytes, level: int) -> str:
        """``bytes`` abbreviated like ``str``."""
        return _abbreviate(repr(value), self.maxstring)

    def repr_bytearray(self, value: bytearray, level: int) -> str:
        """``bytearray`` abbreviated like ``str``."""
        return _abbreviate(repr(value), self.maxstring)

    def repr_ndarray(self, value: Any, level: int) -> str:
        """A numpy array on one line, abbreviated in the middle."""
        return _abbreviate(" ".join(repr(value).split()), self.maxother)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``cat`` subcommand."""
    parser = subparsers.add_parser(
        "cat",
        help="print every sample, abbreviated",
        description=__doc__.split("\n\n")[0] + " A broken pipe ends it quietly.",
    )
    parser.add_argument("infile", help=INPUT_HELP)
    add_storage_options(parser)
    parser.add_argument(
        "-s",
        "--maxstring",
        type=positive_int,
        default=40,
        help="abbreviate strings and bytes longer than this (default: 40)",
    )
    parser.set_defaults(run=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print one line per sample; returns 0 (also when the reader of the pipe went away)."""
    shorten = SampleRepr(maxstring=args.maxstring).repr
    with open_dataset(args.infile, storage_options=storage_options_of(args)) as reader:
        write = sys.stdout.write
        try:
            for sample in reader:
                write(shorten(sample))
                write("\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # Nobody reads any more: point stdout at /dev/null so the flush at exit stays quiet.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    return 0


def _abbreviate(text: str, limit: int) -> str:
    """reprlib's abbreviation: keep the start and the end, ``...`` between."""
    if len(text) <= limit:
        return text
    head = max(0, (limit - 3) // 2)
    tail = max(0, limit - 3 - head)
    return text[:head] + "..." + (text[len(text) - tail :] if tail else "")
