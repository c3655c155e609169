"""``shardstream write cifar100``: CIFAR-100 from the official binary archive ``cifar-100-binary.tar.gz``.

Splits ``train`` (50,000 images) and ``test`` (10,000). Samples are ``{"key": "train/000123",
"image": <PNG bytes>, "label": <fine label 0-99>, "coarse_label": <0-19>}``.
Images are lossless PNGs of the archive's pixels; keys number a split's records in archive
order. The archive is read in place (no unpickling, no extraction).
"""

from __future__ import annotations

import argparse

from . import _cifar
from .sources import SourceFile

__all__ = ["NAME", "SOURCES", "add_arguments", "items", "label_names", "coarse_label_names"]

NAME = "cifar100"
"""The converter's name on the command line."""

SOURCES: tuple[SourceFile, ...] = (_cifar.CIFAR100_LAYOUT.source,)
"""The archive this converter reads."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the converter's options (``--indir``, ``--download``, ``--split``, ...).

    Args:
        parser: the ``write cifar100`` parser.
    """
    _cifar.add_cifar_arguments(parser, _cifar.CIFAR100_LAYOUT)


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
    return _cifar.cifar_items(_cifar.CIFAR100_LAYOUT, args)


def label_names(args: argparse.Namespace) -> list[str]:
    """The 100 fine class names from ``fine_label_names.txt``, label ``i`` at position ``i``.

    Args:
        args: the parsed options.

    Returns:
        The names (``apple``, ``aquarium_fish``, ...).

    Raises:
        See :func:`items`.
    """
    return _cifar.cifar_label_names(_cifar.CIFAR100_LAYOUT, args)


def coarse_label_names(args: argparse.Namespace) -> list[str]:
    """The 20 coarse class names from ``coarse_label_names.txt`` (the ``coarse_label`` field).

    Args:
        args: the parsed options.

    Returns:
        The names (``aquatic_mammals``, ``fish``, ...).

    Raises:
        See :func:`items`.
    """
    return _cifar.cifar_coarse_label_names(_cifar.CIFAR100_LAYOUT, args)
