"""What the dataset subcommands share: opening inputs, naming outputs, common options.

An input argument is one of

- a packed data file (or any of its sidecar files): opened as a
  :class:`~shardstream.read.MsgpackReader`;
- a ``*.manifest``: its shards opened as one :class:`~shardstream.read.ShardedReader`;
- a glob pattern (``*``, ``?`` or ``[`` and no file of that exact name): the data files it matches
  (files with a ``.offsets`` or legacy ``.index`` next to them; a matched sidecar stands for its
  data file), sorted, opened as one :class:`~shardstream.read.ShardedReader`.

Not a subcommand: the leading underscore keeps :func:`shardstream.cli.command_modules` from
loading it as one.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import DatasetNotFoundError
from ..format.manifest import is_manifest, load_manifest
from ..format.paths import DatasetPaths
from ..read import MsgpackReader, Reader, ShardedReader

__all__ = [
    "INPUT_HELP",
    "add_overwrite_argument",
    "add_quiet_argument",
    "add_seed_argument",
    "check_outputs",
    "counted",
    "input_data_files",
    "is_glob",
    "make_progress",
    "nonnegative_int",
    "open_input",
    "positive_float",
    "positive_int",
    "random_seed",
]

#: Help text of an input argument.
INPUT_HELP = "a packed data file, a *.manifest of shards, or a quoted glob of shard files"

#: Samples written between progress bar updates (tqdm's per-call cost adds up otherwise).
PROGRESS_STEP = 256


def is_glob(spec: str) -> bool:
    """Whether ``spec`` is read as a glob pattern: it has ``*?[`` and no file has that exact name."""
    return any(c in spec for c in "*?[") and not os.path.exists(spec)


def input_data_files(spec: str) -> list[Path]:
    """The data files an input argument stands for, in dataset order.

    Args:
        spec: a data file (or sidecar), a ``*.manifest`` or a glob pattern.

    Returns:
        One path for a single data file; the shards in order for a manifest or glob.

    Raises:
        DatasetNotFoundError: the file or manifest does not exist, or the glob matches nothing.
        CorruptIndexError: a malformed manifest.
    """
    if is_manifest(spec):
        return load_manifest(spec).shard_paths()
    if is_glob(spec):
        found = {DatasetPaths.of(match) for match in glob.glob(spec)}
        matches = sorted(p.data for p in found if p.offsets.exists() or p.legacy_index.exists())
        if not matches:
            raise DatasetNotFoundError(
                spec, "glob pattern matches no data file (one with a .offsets or .index file)"
            )
        return matches
    return [DatasetPaths.of(spec).data]


def open_input(spec: str) -> Reader:
    """Open an input argument as one reader (see the module docstring for what it accepts).

    Raises:
        DatasetNotFoundError, MissingIndexError, NotADatasetFileError, CorruptIndexError,
        IndexMismatchError: the input is missing or not a readable dataset.
    """
    if is_manifest(spec):
        return ShardedReader(spec)
    if is_glob(spec):
        return ShardedReader([MsgpackReader(path) for path in input_data_files(spec)])
    return MsgpackReader(spec)


def check_outputs(
    parser: argparse.ArgumentParser, inputs: Iterable[str], outputs: Iterable[str]
) -> None:
    """Exit with a usage error (code 2) if an output is an input or two outputs are the same file.

    Compares the real paths of the data files (sidecars count as their data file), so
    ``in.msgpack`` and ``./in.msgpack.offsets`` are the same dataset.
    """
    taken: dict[str, str] = {}
    for spec in inputs:
        taken[_real(spec)] = spec
        try:
            files = input_data_files(spec)
        except (DatasetNotFoundError, OSError, ValueError):
            continue  # opening the input reports this with its own message
        for path in files:
            taken[_real(path)] = spec
    outputs_seen: dict[str, str] = {}
    for out in outputs:
        real = _real(DatasetPaths.of(out).data)
        if real in taken:
            parser.error(f"input and output must be different files: {out} is input {taken[real]}")
        if real in outputs_seen:
            parser.error(f"output {out} given twice (also as {outputs_seen[real]})")
        outputs_seen[real] = out


def random_seed() -> int:
    """A fresh seed for commands whose order is random unless ``--seed`` is given."""
    return random.SystemRandom().randrange(2**32)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _checked(text, int, lambda v: v >= 1, "an integer >= 1")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _checked(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _checked(text, float, lambda v: 0 < v < float("inf"), "a number > 0")


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``-y/--no-confirm`` (overwrite existing outputs without asking)."""
    parser.add_argument(
        "-y",
        "--no-confirm",
        dest="no_confirm",
        action="store_true",
        help="overwrite existing outputs without asking (otherwise a terminal is asked and "
        "anything else fails)",
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``-q/--quiet`` (no progress bars)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def add_seed_argument(parser: argparse.ArgumentParser, default_help: str) -> None:
    """Add ``--seed S`` with a help text saying what happens without it."""
    parser.add_argument("--seed", type=nonnegative_int, default=None, help=default_help)


def make_progress(
    quiet: bool, total: int | None, desc: str, unit: str = " samples", unit_scale: bool = False
) -> Any:
    """A tqdm bar on stderr (disabled when ``quiet``; shown only for work longer than 0.5 s)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit_scale,
        disable=quiet,
        leave=False,
        delay=0.5,
    )


def counted(items: Iterable[Any], bar: Any) -> Iterator[Any]:
    """Yield ``items``, advancing ``bar`` every :data:`PROGRESS_STEP` items and at the end."""
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == PROGRESS_STEP:
            bar.update(pending)
            pending = 0
    bar.update(pending)


# --- helpers --------------------------------------------------------------------------------


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def _checked(text: str, kind: type, ok: Any, wanted: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
    return value
