"""``shardstream write SALICON2017``: the SALICON 2017 saliency challenge, as datadings writes it.

Reads ``image.zip`` and ``fixations.zip`` in place and writes ``train.msgpack``,
``val.msgpack`` and ``test.msgpack``; see :mod:`shardstream.sets._salicon` for the samples.

See http://salicon.net/challenge-2017/
"""

from __future__ import annotations

import argparse

from ..write.conversion import SizedItems
from . import _salicon
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "SALICON2017"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_DRIVE = "https://drive.google.com/uc?id="

SOURCES: tuple[SourceFile, SourceFile] = (
    SourceFile(
        name="image.zip",
        md5="eb2a1bb706633d1b31fc2e01422c5757",
        url=_DRIVE + "1g8j-hTT-51IG1UFwP0xTGhLdgIUCW5e5&export=download",
    ),
    SourceFile(
        name="fixations.zip",
        md5="462b70f4f9e8ea446ac628e46cea8d3d",
        url=_DRIVE + "0B2hsWbciDVedS1lBZHprdXFoZkU&export=download",
    ),
)
"""The archives the set is written from."""

FIELDS = _salicon.FIELDS
"""The sample's keys, in order."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for SALICON2017 (``INDIR``, ``-o``, ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _salicon.add_arguments(parser)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``train``, ``val`` and ``test.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: an archive is missing or wrong.
        DatasetFormatError: an archive is not a ZIP file.
    """
    return _salicon.items(args, SOURCES)
