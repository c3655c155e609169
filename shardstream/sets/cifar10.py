"""``shardstream write CIFAR10``: CIFAR-10, as datadings writes it.

Reads ``cifar-10-python.tar.gz`` in place (its batch pickles are read without running code: see
shardstream.sets._cifar_python) and writes ``train.msgpack`` (data_batch_1 to 5) and
``test.msgpack``. Samples are ``{"key": "leptodactylus_pentadactylus_s_000004.png", "image":
<PNG bytes>, "label": 0-9}``; the PNG is Pillow's with ``optimize=True``, as datadings writes it.

``--layout binary`` writes shardstream's earlier files instead, from ``cifar-10-binary.tar.gz``:
``OUTDIR/cifar10-train.msgpack`` and ``cifar10-test.msgpack`` (plus ``.labels.txt``), keys
``"train/000123"`` (see shardstream.sets._cifar).

See https://www.cs.toronto.edu/~kriz/cifar.html
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from ..write.conversion import SizedItems
from . import _cifar, _datadings, _layouts
from ._cifar_python import CIFAR10_PYTHON, split_items
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items", "label_names"]

NAME = "CIFAR10"
"""datadings' name of the set (``cifar10`` works too: names are matched in any case)."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (CIFAR10_PYTHON.source,)
"""The archive the set is written from (``--layout binary``: ``cifar-10-binary.tar.gz``)."""

FIELDS = (
    ("key", "str: the image's file name, e.g. leptodactylus_pentadactylus_s_000004.png"),
    ("image", "bytes: RGB PNG, 32 x 32"),
    ("label", "int: the class, 0-9"),
)
"""The sample's keys, in order."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options (``INDIR``, ``-o``, ``-s``, ``--shuffle``) and ``--layout``.

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    _layouts.add_layout_arguments(
        parser,
        legacy="binary",
        reads=_cifar.CIFAR10_LAYOUT.source.name,
        splits=tuple(_cifar.CIFAR10_LAYOUT.splits),
    )


def items(args: argparse.Namespace) -> Mapping[str, SizedItems | _cifar.CifarSplit]:
    """The items of each output file, in datadings' order (or the earlier layout's).

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive does not have the expected layout.
        UnsafeDataError: a batch pickle refers to anything but a numpy array.
        ConfigError: conflicting options (see :func:`~shardstream.sets._layouts.resolve_indir`).
    """
    _layouts.resolve_indir(args)
    if _layouts.is_legacy(args):
        return _layouts.legacy_outputs("cifar10", _cifar.cifar_items(_cifar.CIFAR10_LAYOUT, args))
    return split_items(CIFAR10_PYTHON, args)


def label_names(args: argparse.Namespace) -> list[str]:
    """``--layout binary``: the 10 class names (written as ``<output>.labels.txt``); else none.

    Args:
        args: the parsed options.

    Raises:
        See :func:`items`.
    """
    _layouts.resolve_indir(args)
    if not _layouts.is_legacy(args):
        return []
    return _cifar.cifar_label_names(_cifar.CIFAR10_LAYOUT, args)
