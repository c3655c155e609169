"""``shardstream write MIT300``: the MIT300 saliency benchmark images, as datadings writes them.

Reads ``BenchmarkIMAGES.zip`` in place and writes ``MIT300.msgpack``: one sample per ``.jpg``
member (not those with ``SM`` in their path, nor ``__MACOSX``-style ones starting with ``__``),
``{"key": "BenchmarkIMAGES/i1.jpg", "image": <JPEG bytes>}``. As datadings, the key is the
member's whole path, extension included.

See http://saliency.mit.edu/results_mit300.html
"""

from __future__ import annotations

import argparse
from functools import partial

from ..write.conversion import Item, SizedItems
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "MIT300"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="BenchmarkIMAGES.zip",
        md5="03ed32bdf5e4289950cd28df89451260",
        url="http://saliency.mit.edu/BenchmarkIMAGES.zip",
    ),
)
"""The archive the set is written from."""

FIELDS = (
    ("key", "str: the member's path in the archive, e.g. BenchmarkIMAGES/i1.jpg"),
    ("image", "bytes: the JPEG file"),
)
"""The sample's keys, in order."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for MIT300 (``INDIR``, ``-o``, ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``MIT300.msgpack``, in archive order (or shuffled).

    Args:
        args: the parsed options.

    Returns:
        ``{"MIT300.msgpack": items}``.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a ZIP file.
    """
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    names = [name for name in _datadings.zip_names(archive) if _is_image(name)]
    rng = _datadings.shuffler(args)
    if rng is not None:
        rng.shuffle(names)
    return {
        "MIT300.msgpack": SizedItems(
            len(names),
            [
                Item(
                    key=name,
                    label=None,
                    source=f"{archive}:{name}",
                    load=partial(_datadings.raw_sample, (("image", ("zip", archive, name)),)),
                )
                for name in names
            ],
        )
    }


def _is_image(name: str) -> bool:
    return name.endswith(".jpg") and "SM" not in name and not name.startswith("__")
