"""``shardstream write Vaihingen``: the ISPRS Vaihingen semantic labelling set, as datadings
writes it.

Reads the unpacked ``ISPRS_semantic_labeling_Vaihingen`` folder in INDIR (``top/``,
``gts_for_participants/`` and ``dsm/`` TIFF files; the data is given out on request) and writes
``Vaihingen_train.msgpack`` (areas 1, 3, 5, 7, 13, 17, 21, 23, 26, 32, 37, whole; key the top
image's file name) and ``Vaihingen_val.msgpack`` (areas 11, 15, 28, 30, 34 cut into 384 x 384
tiles row by row, keys ``<file name>_<tile>``). Samples are numpy arrays: ``{"key", "image":
uint8 (3, H, W), "label_image": int64 (H, W), "mask": int32 (H, W)}``. Quirks kept from
datadings: ``mask`` holds the DSM heights (truncated to int32), not a mask; label colours that
are none of the 7 classes become 0 (impervious surfaces); samples are in area order.

See http://www2.isprs.org/commissions/comm3/wg4/2d-sem-label-vaihingen.html
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
    "COLOR_TO_CLASS",
    "CROP_SIZE",
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "UNLISTED_SOURCES",
    "add_arguments",
    "items",
]

NAME = "Vaihingen"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = ()
"""No file with a published md5."""

UNLISTED_SOURCES = ("ISPRS_semantic_labeling_Vaihingen/ (top/, gts_for_participants/, dsm/)",)
"""The folder the set is written from."""

FIELDS = (
    ("key", "str: top_mosaic_09cm_area<N>.tif, or that _<tile> (val)"),
    ("image", "uint8 array (3, H, W): the IRRG top image"),
    ("label_image", "int64 array (H, W): class indices 0-6"),
    ("mask", "int32 array (H, W): the DSM heights (datadings' name, kept)"),
)
"""The sample's keys, in order."""

CROP_SIZE = 384
"""Height and width of the validation tiles."""

CLASSES = ("Impervious surfaces", "Buildings", "Low vegetation", "Tree", "Car", "Clutter")
"""The class names, by index (6 is unclassified)."""

COLOR_TO_CLASS = {
    (255, 255, 255): 0,
    (0, 0, 255): 1,
    (0, 255, 255): 2,
    (0, 255, 0): 3,
    (255, 255, 0): 4,
    (255, 0, 0): 5,
    (0, 0, 0): 6,
}
"""Label image colour -> class index."""

_DIR = "ISPRS_semantic_labeling_Vaihingen"
_TRAIN = (1, 3, 5, 7, 13, 17, 21, 23, 26, 32, 37)
_VAL = (11, 15, 28, 30, 34)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for Vaihingen (``INDIR``, ``-o``; no ``-s``, no ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False, verification=False)


def items(args: argparse.Namespace) -> dict[str, object]:
    """The items of ``Vaihingen_train.msgpack`` and ``Vaihingen_val.msgpack``.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items (the validation tiles are made as they are written).

    Raises:
        SourceNotFoundError: a TIFF file is missing.
    """
    root = Path(args.indir) / _DIR
    for area in (*_TRAIN, *_VAL):
        for path in _paths(root, area):
            if not path.is_file():
                raise SourceNotFoundError(path, f"{path.name} is not in {path.parent}")
    train = [
        Item(
            key=_paths(root, area)[0].name,
            label=None,
            source=str(_paths(root, area)[0]),
            load=partial(_whole, *map(str, _paths(root, area))),
        )
        for area in _TRAIN
    ]
    return {
        "Vaihingen_train.msgpack": SizedItems(len(train), train),
        "Vaihingen_val.msgpack": _val_items(root),
    }


def _paths(root: Path, area: int) -> tuple[Path, Path, Path]:
    name = f"top_mosaic_09cm_area{area}.tif"
    return (
        root / "top" / name,
        root / "gts_for_participants" / name,
        root / "dsm" / ("dsm" + name[3:]),
    )


def _read(image: str, labels: str, dsm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    colours = _datadings.tiff_bands(labels, np.uint8).transpose(1, 2, 0)
    classes = np.zeros(colours.shape[:2], dtype=np.uint8)
    for colour, index in COLOR_TO_CLASS.items():
        classes[np.all(colours == np.array(colour).reshape((1, 1, 3)), axis=2)] = index
    return (
        _datadings.tiff_bands(image, np.uint8),
        classes.astype(np.int64),
        _datadings.tiff_bands(dsm, np.int32)[0],
    )


def _whole(image: str, labels: str, dsm: str) -> dict:
    pixels, classes, heights = _read(image, labels, dsm)
    return {"image": pixels, "label_image": classes, "mask": heights}


def _val_items(root: Path) -> Iterator[Item]:
    for area in _VAL:
        paths = _paths(root, area)
        pixels, classes, heights = _read(*map(str, paths))
        parts = zip(
            tiles(pixels, CROP_SIZE),
            tiles(classes[np.newaxis], CROP_SIZE),
            tiles(heights[np.newaxis], CROP_SIZE),
        )
        for index, (image, labels, mask) in enumerate(parts):
            sample = {
                "image": np.array(image).astype(np.uint8),
                "label_image": np.array(labels[0]).astype(np.int64),
                "mask": np.array(mask[0]),
            }
            yield Item(
                key=f"{paths[0].name}_{index}",
                label=None,
                source=f"{paths[0]}:{index}",
                load=partial(_datadings.given_sample, sample),
            )
