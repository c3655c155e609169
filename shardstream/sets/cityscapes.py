"""``shardstream write Cityscapes``: Cityscapes fine annotations, as datadings writes them.

Reads ``leftImg8bit_trainvaltest.zip``, ``gtFine_trainvaltest.zip`` and
``disparity_trainvaltest.zip`` in place (registration is needed to download them) and writes
``train.msgpack``, ``val.msgpack`` and ``test.msgpack``. Samples are ``{"key":
"train/aachen/aachen_000000_000019", "image": <PNG bytes>, "label_image": <labelIds PNG bytes>,
"disparity_image": <PNG bytes>}``, the archives' files unchanged.

See https://www.cityscapes-dataset.com/
"""

from __future__ import annotations

import argparse
from functools import partial

from ..write.conversion import Item, LoadFunction, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "Cityscapes"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_LOGIN = "log in at https://www.cityscapes-dataset.com/downloads/ to download it"

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="leftImg8bit_trainvaltest.zip",
        md5="0a6e97e94b616a514066c9e2adb0c97f",
        url=None,
        note=_LOGIN,
    ),
    SourceFile(
        name="disparity_trainvaltest.zip",
        md5="2c8272766993c983321f34c73daada5c",
        url=None,
        note=_LOGIN,
    ),
    SourceFile(
        name="gtFine_trainvaltest.zip",
        md5="4237c19de34c8a376e9ba46b495d6f66",
        url=None,
        note=_LOGIN,
    ),
)
"""The archives the set is written from."""

FIELDS = (
    ("key", "str: <split>/<city>/<city>_<seq>_<frame>"),
    ("image", "bytes: the leftImg8bit PNG"),
    ("label_image", "bytes: the gtFine labelIds PNG"),
    ("disparity_image", "bytes: the disparity PNG"),
)
"""The sample's keys, in order."""

_SPLITS = ("train", "val", "test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for Cityscapes (``INDIR``, ``-o``, ``-s``, ``--shuffle``,
    ``-t/--threads``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    _datadings.add_threads_argument(parser)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``train``, ``val`` and ``test.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError: an archive is missing or wrong.
        DatasetFormatError: an archive is not a ZIP file.
    """
    paths = _datadings.locate(args, SOURCES)
    left, disparity, fine = (paths[source.name] for source in SOURCES)
    suffix = "_leftImg8bit.png"
    keys = [
        name.replace(suffix, "").replace("leftImg8bit/", "")
        for name in _datadings.zip_names(left)
        if name.endswith(suffix)
    ]
    present = {
        disparity: set(_datadings.zip_names(disparity)),
        fine: set(_datadings.zip_names(fine)),
    }
    rng = _datadings.shuffler(args)
    outputs = {}
    for split in _SPLITS:
        chosen = [key for key in keys if key.startswith(split)]
        if rng is not None:
            rng.shuffle(chosen)
        items = []
        for key in chosen:
            blobs = (
                ("image", ("zip", left, f"leftImg8bit/{key}_leftImg8bit.png")),
                ("label_image", ("zip", fine, f"gtFine/{key}_gtFine_labelIds.png")),
                ("disparity_image", ("zip", disparity, f"disparity/{key}_disparity.png")),
            )
            missing = [blob for _, blob in blobs[1:] if blob[2] not in present[blob[1]]]
            if missing:
                where = f"{missing[0][1]}:{missing[0][2]}"
                load: LoadFunction = partial(refuse, where, "no such member in the archive")
            else:
                load = partial(_datadings.raw_sample, blobs)
            items.append(Item(key=key, label=None, source=f"{left}:{blobs[0][1][2]}", load=load))
        outputs[f"{split}.msgpack"] = SizedItems(len(items), items)
    return outputs
