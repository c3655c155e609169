"""``shardstream write cifar10``: CIFAR-10 from the official binary archive ``cifar-10-binary.tar.gz``.

Splits ``train`` (50,000 images) and ``test`` (10,000). Samples are ``{"key": "train/000123",
"image": <PNG bytes>, "label": 0-9}``. Images are lossless PNGs of the archive's pixels; keys
number a split's records in order (batches 1 to 5). The archive is read in place (no
unpickling, no extraction).
"""

from __future__ import annotations

import argparse

from . import _cifar
from .sources import SourceFile

__all__ = ["NAME", "SOURCES", "add_arguments", "items", "label_names"]

NAME = "cifar10"
"""The converter's name on the command line."""

SOURCES: tuple[SourceFile, ...] = (_cifar.CIFAR10_LAYOUT.source,)
"""The archive this converter reads."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the converter's options (``--indir``, ``--download``, ``--split``, ...).

    Args:
        parser: the ``write cifar10`` parser.
    """
    _cifar.add_cifar_arguments(parser, _cifar.CIFAR10_LAYOUT)


def items(args: argparse.Namespace) -> dict[str, _cifar.CifarSplit]:
    """The items of each split, read from the verified archive.

    Args:
        args: the parsed options.

    Returns:
        ``{"train": <50,000 items>, "test": <10,000 items>}`` (sized iterables of
        :class:`~shardstream.write.conversion.Item`).

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing, wrong
            or could not be downloaded.
        DatasetFormatError: the archive does not have the binary version's layout.
    """
    return _cifar.cifar_items(_cifar.CIFAR10_LAYOUT, args)


def label_names(args: argparse.Namespace) -> list[str]:
    """The 10 class names from ``batches.meta.txt``, label ``i`` at position ``i``.

    Args:
        args: the parsed options.

    Returns:
        The names (``airplane``, ``automobile``, ...).

    Raises:
        See :func:`items`.
    """
    return _cifar.cifar_label_names(_cifar.CIFAR10_LAYOUT, args)
