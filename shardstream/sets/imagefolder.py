"""imagefolder: any ``root/{LABEL}/**`` tree of images (one folder per class, any depth below).

Files are found with the :class:`~shardstream.read.DirectoryReader` pattern rules (``--pattern``,
default ``{LABEL}/**``, relative to the root) and sorted in natural order. The key is the path
relative to the root (``cat/2.jpg``); the class folders' names, natsorted (``b2`` before
``b10``), give the numeric labels ``0, 1, ...``. A pattern without ``{LABEL}`` gives unlabelled
samples.

Only images are taken, as torchvision's ``ImageFolder`` takes them: files whose name ends in one
of :data:`IMG_EXTENSIONS` (any case: ``.JPEG`` counts); other files (``notes.txt``,
``Thumbs.db``) are skipped and counted, and ``write`` prints the count. ``--all-files`` takes
every file the pattern matches.

Differences from DirectoryReader: everything the pattern matches that is not a directory is a
source, so a dangling link or a FIFO in the tree is reported as a bad source instead of being
left out silently. Hidden files (names starting with ``.``) are not matched, as with ``glob``.

Symbolic links are followed safely (:func:`~shardstream.read.walk.find_paths`): a link that loops
back to a folder on its own path is not followed (each file is converted once), and a link whose
target lies outside the root is refused unread as an unsafe source
(:class:`~shardstream.errors.UnsafeSourcePathError`: the conversion stops, or with
``--on-error skip`` it is listed in the skipped report) unless ``--follow-external-links`` is
given. A file whose name is not valid UTF-8 is a bad source too (sample keys are UTF-8), and so
is a file larger than ``--max-sample-bytes`` (default 256 MiB), refused before it is read.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from natsort import natsorted

from ..checks import size_argument
from ..errors import NothingToConvertError, SourceNotFoundError
from ..read.directory import LABEL, is_included, label_position, natural_path_order
from ..read.walk import find_paths
from ..write.conversion import Item
from ..write.loaders import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_SAMPLE_BYTES,
    name_problem,
    printable_name,
    read_file,
    refuse,
    refuse_unsafe,
)

__all__ = [
    "IMG_EXTENSIONS",
    "NAME",
    "SOURCES",
    "FolderScan",
    "add_arguments",
    "add_limit_arguments",
    "add_link_argument",
    "items",
    "label_names",
    "scan_folder",
    "skipped_non_images",
]

NAME = "imagefolder"
SOURCES: tuple = ()
DEFAULT_PATTERN = f"{LABEL}/**"

#: The file name endings taken as images (torchvision's ``IMG_EXTENSIONS``), matched in any case.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class FolderScan:
    """The items found in a folder and the label names (in label order).

    Attributes:
        items: one :class:`~shardstream.write.conversion.Item` per file, in natural path order.
        label_names: the class names; a sample's label indexes this list (empty when the
            pattern has no ``{LABEL}``).
        skipped: files the pattern matched that were left out as not images by extension.
    """

    items: tuple[Item, ...]
    label_names: tuple[str, ...]
    skipped: int = 0


def scan_folder(
    root: str | os.PathLike,
    *,
    pattern: str = DEFAULT_PATTERN,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    class_names: bool = False,
    follow_external_links: bool = False,
    max_sample_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
    extensions: Collection[str] | None = IMG_EXTENSIONS,
) -> FolderScan:
    """Find the images under ``root`` and describe each as an Item.

    Args:
        root: the folder.
        pattern: a glob pattern relative to ``root`` whose whole ``{LABEL}`` component is the
            class (``**`` matches any depth).
        include: :func:`fnmatch.fnmatch` patterns on the relative path; if any, one must match.
        exclude: :func:`fnmatch.fnmatch` patterns on the relative path; any match drops it.
        class_names: also store each sample's class name in the field ``"class_name"``.
        follow_external_links: convert the targets of links that lead out of ``root``; by
            default such links are bad sources (refused unread).
        max_sample_bytes: files larger than this are bad sources, refused before reading.
        extensions: take only files whose name ends in one of these (lower case; names are
            compared in lower case) and count the others in ``FolderScan.skipped``; None takes
            every file. A link out of ``root`` is kept (as a refused source) whatever its name.

    Returns:
        A :class:`FolderScan`; bad sources found while listing (external links, names that
        are not UTF-8) are items that fail when loaded, and take no part in the labels.

    Raises:
        SourceNotFoundError: ``root`` is not a folder.
        LabelError: ``{LABEL}`` is misplaced in ``pattern``.
        NothingToConvertError: nothing matches (an empty folder, or no image among the files).
        BadSourceError: a folder below ``root`` cannot be listed (no permission, I/O error).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise SourceNotFoundError(root, "folder not found (or not a folder)")
    position = label_position(pattern, "/")
    found = find_paths(
        pattern.replace(LABEL, "*"), root_dir=root, follow_external_links=follow_external_links
    )
    kinds = {entry.path: entry.kind for entry in found}
    paths = [path for path in natural_path_order(kinds) if is_included(path, include, exclude)]
    matched = len(paths)
    if extensions is not None:
        endings = tuple(e.lower() for e in extensions)
        # a link out of the root stays a refused source whatever its name: it is reported
        paths = [p for p in paths if p.lower().endswith(endings) or kinds[p] == "external"]
    if not paths:
        raise NothingToConvertError(
            f"{root}: nothing to convert: no files match {pattern!r}"
            + (" and the include/exclude filters" if include or exclude else "")
            + (
                f" ({matched} file{'s' if matched != 1 else ''} matched, none an image by "
                f"extension: {' '.join(extensions or ())}; --all-files takes every file)"
                if matched
                else ""
            )
        )
    problems = {path: _problem(path, kinds[path]) for path in paths}
    good = [path for path in paths if not problems[path]]
    names = (
        natsorted({path.split(os.sep)[position] for path in good}) if position is not None else []
    )
    numbers = {name: number for number, name in enumerate(names)}
    found_items = []
    for path in paths:
        source = os.path.join(root, path)
        problem = problems[path]
        if problem:
            shown = printable_name(source)
            fail = refuse_unsafe if kinds[path] == "external" else refuse
            found_items.append(
                Item(printable_name(path), None, shown, functools.partial(fail, shown, problem))
            )
            continue
        name = path.split(os.sep, position + 1)[position] if position is not None else None
        found_items.append(
            Item(
                key=path.replace(os.sep, "/"),
                label=None if name is None else numbers[name],
                source=source,
                load=functools.partial(read_file, source, max_bytes=max_sample_bytes),
                fields={"class_name": name} if class_names and name is not None else {},
            )
        )
    return FolderScan(tuple(found_items), tuple(names), matched - len(paths))


def _problem(path: str, kind: str) -> str:
    """Why a found path is refused unread, or ``""``."""
    if kind == "external":
        return (
            "a symbolic link out of the folder being converted; refused unread (pass "
            "--follow-external-links, follow_external_links=True, to convert its target)"
        )
    return name_problem(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the imagefolder arguments (the root folder and the file selection)."""
    parser.add_argument("root", help="folder with one sub-folder per class")
    add_selection_arguments(parser)
    parser.add_argument(
        "--all-files",
        action="store_true",
        help="take every file the pattern matches (default: only images by extension, "
        + " ".join(IMG_EXTENSIONS)
        + ", as torchvision's ImageFolder; the others are counted)",
    )
    add_link_argument(parser)
    add_limit_arguments(parser)


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


def add_limit_arguments(parser: argparse.ArgumentParser, *, ratio: bool = False) -> None:
    """Add ``--max-sample-bytes`` (and, with ``ratio``, ``--max-ratio``): the size limits that
    refuse oversized sources and decompression bombs before they are read in full."""
    group = parser.add_argument_group("limits on hostile or oversized input")
    group.add_argument(
        "--max-sample-bytes",
        type=size_argument,
        default=DEFAULT_MAX_SAMPLE_BYTES,
        metavar="SIZE",
        help="refuse a source image larger than SIZE (512M, 1G, ...) as a bad source, "
        "before reading it (default: 256M)",
    )
    if ratio:
        group.add_argument(
            "--max-ratio",
            type=_ratio,
            default=DEFAULT_MAX_RATIO,
            metavar="R",
            help="refuse an archive member (past 1 MiB) that expands more than R times its "
            "compressed size, a decompression bomb (default: %(default)g)",
        )


def add_link_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--follow-external-links``."""
    parser.add_argument(
        "--follow-external-links",
        action="store_true",
        help="convert the targets of symbolic links that lead out of the root (default: "
        "refuse them unread, as bad sources)",
    )


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The items of ``args.root``, as the single split ``args.split``."""
    return {args.split: _scan(args).items}


def label_names(args: argparse.Namespace) -> list[str]:
    """The class names in label order."""
    return list(_scan(args).label_names)


def skipped_non_images(args: argparse.Namespace) -> int:
    """How many matched files were left out as not images by extension (0 with --all-files)."""
    return _scan(args).skipped


def _scan(args: argparse.Namespace) -> FolderScan:
    return _cached_scan(
        args.root,
        args.pattern,
        tuple(args.include),
        tuple(args.exclude),
        args.class_names,
        args.follow_external_links,
        args.max_sample_bytes,
        None if getattr(args, "all_files", False) else IMG_EXTENSIONS,
    )


@functools.lru_cache(maxsize=4)
def _cached_scan(
    root: str,
    pattern: str,
    include: tuple,
    exclude: tuple,
    class_names: bool,
    follow_external_links: bool,
    max_sample_bytes: int,
    extensions: tuple[str, ...] | None,
) -> FolderScan:
    return scan_folder(
        root,
        pattern=pattern,
        include=include,
        exclude=exclude,
        class_names=class_names,
        follow_external_links=follow_external_links,
        max_sample_bytes=max_sample_bytes,
        extensions=extensions,
    )
