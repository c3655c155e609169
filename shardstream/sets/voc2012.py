"""``shardstream write VOC2012``: Pascal VOC 2012 segmentation, as datadings writes it.

Reads ``VOCtrainval_11-May-2012.tar`` in place and writes ``train.msgpack`` and ``val.msgpack``
(the ``ImageSets/Segmentation`` lists). Samples are ``{"key": "2007_000032", "image": <JPEG
bytes>, "label_image": <PNG bytes>}``; the label image is the class index map (0-20) as an 8-bit
grey PNG. Like datadings, colours that are no class (the void border, 224/224/192) become 0.

See http://host.robots.ox.ac.uk/pascal/VOC/voc2012/
"""

from __future__ import annotations

import argparse
import io
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError
from ..write.conversion import Item, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = [
    "CLASSES",
    "COLORS",
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "command",
    "items",
    "label_map",
]

NAME = "VOC2012"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="VOCtrainval_11-May-2012.tar",
        md5="6cd6e144f989b92b3379bac3b3de84fd",
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    ),
)
"""The archive the set is written from."""

FIELDS = (
    ("key", "str: the image's name, e.g. 2007_000032"),
    ("image", "bytes: the JPEG file"),
    ("label_image", "bytes: grey PNG of class indices 0-20 (void and unknown colours: 0)"),
)
"""The sample's keys, in order."""

CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
"""The 21 class names, by index."""


def _palette(count: int) -> np.ndarray:
    """The VOC devkit's colour map: the bits of the index spread over R, G, B, high bit first."""
    colors = np.zeros((count, 3), dtype=np.uint8)
    for index in range(count):
        value = index
        for shift in range(7, -1, -1):
            for channel in range(3):
                colors[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
    return colors


COLORS = _palette(len(CLASSES))
"""The colour of each class in the source's label images (21 x 3, uint8)."""

_ROOT = "VOCdevkit/VOC2012"
_SPLITS = ("train", "val")
_CODES = (COLORS.astype(np.uint32) << np.array([16, 8, 0], dtype=np.uint32)).sum(axis=1)
_ORDER = np.argsort(_CODES)
_SORTED_CODES = _CODES[_ORDER]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for VOC2012 (``INDIR``, ``-o``, ``-s``, ``--shuffle``,
    ``--calculate-weights``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    parser.add_argument(
        "--calculate-weights",
        action="store_true",
        help="write nothing; print each split's classes (INDEXES) and summed pixel shares "
        "(COUNTS), as datadings does",
    )


def command(args: argparse.Namespace) -> int | None:
    """``--calculate-weights``: print each split's class pixel shares; else ``None``.

    Args:
        args: the parsed options.

    Returns:
        0 when the shares were printed, ``None`` without ``--calculate-weights``.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a tar or lacks a split list or label image.
    """
    if not args.calculate_weights:
        return None
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    members = _datadings.tar_members(archive)
    for split in _SPLITS:
        print(split, "weights")
        names = _split_names(archive, members, split)
        maps = (label_map(_read_member(archive, members, _label_path(n))) for n in names)
        counts = _datadings.class_counts(maps, total=len(names), progress=not args.quiet)
        _datadings.print_values("INDEXES", sorted(counts))
        _datadings.print_values("COUNTS", [counts[c] for c in sorted(counts)])
    return 0


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``train.msgpack`` and ``val.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a tar or lacks a split list.
    """
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    members = _datadings.tar_members(archive)
    rng = _datadings.shuffler(args)
    outputs = {}
    for split in _SPLITS:
        names = _split_names(archive, members, split)
        if rng is not None:
            rng.shuffle(names)
        outputs[f"{split}.msgpack"] = SizedItems(
            len(names), [_item(archive, members, name) for name in names]
        )
    return outputs


def label_map(png: bytes) -> np.ndarray:
    """The class index map (uint8) of a colour label image; unknown colours become 0.

    Args:
        png: the encoded label image (any mode Pillow converts to RGB).
    """
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.uint32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    found = np.minimum(np.searchsorted(_SORTED_CODES, codes), len(_SORTED_CODES) - 1)
    hit = _SORTED_CODES[found] == codes
    return np.where(hit, _ORDER[found], 0).astype(np.uint8)


def _split_names(archive: Path, members: dict, split: str) -> list[str]:
    path = f"{_ROOT}/ImageSets/Segmentation/{split}.txt"
    if path not in members:
        raise DatasetFormatError(archive, f"no member {path}")
    text = _datadings.read_blob(("range", archive, *members[path])).decode("utf-8")
    return text.strip("\n").split("\n")


def _label_path(name: str) -> str:
    return f"{_ROOT}/SegmentationClass/{name}.png"


def _read_member(archive: Path, members: dict, path: str) -> bytes:
    if path not in members:
        raise DatasetFormatError(archive, f"no member {path}")
    return _datadings.read_blob(("range", archive, *members[path]))


def _item(archive: Path, members: dict, name: str) -> Item:
    image = f"{_ROOT}/JPEGImages/{name}.jpg"
    label = _label_path(name)
    source = f"{archive}:{image}"
    missing = [path for path in (image, label) if path not in members]
    if missing:
        load = partial(refuse, f"{archive}:{missing[0]}", "no such member in the archive")
    else:
        load = partial(
            _sample, ("range", archive, *members[image]), ("range", archive, *members[label])
        )
    return Item(key=name, label=None, source=source, load=load)


def _sample(image: _datadings.Blob, label: _datadings.Blob) -> dict:
    labels = label_map(_datadings.read_blob(label))
    return {
        "image": _datadings.read_blob(image),
        "label_image": _datadings.png_bytes(labels, "L", optimize=True),
    }
