"""zip: the images in a ZIP file, selected like a folder (``{LABEL}/**`` by default).

Members are selected with the :class:`~shardstream.read.ZipFileReader` pattern rules (``--pattern``
is matched against member names; its whole ``{LABEL}`` component is the class) and keep their
archive order. The key is the member name from the ``{LABEL}`` component on; the class names,
natsorted, give the numeric labels. Members are read and decompressed in the worker processes,
never extracted to disk.

A selected member whose name is absolute or contains ``..`` (``../../etc/x.jpg``) is refused as
unsafe: it is never read, it takes no part in the labels, and it is reported as a bad source (the
conversion stops, or with ``--on-error skip`` it is listed in the skipped report), with the
same check as the tar members of ``webdataset``. So is a member past the size limits, refused
before it is decompressed in full: larger than ``--max-sample-bytes`` (default 256 MiB) or, past
1 MiB, expanding more than ``--max-ratio`` (default 100) times its compressed size (see
:mod:`shardstream.read.zipfile` for the defaults' reasons).
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from natsort import natsorted

from ..errors import DatasetNotFoundError, NothingToConvertError
from ..read.directory import LABEL, as_patterns, is_included
from ..read.zipfile import ZipFileReader, open_zip
from ..write.conversion import Item
from ..write.loaders import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_SAMPLE_BYTES,
    name_problem,
    read_zip_member,
)
from .imagefolder import FolderScan, add_limit_arguments, add_selection_arguments

__all__ = ["NAME", "SOURCES", "add_arguments", "items", "label_names", "scan_zip"]

NAME = "zip"
SOURCES: tuple = ()


def scan_zip(
    path: str | os.PathLike,
    *,
    pattern: str | Sequence[str] = f"{LABEL}/**",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    class_names: bool = False,
    max_sample_bytes: int = DEFAULT_MAX_SAMPLE_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> FolderScan:
    """Find the selected members of a ZIP file and describe each as an Item.

    Args:
        path: the ZIP file.
        pattern: one member-name pattern or several (a whole ``{LABEL}`` component marks the
            class).
        include: :func:`fnmatch.fnmatch` patterns; if any, a member must match one.
        exclude: :func:`fnmatch.fnmatch` patterns; a member matching any is dropped.
        class_names: also store each sample's class name in the field ``"class_name"``.
        max_sample_bytes: members larger than this (uncompressed) are bad sources.
        max_ratio: members past 1 MiB that expand more than this many times their compressed
            size are bad sources.

    Returns:
        A :class:`~shardstream.sets.imagefolder.FolderScan`; refused (unsafe) members come first,
        as items that fail when loaded.

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        DatasetFormatError: ``path`` is not a ZIP file, or its directory is damaged.
        LabelError: ``{LABEL}`` is misplaced in a pattern.
        NothingToConvertError: no member matches.
    """
    path = os.fspath(path)
    patterns = as_patterns(pattern)
    unsafe = _unsafe_members(path, patterns, include, exclude)
    found: list[tuple[str, str | None, str]] = []

    def collect(sample: dict) -> None:
        found.append((sample["key"], sample["label"], sample["path"]))

    with ZipFileReader(
        path,
        patterns,
        labels=[None],  # label names are numbered here, unlabelled patterns give None
        numeric_labels=False,
        initfun=collect,
        include=include,
        exclude=[*exclude, *(glob.escape(name) for name in unsafe)],
    ):
        pass
    if not found and not unsafe:
        raise NothingToConvertError(
            f"{path}: nothing to convert: no member matches {', '.join(map(repr, patterns))}"
        )
    names = natsorted({label for _, label, _ in found if label is not None})
    numbers = {name: number for number, name in enumerate(names)}
    refused = [
        Item(
            key=name,
            label=None,
            source=f"{path}:{name}",
            load=functools.partial(
                read_zip_member, path, name, max_bytes=max_sample_bytes, max_ratio=max_ratio
            ),
        )
        for name in unsafe
    ]
    accepted = [
        Item(
            key=key,
            label=None if label is None else numbers[label],
            source=f"{path}:{member}",
            load=functools.partial(
                read_zip_member, path, member, max_bytes=max_sample_bytes, max_ratio=max_ratio
            ),
            fields={"class_name": label} if class_names and label is not None else {},
        )
        for key, label, member in found
    ]
    return FolderScan(tuple(refused + accepted), tuple(names))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the zip arguments (the ZIP file and the member selection)."""
    parser.add_argument("zipfile", help="the ZIP file")
    add_selection_arguments(parser)
    add_limit_arguments(parser, ratio=True)


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The items of ``args.zipfile``, as the single split ``args.split``."""
    return {args.split: _scan(args).items}


def label_names(args: argparse.Namespace) -> list[str]:
    """The class names in label order."""
    return list(_scan(args).label_names)


def _scan(args: argparse.Namespace) -> FolderScan:
    return _cached_scan(
        args.zipfile,
        args.pattern,
        tuple(args.include),
        tuple(args.exclude),
        args.class_names,
        args.max_sample_bytes,
        args.max_ratio,
    )


@functools.lru_cache(maxsize=4)
def _cached_scan(
    path: str,
    pattern: str,
    include: tuple,
    exclude: tuple,
    class_names: bool,
    max_sample_bytes: int,
    max_ratio: float,
) -> FolderScan:
    return scan_zip(
        path,
        pattern=pattern,
        include=include,
        exclude=exclude,
        class_names=class_names,
        max_sample_bytes=max_sample_bytes,
        max_ratio=max_ratio,
    )


def _unsafe_members(
    path: str, patterns: list[str], include: Sequence[str], exclude: Sequence[str]
) -> list[str]:
    """Names of the members the patterns select whose names are unsafe, in archive order."""
    if not os.path.exists(path):
        raise DatasetNotFoundError(path, "ZIP file not found")
    with open_zip(path) as archive:
        infos = archive.infolist()
    selectors = [p.replace(LABEL, "*") for p in patterns]
    unsafe = []
    for info in infos:
        name = info.filename
        if info.is_dir() or not name_problem(name):
            continue
        if any(fnmatchcase(name, s) for s in selectors) and is_included(name, include, exclude):
            unsafe.append(name)
    return unsafe
