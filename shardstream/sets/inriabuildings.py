"""``shardstream write InriaBuildings``: the Inria aerial image labelling set, as datadings
writes it.

Reads the unpacked ``AerialImageDataset`` folder in INDIR (``train/images``, ``train/gt``,
``test/images`` TIFF files; registration is needed to download it) and writes, in source order
(datadings does not shuffle this set):

- ``train.msgpack``: images 6-36 of vienna, kitsap, tyrol-w, chicago and austin, whole;
- ``val.msgpack``: their images 1-5 cut into 384 x 384 tiles row by row (smaller edge tiles are
  left out), keys ``<file>_<tile>``;
- ``test.msgpack``: images 1-36 of bellingham, bloomington, innsbruck, sfo and tyrol-e, tiled
  the same way, without labels.

Samples are ``{"key": "vienna6.tif", "image": <JPEG bytes, quality 95>, "label_image": <1-bit
PNG: building where the ground truth is 255>}`` (test: no ``label_image``).

See https://project.inria.fr/aerialimagelabeling/contest/
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import SourceNotFoundError
from ..write.conversion import Item, SizedItems
from . import _datadings
from .rit18 import tiles
from .sources import SourceFile

__all__ = [
    "CLASSES",
    "CROP_SIZE",
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "UNLISTED_SOURCES",
    "add_arguments",
    "items",
]

NAME = "InriaBuildings"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = ()
"""No file with a published md5."""

UNLISTED_SOURCES = ("AerialImageDataset/ (train/images, train/gt, test/images)",)
"""The folder the set is written from."""

FIELDS = (
    ("key", "str: <location><n>.tif, or that _<tile> (val, test)"),
    ("image", "bytes: JPEG (quality 95) of the RGB image or tile"),
    ("label_image", "bytes: 1-bit PNG, building pixels set (not in test)"),
)
"""The sample's keys, in order."""

CROP_SIZE = 384
"""Height and width of the validation and test tiles."""

CLASSES = ("background", "building")
"""The class names, by index."""

_TRAIN_LOCATIONS = ("vienna", "kitsap", "tyrol-w", "chicago", "austin")
_TEST_LOCATIONS = ("bellingham", "bloomington", "innsbruck", "sfo", "tyrol-e")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for InriaBuildings (``INDIR``, ``-o``; no ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False, verification=False)


def items(args: argparse.Namespace) -> dict[str, object]:
    """The items of ``train.msgpack``, ``val.msgpack`` and ``test.msgpack``.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items (tiles are made as they are written).

    Raises:
        SourceNotFoundError: a TIFF file is missing.
    """
    root = Path(args.indir) / "AerialImageDataset"
    train = _files(root / "train", _TRAIN_LOCATIONS, range(6, 37), labels=True)
    val = _files(root / "train", _TRAIN_LOCATIONS, range(1, 6), labels=True)
    test = _files(root / "test", _TEST_LOCATIONS, range(1, 37), labels=False)
    whole = [
        Item(
            key=image.name, label=None, source=str(image), load=partial(_whole, str(image), str(gt))
        )
        for image, gt in train
    ]
    return {
        "train.msgpack": SizedItems(len(whole), whole),
        "val.msgpack": _tiles(val),
        "test.msgpack": _tiles(test),
    }


def _files(
    split: Path, locations: tuple[str, ...], numbers: range, *, labels: bool
) -> list[tuple[Path, Path | None]]:
    files = []
    for location in locations:
        for number in numbers:
            name = f"{location}{number}.tif"
            pair = (split / "images" / name, split / "gt" / name if labels else None)
            for path in pair:
                if path is not None and not path.is_file():
                    raise SourceNotFoundError(path, f"{path.name} is not in {path.parent}")
            files.append(pair)
    return files


def _encode(array: np.ndarray) -> bytes:
    """As datadings: a bool array as an optimized 1-bit PNG, else (bands, H, W) as JPEG q95."""
    if array.dtype == np.bool_:
        return _datadings.png_bytes(array, "1", optimize=True)
    from simplejpeg import encode_jpeg

    return encode_jpeg(np.ascontiguousarray(array.transpose((1, 2, 0))), quality=95)


def _whole(image: str, gt: str) -> dict:
    labels = _datadings.tiff_bands(gt, np.uint8)[0] == 255
    return {
        "image": _encode(_datadings.tiff_bands(image, np.uint8)),
        "label_image": _encode(labels),
    }


def _tile(image: np.ndarray, labels: np.ndarray | None) -> dict:
    sample = {"image": _encode(image)}
    if labels is not None:
        sample["label_image"] = _encode(labels)
    return sample


def _tiles(files: list[tuple[Path, Path | None]]) -> Iterator[Item]:
    for image, gt in files:
        pixels = _datadings.tiff_bands(image, np.uint8)
        parts = tiles(pixels, CROP_SIZE)
        if gt is not None:
            labels = tiles((_datadings.tiff_bands(gt, np.uint8)[0] == 255)[np.newaxis], CROP_SIZE)
        for index, part in enumerate(parts):
            if part.shape[1] < CROP_SIZE or part.shape[2] < CROP_SIZE:
                continue  # smaller edge tiles are left out
            label = labels[index][0] if gt is not None else None
            yield Item(
                key=f"{image.name}_{index}",
                label=None,
                source=f"{image}:{index}",
                load=partial(_tile, np.ascontiguousarray(part), label),
            )
