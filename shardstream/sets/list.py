"""list: images named in a CSV or TSV list file, one per line: ``path[,label[,...]]``.

The key is the path as written in the file; the file itself is ``--root-dir``/path (paths are
relative to the working directory by default, as for
:class:`~shardstream.read.DirectoryReader` list files). Labels are class names numbered in natural
order (``b2`` before ``b10``), or in the order of a ``--labels`` file (one name per line), or,
with ``--int-labels``, the numbers written in the file. Lines without a label column give
unlabelled samples; further columns are ignored. Blank lines are skipped; ``--header`` skips the
first line. The separator is ``,`` for ``*.csv`` files and a tab otherwise (``--separator``);
quoting follows the :mod:`csv` module. A listed file larger than ``--max-sample-bytes``
(default 256 MiB) is a bad source, refused before it is read.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from natsort import natsorted

from ..errors import DuplicateKeyError, LabelError, NothingToConvertError, SourceNotFoundError
from ..read.list import load_labels
from ..write.conversion import Item
from ..write.loaders import DEFAULT_MAX_SAMPLE_BYTES, read_file
from .imagefolder import FolderScan, add_limit_arguments

__all__ = ["NAME", "SOURCES", "ListLine", "add_arguments", "items", "label_names", "scan_list"]

NAME = "list"
SOURCES: tuple = ()


@dataclass(frozen=True)
class ListLine:
    """One sample line of a list file.

    Attributes:
        number: the line number (1-based).
        path: the path as written.
        label: the label column (``None`` without one).
    """

    number: int
    path: str
    label: str | None


def scan_list(
    list_file: str | os.PathLike,
    *,
    separator: str | None = None,
    root_dir: str | os.PathLike = "",
    header: bool = False,
    labels: Sequence[str] | str | os.PathLike | None = None,
    int_labels: bool = False,
    class_names: bool = False,
    max_sample_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
) -> FolderScan:
    """Read a list file and describe each line as an Item.

    Args:
        list_file: the CSV/TSV file (UTF-8).
        separator: the column separator; ``None``: ``,`` for ``*.csv``, else a tab.
        root_dir: joined in front of every path to find the file.
        header: skip the first line.
        labels: class names in label order (or a file of them, one per line); default: the
            names found, natsorted.
        int_labels: the label column holds the numeric label itself.
        class_names: also store each sample's label text in the field ``"class_name"``.
        max_sample_bytes: files larger than this are bad sources, refused before reading.

    Returns:
        A :class:`~shardstream.sets.imagefolder.FolderScan` (``label_names`` is empty with
        ``int_labels``).

    Raises:
        SourceNotFoundError: the list file does not exist.
        NothingToConvertError: the list names no file.
        DuplicateKeyError: a path is listed twice.
        LabelError: a label is not in ``labels``, is not an int with ``int_labels``, or some
            lines have labels and others not.
    """
    list_file = os.fspath(list_file)
    lines = read_list(list_file, separator=separator, header=header)
    if not lines:
        raise NothingToConvertError(f"{list_file}: nothing to convert: the list names no file")
    seen: dict[str, int] = {}
    for line in lines:
        first = seen.setdefault(line.path, line.number)
        if first != line.number:
            raise DuplicateKeyError(
                f"{list_file}: line {line.number} lists {line.path!r} again (first on line {first})"
            )
    labelled = {line.label is not None for line in lines}
    if len(labelled) > 1:
        missing = next(line for line in lines if line.label is None)
        raise LabelError(
            f"{list_file}: line {missing.number} has no label column but other lines have one"
        )
    numbers, names = _label_numbers(list_file, lines, labels, int_labels)
    root_dir = os.fspath(root_dir)
    found = []
    for line in lines:
        source = os.path.join(root_dir, line.path)
        store_name = class_names and line.label is not None
        found.append(
            Item(
                key=line.path,
                label=None if line.label is None else numbers[line.label],
                source=source,
                load=functools.partial(read_file, source, max_bytes=max_sample_bytes),
                fields={"class_name": line.label} if store_name else {},
            )
        )
    return FolderScan(tuple(found), tuple(names))


def read_list(
    list_file: str, *, separator: str | None = None, header: bool = False
) -> list[ListLine]:
    """Parse a list file into :class:`ListLine` records (blank lines skipped).

    Raises:
        SourceNotFoundError: the file does not exist.
    """
    if separator is None:
        separator = "," if list_file.lower().endswith(".csv") else "\t"
    try:
        with open(list_file, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter=separator))
    except FileNotFoundError:
        raise SourceNotFoundError(list_file, "list file not found") from None
    lines = []
    for number, row in enumerate(rows, start=1):
        if (header and number == 1) or not row or not "".join(row).strip():
            continue
        path = row[0].strip()
        label = row[1].strip() if len(row) > 1 else None
        lines.append(ListLine(number, path, label))
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the list arguments."""
    parser.add_argument("listfile", help="CSV/TSV file: path[,label] per line")
    parser.add_argument(
        "--separator", default=None, help="column separator (default: ',' for .csv, else tab)"
    )
    parser.add_argument(
        "--root-dir", default="", help="folder the listed paths are relative to (default: cwd)"
    )
    parser.add_argument("--header", action="store_true", help="skip the first line")
    parser.add_argument(
        "--labels", default=None, metavar="FILE", help="class names in label order, one a line"
    )
    parser.add_argument(
        "--int-labels", action="store_true", help="the label column is the numeric label itself"
    )
    parser.add_argument(
        "--class-names",
        action="store_true",
        help="also store each sample's label text (field 'class_name')",
    )
    parser.add_argument(
        "--split", default="train", help="split name used in the output name (default: train)"
    )
    add_limit_arguments(parser)


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The items of ``args.listfile``, as the single split ``args.split``."""
    return {args.split: _scan(args).items}


def label_names(args: argparse.Namespace) -> list[str]:
    """The class names in label order (empty with ``--int-labels``)."""
    return list(_scan(args).label_names)


def _scan(args: argparse.Namespace) -> FolderScan:
    return _cached_scan(
        args.listfile,
        args.separator,
        args.root_dir,
        args.header,
        args.labels,
        args.int_labels,
        args.class_names,
        args.max_sample_bytes,
    )


@functools.lru_cache(maxsize=4)
def _cached_scan(
    list_file: str,
    separator: str | None,
    root_dir: str,
    header: bool,
    labels: str | None,
    int_labels: bool,
    class_names: bool,
    max_sample_bytes: int,
) -> FolderScan:
    return scan_list(
        list_file,
        separator=separator,
        root_dir=root_dir,
        header=header,
        labels=labels,
        int_labels=int_labels,
        class_names=class_names,
        max_sample_bytes=max_sample_bytes,
    )


def _label_numbers(
    list_file: str,
    lines: list[ListLine],
    labels: Sequence[str] | str | os.PathLike | None,
    int_labels: bool,
) -> tuple[dict[str, int], list[str]]:
    texts = {line.label for line in lines if line.label is not None}
    if int_labels:
        numbers = {}
        for line in lines:
            if line.label is None or line.label in numbers:
                continue
            try:
                numbers[line.label] = int(line.label)
            except ValueError:
                raise LabelError(
                    f"{list_file}: line {line.number}: label {line.label!r} is not an int "
                    "(drop --int-labels to number class names)"
                ) from None
        return numbers, []
    if isinstance(labels, (str, os.PathLike)):
        names = load_labels(labels)
    elif labels is not None:
        names = list(labels)
    else:
        names = natsorted(texts)
    numbers = {name: number for number, name in enumerate(names)}
    for line in lines:
        if line.label is not None and line.label not in numbers:
            raise LabelError(
                f"{list_file}: line {line.number}: label {line.label!r} is not in the given "
                f"labels ({len(names)} names)"
            )
    return numbers, names
