"""``shardstream write Places365``: the Places365 scene set, as datadings writes it.

Reads the chosen variant's tar files in place (high resolution by default, ``-l`` for the
256 x 256 ones; the standard training set, or ``-c`` for the challenge's larger one) plus
``filelist_places365-standard.tar``, and writes, in tar order (datadings does not shuffle this
set):

- ``training.msgpack``: ``{"key": <member path>, "image": <JPEG bytes>, "label": int}``, the
  label from the member's folders below the first two (``data_large/a/airfield/x.jpg`` ->
  ``airfield`` -> 0, see ``CLASSES``);
- ``validation.msgpack``: the same, labelled by ``places365_val.txt``;
- ``testing.msgpack``: ``{"key", "image"}`` (``places365_test.txt`` has no labels).

See http://places2.csail.mit.edu/index.html
"""

from __future__ import annotations

import argparse
import posixpath
from functools import partial
from pathlib import Path

from ..errors import DatasetFormatError
from ..write.conversion import Item, LoadFunction, SizedItems
from ..write.loaders import refuse
from . import _datadings
from ._places365_classes import CLASSES
from .sources import SourceFile

__all__ = ["CLASSES", "DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "Places365"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_BASE = "http://data.csail.mit.edu/places/places365/"


def _source(name: str, md5: str) -> SourceFile:
    return SourceFile(name=name, md5=md5, url=_BASE + name)


_META = _source("filelist_places365-standard.tar", "35a0585fee1fa656440f3ab298f8479c")
_VAL_TEST = {
    False: (
        _source("val_large.tar", "9b71c4993ad89d2d8bcbdc4aef38042f"),
        _source("test_large.tar", "41a4b6b724b1d2cd862fb3871ed59913"),
    ),
    True: (
        _source("val_256.tar", "e27b17d8d44f4af9a78502beb927f808"),
        _source("test_256.tar", "f532f6ad7b582262a2ec8009075e186b"),
    ),
}
_TRAIN = {  # (low resolution, challenge)
    (False, False): _source(
        "train_large_places365standard.tar", "67e186b496a84c929568076ed01a8aa1"
    ),
    (False, True): _source(
        "train_large_places365challenge.tar", "605f18e68e510c82b958664ea134545f"
    ),
    (True, False): _source("train_256_places365standard.tar", "53ca1c756c3d1e7809517cc47c5561c5"),
    (True, True): _source("train_256_places365challenge.tar", "741915038a5e3471ec7332404dfb64ef"),
}

SOURCES: tuple[SourceFile, ...] = (
    *_TRAIN.values(),
    *_VAL_TEST[False],
    *_VAL_TEST[True],
    _META,
)
"""Every file of every variant (a run reads one training tar, one val and test tar, the lists)."""

FIELDS = (
    ("key", "str: the member's path in its tar"),
    ("image", "bytes: the JPEG file"),
    ("label", "int: class index 0-364 (not in testing.msgpack)"),
)
"""The sample's keys, in order."""

_CLASS_TO_ID = {name: index for index, name in enumerate(CLASSES)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for Places365 (``INDIR``, ``-o``, ``-s``, ``-l``, ``-c``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False)
    parser.add_argument(
        "-l",
        "--low-res",
        action="store_true",
        help="the 256 x 256 images (default: the large ones, shorter side 512)",
    )
    parser.add_argument(
        "-c",
        "--challenge",
        action="store_true",
        help="the challenge's extended training set (validation and testing are the same)",
    )


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``training``, ``validation`` and ``testing.msgpack``, in tar order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a file is missing or wrong.
        DatasetFormatError: a tar is unreadable, or a file list is missing.
    """
    train = _TRAIN[(args.low_res, args.challenge)]
    val, test = _VAL_TEST[args.low_res]
    paths = _datadings.locate(args, (train, val, test, _META))
    meta = paths[_META.name]
    meta_members = _datadings.tar_members(meta)
    training = [
        _item(paths[train.name], name, where, _train_label(name))
        for name, where in _jpegs(paths[train.name])
    ]
    outputs = {"training.msgpack": SizedItems(len(training), training)}
    for source, output, listing in (
        (val, "validation.msgpack", "places365_val.txt"),
        (test, "testing.msgpack", "places365_test.txt"),
    ):
        labels = _labels(meta, meta_members, listing)
        listed = []
        for name, where in _jpegs(paths[source.name]):
            label: int | str | None = labels.get(posixpath.basename(name))
            if label is None and output == "validation.msgpack":
                label = f"{posixpath.basename(name)} not in {listing}"  # datadings fails there
            listed.append(_item(paths[source.name], name, where, label))
        outputs[output] = SizedItems(len(listed), listed)
    return outputs


def _jpegs(tar: Path) -> list[tuple[str, tuple[int, int]]]:
    return [(n, w) for n, w in _datadings.tar_members(tar).items() if n.endswith(".jpg")]


def _train_label(name: str) -> int | str:
    """The class index of a training member, or why it has none."""
    folder = "/".join(name.split("/")[2:-1])
    return _CLASS_TO_ID.get(folder, f"unknown class folder {folder!r}")


def _labels(meta: Path, members: dict, listing: str) -> dict[str, int]:
    """Image file name -> class, from a file list (up to its first line without a class)."""
    if listing not in members:
        raise DatasetFormatError(meta, f"no member {listing}")
    text = _datadings.read_blob(("range", meta, *members[listing])).decode("utf-8")
    labels = {}
    for line in text.splitlines(keepends=True):
        try:
            image, label = line.split()
            labels[image] = int(label)
        except ValueError:
            break  # the unlabelled (test) list
    return labels


def _item(tar: Path, name: str, where: tuple[int, int], label: int | str | None) -> Item:
    source = f"{tar}:{name}"
    if isinstance(label, str):  # why it has no label
        load: LoadFunction = partial(refuse, source, label)
        return Item(key=name, label=None, source=source, load=load)
    blob = ("range", tar, *where)
    fields = (("image", blob),)
    if label is None:
        return Item(
            key=name, label=None, source=source, load=partial(_datadings.raw_sample, fields)
        )
    return Item(key=name, label=None, source=source, load=partial(_labelled_sample, blob, label))


def _labelled_sample(image: _datadings.Blob, label: int) -> dict:
    return {"image": _datadings.read_blob(image), "label": label}
