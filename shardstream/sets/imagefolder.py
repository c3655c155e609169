"""imagefolder: any ``root/{LABEL}/**`` tree of images (one folder per class, any depth below).

Files are found with the :class:`~shardstream.read.DirectoryReader` pattern rules (``--pattern``,
default ``{LABEL}/**``, relative to the root) and sorted in natural order. The key is the path
relative to the root (``cat/2.jpg``); the class folders' names, natsorted (``b2`` before
``b10``), give the numeric labels ``0, 1, ...``. A pattern without ``{LABEL}`` gives unlabelled
samples.

Differences from DirectoryReader: everything the pattern matches that is not a directory is a
source, so a dangling link or a FIFO in the tree is reported as a bad source instead of being
left out silently. Hidden files (names starting with ``.``) are not matched, as with ``glob``.
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from natsort import natsorted

from ..errors import NothingToConvertError, SourceNotFoundError
from ..read.directory import LABEL, is_included, label_position, natural_path_order
from ..write.conversion import Item
from ..write.loaders import read_file

__all__ = [
    "NAME",
    "SOURCES",
    "FolderScan",
    "add_arguments",
    "items",
    "label_names",
    "scan_folder",
]

NAME = "imagefolder"
SOURCES: tuple = ()
DEFAULT_PATTERN = f"{LABEL}/**"


@dataclass(frozen=True)
class FolderScan:
    """The items found in a folder and the label names (in label order).

    Attributes:
        items: one :class:`~shardstream.write.conversion.Item` per file, in natural path order.
        label_names: the class names; a sample's label indexes this list (empty when the
            pattern has no ``{LABEL}``).
    """

    items: tuple[Item, ...]
    label_names: tuple[str, ...]


def scan_folder(
    root: str | os.PathLike,
    *,
    pattern: str = DEFAULT_PATTERN,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    class_names: bool = False,
) -> FolderScan:
    """Find the images under ``root`` and describe each as an Item.

    Args:
        root: the folder.
        pattern: a glob pattern relative to ``root`` whose whole ``{LABEL}`` component is the
            class (``**`` matches any depth).
        include: :func:`fnmatch.fnmatch` patterns on the relative path; if any, one must match.
        exclude: :func:`fnmatch.fnmatch` patterns on the relative path; any match drops it.
        class_names: also store each sample's class name in the field ``"class_name"``.

    Returns:
        A :class:`FolderScan`.

    Raises:
        SourceNotFoundError: ``root`` is not a folder.
        LabelError: ``{LABEL}`` is misplaced in ``pattern``.
        NothingToConvertError: nothing matches (an empty folder).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise SourceNotFoundError(root, "folder not found (or not a folder)")
    position = label_position(pattern, "/")
    if pattern == DEFAULT_PATTERN:  # the common case, without a stat call per file
        found = list(_walk_class_folders(root))
    else:
        found = glob.glob(pattern.replace(LABEL, "*"), root_dir=root, recursive=True)
        found = [path for path in found if not os.path.isdir(os.path.join(root, path))]
    paths = [path for path in natural_path_order(found) if is_included(path, include, exclude)]
    if not paths:
        raise NothingToConvertError(
            f"{root}: nothing to convert: no files match {pattern!r}"
            + (" and the include/exclude filters" if include or exclude else "")
        )
    names = (
        natsorted({path.split(os.sep)[position] for path in paths}) if position is not None else []
    )
    numbers = {name: number for number, name in enumerate(names)}
    found_items = []
    for path in paths:
        source = os.path.join(root, path)
        name = path.split(os.sep, position + 1)[position] if position is not None else None
        found_items.append(
            Item(
                key=path.replace(os.sep, "/"),
                label=None if name is None else numbers[name],
                source=source,
                load=functools.partial(read_file, source),
                fields={"class_name": name} if class_names and name is not None else {},
            )
        )
    return FolderScan(tuple(found_items), tuple(names))


def _walk_class_folders(root: str) -> Iterator[str]:
    """What ``glob("{LABEL}/**")`` (``*/**``) finds below ``root``, less the directories.

    Entries below the top-level folders at any depth, skipping hidden names as glob does and
    following links to directories as glob does; non-directories (files, dangling links) are
    yielded as paths relative to ``root``.
    """
    stack = [("", root)]
    while stack:
        relative, folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = f"{relative}{os.sep}{entry.name}" if relative else entry.name
                if entry.is_dir():
                    stack.append((path, entry.path))
                elif relative:
                    yield path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the imagefolder arguments (the root folder and the file selection)."""
    parser.add_argument("root", help="folder with one sub-folder per class")
    add_selection_arguments(parser)


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--pattern``, ``--include``, ``--exclude``, ``--class-names`` and ``--split``."""
    parser.add_argument(
        "--pattern",
        default=DEFAULT_PATTERN,
        help=f"files to take, relative to the root; {LABEL} marks the class folder "
        f"(default: {DEFAULT_PATTERN})",
    )
    parser.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only paths matching this"
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="drop paths matching this"
    )
    parser.add_argument(
        "--class-names",
        action="store_true",
        help="also store each sample's class name (field 'class_name')",
    )
    parser.add_argument(
        "--split", default="train", help="split name used in the output name (default: train)"
    )


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The items of ``args.root``, as the single split ``args.split``."""
    return {args.split: _scan(args).items}


def label_names(args: argparse.Namespace) -> list[str]:
    """The class names in label order."""
    return list(_scan(args).label_names)


def _scan(args: argparse.Namespace) -> FolderScan:
    return _cached_scan(
        args.root,
        args.pattern,
        tuple(args.include),
        tuple(args.exclude),
        args.class_names,
    )


@functools.lru_cache(maxsize=4)
def _cached_scan(
    root: str, pattern: str, include: tuple, exclude: tuple, class_names: bool
) -> FolderScan:
    return scan_folder(
        root, pattern=pattern, include=include, exclude=exclude, class_names=class_names
    )
