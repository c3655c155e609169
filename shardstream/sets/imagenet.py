"""``shardstream write ILSVRC2012 --layout shardstream``: shardstream's earlier ImageNet-1k files.

(The default of ``shardstream write ILSVRC2012`` / ``imagenet`` is datadings' layout: see
:mod:`shardstream.sets.ilsvrc2012`. This module is no converter of its own any more.)

Sources, looked for in ``--indir``:

- ``ILSVRC2012_img_train.tar``: a tar of 1,000 uncompressed per-class tars ``<wnid>.tar``, each
  holding that class's JPEGs (``<wnid>_<n>.JPEG``).
- ``ILSVRC2012_img_val.tar``: the 50,000 validation JPEGs ``ILSVRC2012_val_00000001.JPEG``, ...
- the validation labels: by default the development kit ``ILSVRC2012_devkit_t12.tar.gz``, whose
  ``data/ILSVRC2012_validation_ground_truth.txt`` gives each image's ILSVRC2012_ID (1-1000) and
  whose ``data/meta.mat`` maps these IDs to wnids (reading it needs scipy). ``--val-labels FILE``
  replaces the devkit with either a text file of ``<file name> <wnid>`` lines, or Kaggle's
  ``LOC_val_solution.csv`` (``ImageId,PredictionString``; the first wnid of the string counts).

Labels index the sorted list of wnids, the class order of torchvision's ``ImageFolder`` and of
dinov2: the sorted names of the train archive's class tars when ``train`` is converted, else the
sorted wnids of the validation labels (the same 1,000 for the real data). Label names are wnids.

Nothing is unpacked. The tars are walked header by header; each
:class:`~shardstream.write.conversion.Item` records where its JPEG lies in the outer file (for a train
image: its class tar's data offset plus the image's offset inside the class tar, which is stored
uncompressed) and the pool worker reads exactly those bytes with one ``pread``
(:func:`read_tar_member`). A member whose name is absolute or contains ``..`` is refused unread and
reported as a bad source, as the ``zip`` converter does. Images keep their original bytes unless the ``write`` command is told to
transcode. Samples are ``{"key": "train/n01440764/n01440764_10026.JPEG" or
"val/ILSVRC2012_val_00000001.JPEG", "image": <JPEG>, "label": <int>}``, in archive order.

image-net.org serves these files only to registered users who are logged in, so ``--download``
normally fails there (the server answers with a login page, whose md5 does not match, and nothing
is saved): download them in a browser and pass ``--indir``, or use ``--mirror`` for a local copy.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import os
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import (
    DatasetFormatError,
    LabelError,
    MissingDependencyError,
    SourceNotFoundError,
    UnsafeSourcePathError,
)
from ..write.conversion import Item
from ..write.loaders import read_file_range, unsafe_reason
from .sources import SourceFile, add_source_arguments, sources_from_args

__all__ = [
    "SOURCES",
    "TRAIN_SOURCE",
    "VAL_SOURCE",
    "DEVKIT_SOURCE",
    "add_arguments",
    "items",
    "label_names",
    "read_tar_member",
    "read_val_labels",
    "read_devkit_val_labels",
]

_BASE_URL = "https://image-net.org/data/ILSVRC/2012/"
_LOGIN_NOTE = (
    "image-net.org needs a login: download it from https://image-net.org in a browser "
    "and pass --indir"
)

TRAIN_SOURCE = SourceFile(
    name="ILSVRC2012_img_train.tar",
    md5="1d675b47d978889d74fa0da5fadfb00e",
    url=_BASE_URL + "ILSVRC2012_img_train.tar",
    note=_LOGIN_NOTE,
)
"""The training images: a tar of per-class tars (about 138 GiB)."""

VAL_SOURCE = SourceFile(
    name="ILSVRC2012_img_val.tar",
    md5="29b22e2961454d5413ddabcf34fc5622",
    url=_BASE_URL + "ILSVRC2012_img_val.tar",
    note=_LOGIN_NOTE,
)
"""The validation images: a flat tar of 50,000 JPEGs (about 6.3 GiB)."""

DEVKIT_SOURCE = SourceFile(
    name="ILSVRC2012_devkit_t12.tar.gz",
    md5="fa75699e90414af021442c21a62c3abf",
    url=_BASE_URL + "ILSVRC2012_devkit_t12.tar.gz",
    note=_LOGIN_NOTE,
)
"""The development kit, for the validation labels (not needed with ``--val-labels``)."""

SOURCES: tuple[SourceFile, ...] = (TRAIN_SOURCE, VAL_SOURCE, DEVKIT_SOURCE)
"""Every file the converter may read (which ones it needs depends on the options)."""

SPLITS = ("train", "val")
"""The splits this converter writes."""

_GROUND_TRUTH_MEMBER = "data/ILSVRC2012_validation_ground_truth.txt"
_META_MEMBER = "data/meta.mat"
_WNID = re.compile(r"n\d{8}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the converter's options: source file options, ``--split`` and ``--val-labels``.

    Args:
        parser: the ``write imagenet`` parser.
    """
    add_source_arguments(parser, SOURCES)
    parser.add_argument(
        "--split",
        action="append",
        choices=SPLITS,
        default=None,
        help="convert only this split (repeatable; default: train and val)",
    )
    parser.add_argument(
        "--val-labels",
        metavar="FILE",
        default=None,
        help="labels of the validation images instead of the devkit: lines '<file name> <wnid>', "
        "or Kaggle's LOC_val_solution.csv",
    )


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The items of each requested split, after locating and verifying the source files.

    Args:
        args: the parsed options.

    Returns:
        ``{"train": ..., "val": ...}`` (or the splits named by ``--split``): iterables of
        :class:`~shardstream.write.conversion.Item` that walk the tars each time they are iterated.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a source file is missing, wrong
            or could not be downloaded.
        DatasetFormatError: a tar or the labels file does not have the expected layout.
        LabelError: a validation label names a class the train archive does not have (raised
            here), or a validation image has no label (raised while iterating).
        MissingDependencyError: the devkit's ``meta.mat`` needs scipy, which is not installed.
        SourceNotFoundError: also raised when the ``--val-labels`` file does not exist.
    """
    plan = _plan(args)
    result: dict[str, Iterable[Item]] = {}
    for split in plan.splits:
        if split == "train":
            result[split] = _TrainItems(archive=plan.paths[TRAIN_SOURCE.name], classes=plan.classes)
        else:
            result[split] = _ValItems(
                archive=plan.paths[VAL_SOURCE.name],
                classes=plan.classes,
                val_labels=plan.val_labels,
                labels_source=plan.labels_source,
            )
    return result


def label_names(args: argparse.Namespace) -> list[str]:
    """The class wnids in label order (sorted), label ``i`` at position ``i``.

    Args:
        args: the parsed options.

    Returns:
        The wnids (``n01440764``, ``n01443537``, ...).

    Raises:
        See :func:`items`.
    """
    return list(_plan(args).classes)


def read_tar_member(path: str, name: str, offset: int, size: int) -> bytes:
    """Read one member's bytes from an uncompressed tar, given where they lie (for pool workers).

    Args:
        path: the outer tar file.
        name: the member's name (refused unread when it is absolute or contains ``..``).
        offset: where its data starts in ``path`` (for a member of a class tar: the class tar's
            data offset plus the member's data offset inside it).
        size: its size.

    Returns:
        The member's bytes (one ``pread``).

    Raises:
        UnsafeSourcePathError: ``name`` is unsafe (reported as a bad source by the engine).
        BadSourceError: the file ends before ``offset + size`` (a truncated archive).
        OSError: the file cannot be read.
    """
    reason = unsafe_reason(name)
    if reason:
        raise UnsafeSourcePathError(f"{path}:{name}", reason)
    return read_file_range(path, offset, size)


def read_val_labels(path: str | os.PathLike) -> dict[str, str]:
    """Read a validation labels file: ``<file name> <wnid>`` lines or ``LOC_val_solution.csv``.

    Text lines hold a file name and a wnid separated by white space; blank lines and lines
    starting with ``#`` are skipped. The CSV has the header ``ImageId,PredictionString``; the
    file name is ``<ImageId>.JPEG`` and the wnid the first word of the prediction string.

    Args:
        path: the file.

    Returns:
        The wnid of each image, by file name.

    Raises:
        DatasetFormatError: a line is malformed, a wnid is not ``n`` and 8 digits, or a file name
            appears twice (the message names the file and line).
        OSError: the file cannot be read.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    first = next((line for line in text.splitlines() if line.strip()), "")
    labels: dict[str, str] = {}
    if first.replace(" ", "").startswith("ImageId,PredictionString"):
        rows = csv.reader(io.StringIO(text))
        next(rows)
        for number, row in enumerate(rows, start=2):
            if not row:
                continue
            words = row[1].split() if len(row) == 2 else []
            if not words:
                raise DatasetFormatError(
                    path, f"line {number}: expected 'ImageId,PredictionString', got {row!r}"
                )
            _add_label(labels, path, number, f"{row[0].strip()}.JPEG", words[0])
        return labels
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = stripped.split()
        if len(words) != 2:
            raise DatasetFormatError(
                path, f"line {number}: expected '<file name> <wnid>', got {stripped!r}"
            )
        _add_label(labels, path, number, words[0], words[1])
    return labels


def read_devkit_val_labels(path: str | os.PathLike) -> dict[str, str]:
    """The validation labels in the ILSVRC2012 development kit, as wnids by file name.

    Reads ``data/ILSVRC2012_validation_ground_truth.txt`` (line ``i`` holds the ILSVRC2012_ID of
    ``ILSVRC2012_val_<i, 8 digits>.JPEG``) and ``data/meta.mat`` (ID to wnid) from the
    ``.tar.gz`` without extracting it.

    Args:
        path: the devkit archive.

    Returns:
        The wnid of each validation image, by file name.

    Raises:
        MissingDependencyError: scipy (to read the MATLAB file) is not installed.
        DatasetFormatError: a member is missing or malformed.
    """
    path = Path(path)
    members = _read_devkit(path)
    try:
        import scipy.io
    except ImportError:
        raise MissingDependencyError(
            f"{path}: reading {_META_MEMBER} (a MATLAB file) needs scipy (pip install scipy); "
            "or pass --val-labels with a '<file name> <wnid>' list"
        ) from None
    try:
        meta = scipy.io.loadmat(io.BytesIO(members[_META_MEMBER]), squeeze_me=True)
        synsets = meta["synsets"]
        ids = [int(value) for value in synsets["ILSVRC2012_ID"].ravel()]
        wnids = [str(value) for value in synsets["WNID"].ravel()]
    except (KeyError, ValueError, TypeError, IndexError, OSError) as e:
        raise DatasetFormatError(
            path, f"{_META_MEMBER} has no readable 'synsets' with ILSVRC2012_ID and WNID ({e})"
        ) from e
    id_to_wnid = dict(zip(ids, wnids))
    labels: dict[str, str] = {}
    lines = members[_GROUND_TRUTH_MEMBER].decode("ascii", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        word = line.strip()
        if not word and number == len(lines):
            continue
        if not word.isdigit() or int(word) not in id_to_wnid:
            raise DatasetFormatError(
                path,
                f"{_GROUND_TRUTH_MEMBER} line {number}: {word!r} is not an ILSVRC2012_ID "
                f"listed in {_META_MEMBER}",
            )
        labels[f"ILSVRC2012_val_{number:08d}.JPEG"] = id_to_wnid[int(word)]
    return labels


# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    splits: tuple[str, ...]
    paths: Mapping[str, Path]
    classes: tuple[str, ...]
    val_labels: Mapping[str, str]
    labels_source: str


class _TrainItems:
    """The train split; each iteration walks the archive anew."""

    def __init__(self, *, archive: Path, classes: tuple[str, ...]):
        self.archive = archive
        self.labels = {wnid: label for label, wnid in enumerate(classes)}

    def __iter__(self) -> Iterator[Item]:
        path = os.fspath(self.archive)
        with _open_tar(self.archive) as outer:
            for class_tar in _members(self.archive, outer):
                wnid = _class_tar_wnid(self.archive, class_tar)
                if wnid is None:
                    continue
                with _open_class_tar(self.archive, outer, class_tar) as inner:
                    for image in _members(self.archive, inner, class_tar.name):
                        if image.isdir():
                            continue
                        where = f"{class_tar.name}/{image.name}"
                        _check_regular(self.archive, image, where)
                        yield Item(
                            key=f"train/{wnid}/{image.name}",
                            label=self.labels[wnid],
                            source=f"{path}:{where}",
                            load=functools.partial(
                                read_tar_member,
                                path,
                                image.name,
                                class_tar.offset_data + image.offset_data,
                                image.size,
                            ),
                        )


class _ValItems:
    """The val split; each iteration walks the archive anew."""

    def __init__(
        self,
        *,
        archive: Path,
        classes: tuple[str, ...],
        val_labels: Mapping[str, str],
        labels_source: str,
    ):
        self.archive = archive
        self.labels = {wnid: label for label, wnid in enumerate(classes)}
        self.val_labels = val_labels
        self.labels_source = labels_source

    def __length_hint__(self) -> int:
        return len(self.val_labels)

    def __iter__(self) -> Iterator[Item]:
        path = os.fspath(self.archive)
        with _open_tar(self.archive) as tar:
            for image in _members(self.archive, tar):
                if image.isdir():
                    continue
                _check_regular(self.archive, image, image.name)
                name = PurePosixPath(image.name).name
                wnid = self.val_labels.get(name)
                if wnid is None:
                    raise LabelError(
                        f"{path}:{image.name}: {self.labels_source} gives no label for {name}"
                    )
                yield Item(
                    key=f"val/{name}",
                    label=self.labels[wnid],
                    source=f"{path}:{image.name}",
                    load=functools.partial(
                        read_tar_member, path, image.name, image.offset_data, image.size
                    ),
                )


# Plans already made in this process, by the options and the sources' (path, size, mtime_ns).
_PLANS: dict[tuple, _Plan] = {}


def _plan(args: argparse.Namespace) -> _Plan:
    splits = tuple(dict.fromkeys(getattr(args, "split", None) or SPLITS))
    val_labels_file = getattr(args, "val_labels", None)
    needed = []
    if "train" in splits:
        needed.append(TRAIN_SOURCE)
    if "val" in splits:
        needed.append(VAL_SOURCE)
        if val_labels_file is None:
            needed.append(DEVKIT_SOURCE)
    if "val" not in splits:
        val_labels_file = None
    elif val_labels_file is not None and not Path(val_labels_file).is_file():
        raise SourceNotFoundError(val_labels_file, "--val-labels: no such file")
    paths = sources_from_args(args, needed, known=SOURCES)
    files = [*paths.values(), *([Path(val_labels_file)] if val_labels_file else [])]
    stamp = (splits, *(_stamp(path) for path in files))
    if stamp in _PLANS:
        return _PLANS[stamp]

    val_labels: dict[str, str] = {}
    labels_source = ""
    if "val" in splits:
        if val_labels_file is not None:
            labels_source = os.fspath(val_labels_file)
            val_labels = read_val_labels(val_labels_file)
        else:
            labels_source = os.fspath(paths[DEVKIT_SOURCE.name])
            val_labels = read_devkit_val_labels(paths[DEVKIT_SOURCE.name])
        if not val_labels:
            raise DatasetFormatError(labels_source, "holds no validation labels")
    if "train" in splits:
        classes = _train_classes(paths[TRAIN_SOURCE.name])
        unknown = sorted(set(val_labels.values()) - set(classes))
        if unknown:
            raise LabelError(
                f"{labels_source}: wnid {unknown[0]} ({len(unknown)} unknown in all) has no "
                f"class tar in {paths[TRAIN_SOURCE.name]}"
            )
    else:
        classes = tuple(sorted(set(val_labels.values())))
    plan = _Plan(
        splits=splits,
        paths=paths,
        classes=classes,
        val_labels=val_labels,
        labels_source=labels_source,
    )
    _PLANS[stamp] = plan
    return plan


def _stamp(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as e:
        raise DatasetFormatError(path, f"cannot be read as an uncompressed tar ({e})") from e


def _members(
    archive: Path, tar: tarfile.TarFile, inside: str | None = None
) -> Iterator[tarfile.TarInfo]:
    """The members of ``tar``, with read faults (a truncated archive) as DatasetFormatError."""
    try:
        yield from tar
    except (tarfile.TarError, EOFError) as e:
        where = f"class tar {inside}" if inside else "the archive"
        raise DatasetFormatError(archive, f"{where} cannot be read to the end ({e})") from e


def _open_class_tar(
    archive: Path, outer: tarfile.TarFile, member: tarfile.TarInfo
) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=outer.extractfile(member), mode="r:")
    except tarfile.TarError as e:
        raise DatasetFormatError(archive, f"member {member.name} is not a tar file ({e})") from e


def _train_classes(path: Path) -> tuple[str, ...]:
    """The sorted wnids of the class tars in the train archive (reads only the headers)."""
    with _open_tar(path) as tar:
        wnids = [
            wnid
            for member in _members(path, tar)
            if (wnid := _class_tar_wnid(path, member)) is not None
        ]
    duplicates = sorted({wnid for wnid in wnids if wnids.count(wnid) > 1})
    if duplicates:
        raise DatasetFormatError(path, f"holds the class tar {duplicates[0]}.tar twice")
    if not wnids:
        raise DatasetFormatError(path, "holds no class tars (<wnid>.tar)")
    return tuple(sorted(wnids))


def _class_tar_wnid(archive: Path, member: tarfile.TarInfo) -> str | None:
    """The wnid of a class tar member (``None`` for a directory entry)."""
    if member.isdir():
        return None
    name = PurePosixPath(member.name).name
    if not member.isfile() or not name.endswith(".tar"):
        raise DatasetFormatError(
            archive, f"member {member.name} is not a class tar (<wnid>.tar): not the train archive?"
        )
    return name[: -len(".tar")]


def _check_regular(archive: Path, member: tarfile.TarInfo, where: str) -> None:
    if not member.isfile() or member.issparse():
        raise DatasetFormatError(archive, f"member {where} is not a regular file")


def _add_label(labels: dict[str, str], path: Path, number: int, name: str, wnid: str) -> None:
    if not _WNID.fullmatch(wnid):
        raise DatasetFormatError(path, f"line {number}: {wnid!r} is not a wnid ('n' and 8 digits)")
    if name in labels:
        raise DatasetFormatError(path, f"line {number}: {name} is labelled twice")
    labels[name] = wnid


def _read_devkit(path: Path) -> dict[str, bytes]:
    """The ground-truth and meta members of the devkit, by their path below the top folder."""
    wanted = (_GROUND_TRUTH_MEMBER, _META_MEMBER)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                suffix = next((w for w in wanted if member.name.endswith("/" + w)), None)
                if suffix is not None and member.isfile():
                    found[suffix] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetFormatError(path, f"cannot be read as a .tar.gz archive ({e})") from e
    missing = [w for w in wanted if w not in found]
    if missing:
        raise DatasetFormatError(
            path, f"has no member .../{missing[0]}: not the ILSVRC2012 development kit?"
        )
    return found
