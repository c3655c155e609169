"""datadings' ``tools.argparse``: parsers with datadings' common arguments.

Each ``argument_<name>(parser, *args, **kwargs)`` adds one argument; extra ``args`` are more
option strings and ``kwargs`` override the defaults (``argument_shuffle(parser, default="no")``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from multiprocessing import cpu_count
from typing import Any

__all__ = [
    "MinMaxAction",
    "YesNoAction",
    "argument_calculate_weights",
    "argument_indir",
    "argument_infile",
    "argument_no_confirm",
    "argument_outdir",
    "argument_outfile",
    "argument_outfile_positional",
    "argument_outfiles",
    "argument_shuffle",
    "argument_skip_verification",
    "argument_threads",
    "make_parser",
    "make_parser_simple",
]


class YesNoAction(argparse.Action):
    """Store ``value == "yes"`` (for ``choices=["yes", "no"]``)."""

    def __call__(self, parser: Any, namespace: Any, yesno: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, yesno == "yes")


class MinMaxAction(argparse.Action):
    """Clamp the value to ``[min_value, max_value]`` (set both in a subclass); a missing or
    zero value becomes ``max_value``."""

    min_value: Any = None
    max_value: Any = None

    def __call__(self, parser: Any, namespace: Any, value: Any, option_string: Any = None) -> None:
        value = max(self.min_value, value or self.max_value)
        setattr(namespace, self.dest, min(value, self.max_value))


def make_parser(
    description: str | None,
    indir: bool = True,
    outdir: bool = True,
    no_confirm: bool = True,
    skip_verification: bool = True,
    shuffle: bool = True,
    formatter_class: type[argparse.HelpFormatter] = argparse.RawDescriptionHelpFormatter,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the chosen common arguments; ``kwargs`` go to the parser."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=formatter_class, **kwargs
    )
    for wanted, add in (
        (indir, argument_indir),
        (outdir, argument_outdir),
        (no_confirm, argument_no_confirm),
        (skip_verification, argument_skip_verification),
        (shuffle, argument_shuffle),
    ):
        if wanted:
            add(parser)
    return parser


def make_parser_simple(
    description: str | None,
    indir: bool = False,
    outdir: bool = False,
    no_confirm: bool = False,
    skip_verification: bool = False,
    shuffle: bool = False,
    formatter_class: type[argparse.HelpFormatter] = argparse.RawDescriptionHelpFormatter,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """:func:`make_parser` that adds no argument unless asked."""
    return make_parser(
        description,
        indir=indir,
        outdir=outdir,
        no_confirm=no_confirm,
        skip_verification=skip_verification,
        shuffle=shuffle,
        formatter_class=formatter_class,
        **kwargs,
    )


def _argument(*names: str, **defaults: Any) -> Callable[..., None]:
    def add(*args: Any, **kwargs: Any) -> None:
        parser, extra = args[0], args[1:]
        parser.add_argument(*names, *extra, **{**defaults, **kwargs})

    add.__doc__ = f"parser.add_argument({', '.join(map(repr, names))}, **{defaults!r} | kwargs)"
    return add


argument_indir = _argument(
    "indir",
    type=str,
    default=".",
    metavar="INDIR",
    help="Directory that contains dataset source files.",
)
argument_outdir = _argument(
    "-o",
    "--outdir",
    type=str,
    default=None,
    metavar="PATH",
    help="Output directory. Defaults to indir.",
)
argument_infile = _argument("infile", type=str, default=None, help="Input file.")
argument_outfile = _argument(
    "-o", "--outfile", type=str, default=None, metavar="PATH", help="Output file."
)
argument_outfile_positional = _argument("outfile", type=str, help="Output file.")
argument_outfiles = _argument(
    "-o", "--outfiles", type=str, default=None, metavar="PATH", help="Output files.", nargs="+"
)
argument_no_confirm = _argument(
    "-y",
    "--no-confirm",
    dest="no_confirm",
    action="store_true",
    help="Don’t require user interaction.",
)
argument_skip_verification = _argument(
    "-s", "--skip-verification", action="store_true", help="Skip verification of source files."
)
argument_shuffle = _argument(
    "--shuffle",
    default="yes",
    choices=["yes", "no"],
    action=YesNoAction,
    help="Write samples in random order. (default: yes)",
)
argument_calculate_weights = _argument(
    "--calculate-weights", action="store_true", help="Calculate median-frequency class weights."
)


def argument_threads(
    parser: argparse.ArgumentParser, default: int = 1, max_threads: int = 0
) -> None:
    """Add ``-t/--threads`` clamped to ``1..cpus``: ``max_threads`` > 0 is the limit, 0 means
    ``cpu_count()``, < 0 means ``-max_threads * cpu_count()``."""
    cpus = cpu_count() * -max_threads if max_threads < 0 else max_threads or cpu_count()

    class Action(MinMaxAction):
        min_value = 1
        max_value = cpus

    default = min(default, cpus)
    parser.add_argument(
        "-t",
        "--threads",
        default=default,
        metavar=f"0-{cpus}",
        type=int,
        action=Action,
        help=f"Number of threads for conversion. 0 uses all available CPUs (default {default}).",
    )
