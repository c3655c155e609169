"""``shardstream write RIT18``: the RIT-18 multispectral segmentation set, as datadings writes it.

Reads ``rit18_data.mat`` and writes ``train.msgpack`` (one sample, the whole training mosaic,
key ``train``) and ``val.msgpack`` (the validation mosaic cut into 384 x 384 tiles, row by row,
keys ``val_0``, ``val_1``, ...; edge tiles are smaller). Samples are ``{"key", "image": uint16
(6, H, W), "label_image": int64 (H, W), "mask": uint8 (H, W)}``: numpy arrays, not images. The
mask is the data's 7th band. As datadings, the test mosaic (which has no labels) is not written
and samples are in source order (no ``--shuffle``).

See https://github.com/rmkemker/RIT-18
"""

from __future__ import annotations

import argparse
import itertools
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError
from ..write.conversion import Item, SizedItems
from . import _datadings
from .sources import SourceFile

__all__ = ["CROP_SIZE", "DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items", "tiles"]

NAME = "RIT18"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="rit18_data.mat",
        md5="783ffe651310352e9c09b8ac389876c7",
        url="http://www.cis.rit.edu/~rmk6217/rit18_data.mat",
    ),
)
"""The MATLAB file the set is written from."""

FIELDS = (
    ("key", "str: train, or val_<tile index>"),
    ("image", "uint16 array (6, H, W): the six spectral bands"),
    ("label_image", "int64 array (H, W): class indices"),
    ("mask", "uint8 array (H, W): the 7th band (valid pixels)"),
)
"""The sample's keys, in order."""

CROP_SIZE = 384
"""Height and width of the validation tiles."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for RIT18 (``INDIR``, ``-o``, ``-s``; no ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``train.msgpack`` and ``val.msgpack``.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the file is missing or wrong.
        DatasetFormatError: the file is not a MATLAB file with RIT-18's arrays.
    """
    path = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    data = _load(path)
    train = data["train_data"]
    outputs = {
        "train.msgpack": SizedItems(
            1, [_item(path, "train", train, data["train_labels"].astype(np.int64))]
        )
    }
    val = [
        _item(path, f"val_{index}", image, labels[0])
        for index, (image, labels) in enumerate(
            zip(tiles(data["val_data"]), tiles(np.expand_dims(data["val_labels"], 0)))
        )
    ]
    outputs["val.msgpack"] = SizedItems(len(val), val)
    return outputs


def tiles(array: np.ndarray, size: int = CROP_SIZE) -> list[np.ndarray]:
    """Cut a (bands, H, W) array into ``size`` x ``size`` tiles, row by row (edge tiles smaller).

    Args:
        array: the array to cut.
        size: the tiles' height and width.
    """
    rows = range(0, array.shape[1], size)
    columns = range(0, array.shape[2], size)
    return [array[:, r : r + size, c : c + size] for r, c in itertools.product(rows, columns)]


def _load(path: Path) -> dict:
    try:
        data = _datadings.load_matlab(path)
    except (ValueError, TypeError, OSError, NotImplementedError) as e:
        raise DatasetFormatError(path, f"not a readable MATLAB file: {e}") from None
    wanted = ("train_data", "train_labels", "val_data", "val_labels")
    missing = [name for name in wanted if name not in data]
    if missing:
        raise DatasetFormatError(path, f"no {', '.join(missing)} in the file")
    for name in ("train_data", "val_data"):
        if data[name].ndim != 3:
            raise DatasetFormatError(path, f"{name} must have 3 dimensions (bands, H, W)")
    return data


def _item(path: object, key: str, data: np.ndarray, labels: np.ndarray) -> Item:
    sample = {
        "image": np.array(data[:6]).astype(np.uint16),
        "label_image": np.array(labels).astype(np.int64),
        "mask": np.array(data[-1]).astype(np.uint8),
    }
    return Item(
        key=key, label=None, source=f"{path}:{key}", load=partial(_datadings.given_sample, sample)
    )
