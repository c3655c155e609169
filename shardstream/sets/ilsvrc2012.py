"""``shardstream write ILSVRC2012`` (or ``imagenet``): ImageNet-1k, as datadings writes it.

Reads ``ILSVRC2012_img_train.tar`` (a tar of per-class tars ``<wnid>.tar``) and
``ILSVRC2012_img_val.tar`` in place, in archive order (datadings has no shuffle for this set),
and writes ``train.msgpack`` and ``val.msgpack``. Samples are ``{"key": "n01440764_10026.JPEG",
"image": <JPEG bytes>, "label": 0-999}``: the key is the image's name in its tar, the label the
synset's index in datadings' synset list (sorted wnids); validation labels come from the list
datadings ships (no devkit needed).

Images are checked as datadings checks them (shardstream.sets._verify_jpeg): every image is
decoded; a
JPEG is kept byte for byte unless it is CMYK (re-encoded as RGB, quality 98, 4:4:4); what
simplejpeg cannot decode (the PNG among the train images) is read with Pillow and re-encoded.
``--compress Q`` re-encodes every image of at least half of 500 x 375 pixels at quality Q,
downscaling those larger than 1.5 times that to a longer side of 500 (``--subsampling``).

``--layout shardstream`` writes shardstream's earlier files instead (see
shardstream.sets.imagenet): ``OUTDIR/imagenet-train.msgpack`` and
``imagenet-val.msgpack`` with keys ``"train/<wnid>/<name>"``, labels from the devkit or
``--val-labels``.

image-net.org serves the files to registered users only: download them in a browser.
See https://image-net.org/challenges/LSVRC/2012/
"""

from __future__ import annotations

import argparse
import functools
import lzma
import os
import tarfile
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import DatasetFormatError, LabelError
from ..write.conversion import Item
from ..write.loaders import read_file_range
from . import _datadings, _layouts, imagenet
from ._verify_jpeg import add_compress_arguments, verify_image
from .sources import SourceFile

__all__ = [
    "ALIASES",
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "items",
    "label_names",
    "synset_words",
    "val_labels",
]

NAME = "ILSVRC2012"
"""datadings' name of the set."""

ALIASES = ("imagenet",)
"""Other names of the set on the command line (shardstream's earlier ``write imagenet``)."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_NOTE = "registration needed: download it from https://image-net.org in a browser"

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="ILSVRC2012_img_train.tar",
        md5="1d675b47d978889d74fa0da5fadfb00e",
        url=None,
        note=_NOTE,
    ),
    SourceFile(
        name="ILSVRC2012_img_val.tar",
        md5="29b22e2961454d5413ddabcf34fc5622",
        url=None,
        note=_NOTE,
    ),
)
"""The train and validation archives (no download URL, as in datadings)."""

FIELDS = (
    ("key", "str: the image's name in its tar, e.g. n01440764_10026.JPEG"),
    ("image", "bytes: the JPEG (re-encoded where datadings re-encodes)"),
    ("label", "int: the synset's index, 0-999 (sorted wnids)"),
)
"""The sample's keys, in order."""

_SPLITS = ("train", "val")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options (``INDIR``, ``-o``, ``-s``, ``-t``, ``--compress``,
    ``--subsampling``), ``--layout`` and the earlier layout's ``--val-labels``.

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False)
    _datadings.add_threads_argument(parser)
    add_compress_arguments(parser)
    _layouts.add_layout_arguments(
        parser,
        legacy="shardstream",
        reads="the two tars and the devkit ILSVRC2012_devkit_t12.tar.gz",
        splits=_SPLITS,
    )
    parser.add_argument(
        "--val-labels",
        metavar="FILE",
        default=None,
        help="--layout shardstream: validation labels instead of the devkit ('<file name> "
        "<wnid>' lines, or Kaggle's LOC_val_solution.csv)",
    )


def items(args: argparse.Namespace) -> dict[str, Iterable[Item]]:
    """The items of ``train.msgpack`` and ``val.msgpack``, in archive order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items (iterables that walk the tars' headers as they are iterated).

    Raises:
        SourceNotFoundError, SourceChecksumError: an archive is missing or wrong.
        DatasetFormatError: an archive is not a tar, or a class tar is not named after a synset
            (raised while iterating).
        LabelError: a validation image has no label in datadings' list (while iterating).
        ConfigError: conflicting options.
    """
    _layouts.resolve_indir(args)
    if _layouts.is_legacy(args):
        return _layouts.legacy_outputs("imagenet", imagenet.items(args))
    paths = _datadings.locate(args, SOURCES)
    options = (args.compress, args.subsampling)
    return {
        "train.msgpack": _TrainItems(paths[SOURCES[0].name], options),
        "val.msgpack": _ValItems(paths[SOURCES[1].name], options),
    }


def label_names(args: argparse.Namespace) -> list[str]:
    """``--layout shardstream``: the wnids in label order (``<output>.labels.txt``); else none.

    Args:
        args: the parsed options.

    Raises:
        See :func:`items`.
    """
    _layouts.resolve_indir(args)
    return imagenet.label_names(args) if _layouts.is_legacy(args) else []


@functools.cache
def synset_words() -> dict[str, str]:
    """The 1,000 synsets in label order: wnid -> words (``"n01440764": "tench, Tinca tinca"``)."""
    lines = _data_lines("ILSVRC2012_synsets.txt.xz")
    return dict(line.split(" ", 1) for line in lines)


@functools.cache
def val_labels() -> dict[str, int]:
    """The label of each of the 50,000 validation images, by file name (datadings' list)."""
    pairs = (line.split(" ", 1) for line in _data_lines("ILSVRC2012_val.txt.xz"))
    return {name: int(label) for name, label in pairs}


# --- helpers -------------------------------------------------------------------------------------


def _data_lines(name: str) -> list[str]:
    raw = resources.files(__package__).joinpath("data", name).read_bytes()
    return lzma.decompress(raw).decode("utf-8").strip("\n").split("\n")


class _TrainItems:
    """The train images: class tars in archive order, each one's images in its order."""

    def __init__(self, archive: Path, options: tuple[int | None, str]) -> None:
        self.archive = archive
        self.options = options

    def __iter__(self) -> Iterator[Item]:
        synsets = {wnid: label for label, wnid in enumerate(synset_words())}
        path = os.fspath(self.archive)
        with _open(self.archive) as outer:
            for class_tar in _members(self.archive, outer):
                if class_tar.isdir():
                    continue
                wnid = os.path.splitext(class_tar.name)[0]
                if wnid not in synsets or not class_tar.isfile():
                    raise DatasetFormatError(
                        self.archive, f"member {class_tar.name} is not <ILSVRC2012 synset>.tar"
                    )
                try:
                    inner = tarfile.open(fileobj=outer.extractfile(class_tar), mode="r:")  # noqa: SIM115
                except tarfile.TarError as e:
                    raise DatasetFormatError(
                        self.archive, f"member {class_tar.name} is not a tar ({e})"
                    ) from None
                with inner:
                    for image in _members(self.archive, inner):
                        if image.isdir():
                            continue
                        where = f"{path}:{class_tar.name}/{image.name}"
                        offset = class_tar.offset_data + image.offset_data
                        yield _item(image, where, path, offset, synsets[wnid], self.options)


class _ValItems:
    """The validation images in archive order, labelled from datadings' list."""

    def __init__(self, archive: Path, options: tuple[int | None, str]) -> None:
        self.archive = archive
        self.options = options

    def __iter__(self) -> Iterator[Item]:
        labels = val_labels()
        path = os.fspath(self.archive)
        with _open(self.archive) as tar:
            for image in _members(self.archive, tar):
                if image.isdir():
                    continue
                if image.name not in labels:
                    raise LabelError(f"{path}:{image.name}: not an ILSVRC2012 validation image")
                where = f"{path}:{image.name}"
                yield _item(image, where, path, image.offset_data, labels[image.name], self.options)


def _item(
    image: tarfile.TarInfo, where: str, path: str, offset: int, label: int, options: tuple
) -> Item:
    if not image.isfile() or image.issparse():
        raise DatasetFormatError(where.split(":", 1)[0], f"{where} is not a regular file")
    load = functools.partial(_sample, where, path, offset, image.size, label, *options)
    return Item(key=image.name, label=None, source=where, load=load)


def _sample(
    where: str, path: str, offset: int, size: int, label: int, quality: Any, subsampling: str
) -> dict:
    image = verify_image(
        read_file_range(path, offset, size), where, quality=quality, colorsubsampling=subsampling
    )
    return {"image": image, "label": label}


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as e:
        raise DatasetFormatError(path, f"cannot be read as an uncompressed tar ({e})") from None


def _members(archive: Path, tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except (tarfile.TarError, EOFError) as e:
        raise DatasetFormatError(archive, f"cannot be read to the end ({e})") from None
