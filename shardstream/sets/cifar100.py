"""``shardstream write CIFAR100``: CIFAR-100, as datadings writes it.

Reads ``cifar-100-python.tar.gz`` in place (its batch pickles are read without running code: see
shardstream.sets._cifar_python) and writes ``train.msgpack`` and ``test.msgpack``.
Samples are ``{"key": "bos_taurus_s_000507.png", "image": <PNG bytes>, "label": <fine label
0-99>, "coarse_label": <0-19>}``. As datadings does, a file name that occurs again in the same
split gets its count appended (``"name.png2"``).

``--layout binary`` writes shardstream's earlier files instead, from ``cifar-100-binary.tar.gz``:
``OUTDIR/cifar100-train.msgpack`` and ``cifar100-test.msgpack`` (plus ``.labels.txt``), keys
``"train/000123"`` (see shardstream.sets._cifar).

See https://www.cs.toronto.edu/~kriz/cifar.html
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from ..write.conversion import SizedItems
from . import _cifar, _datadings, _layouts
from ._cifar_python import CIFAR100_PYTHON, split_items
from .sources import SourceFile

__all__ = [
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "items",
    "label_names",
    "coarse_label_names",
]

NAME = "CIFAR100"
"""datadings' name of the set (``cifar100`` works too: names are matched in any case)."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (CIFAR100_PYTHON.source,)
"""The archive the set is written from (``--layout binary``: ``cifar-100-binary.tar.gz``)."""

FIELDS = (
    ("key", "str: the image's file name (a repeated name in a split gets its count appended)"),
    ("image", "bytes: RGB PNG, 32 x 32"),
    ("label", "int: the fine class, 0-99"),
    ("coarse_label", "int: the coarse class, 0-19"),
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
        reads=_cifar.CIFAR100_LAYOUT.source.name,
        splits=tuple(_cifar.CIFAR100_LAYOUT.splits),
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
        splits = _cifar.cifar_items(_cifar.CIFAR100_LAYOUT, args)
        return _layouts.legacy_outputs("cifar100", splits)
    return split_items(CIFAR100_PYTHON, args)


def label_names(args: argparse.Namespace) -> list[str]:
    """``--layout binary``: the 100 fine class names (``<output>.labels.txt``); else none.

    Args:
        args: the parsed options.

    Raises:
        See :func:`items`.
    """
    _layouts.resolve_indir(args)
    if not _layouts.is_legacy(args):
        return []
    return _cifar.cifar_label_names(_cifar.CIFAR100_LAYOUT, args)


def coarse_label_names(args: argparse.Namespace) -> list[str]:
    """``--layout binary``: the 20 coarse class names from ``coarse_label_names.txt``.

    Args:
        args: the parsed options.

    Raises:
        See :func:`items`.
    """
    _layouts.resolve_indir(args)
    return _cifar.cifar_coarse_label_names(_cifar.CIFAR100_LAYOUT, args)
