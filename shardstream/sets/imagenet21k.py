"""``shardstream write ImageNet21k``: the ImageNet-21k winter 2021 release (MIIL's 10,450
classes), as datadings writes it.

Reads ``winter21_whole.tar.gz`` (registration needed; ``imagenet21k_miil_tree.pth`` is checked
as datadings does, not read) and writes ``train.msgpack`` and ``val.msgpack``. The per-class
tars inside are read in archive order; a class' images are sorted by name, its first 50 go to
``val``, the rest to ``train`` (as MIIL's preprocessing does). Samples are ``{"key":
"n00005787_10030.JPEG", "image": <JPEG bytes>, "label": int, "label_tree": [int, ...]}``: the
label is the class' index, the tree its ancestors' labels. Images pass datadings' check (see
:mod:`shardstream.sets._verify_jpeg`; ``--compress`` and ``--subsampling``). Unlike datadings,
an image that cannot be read stops the write unless ``--on-error skip`` (datadings prints a line
and leaves it out). The compressed archive is read once per output file (it cannot be read in
place); the checks run on every core.

See http://image-net.org/download and https://github.com/Alibaba-MIIL/ImageNet21K
"""

from __future__ import annotations

import argparse
import json
import lzma
import tarfile
from collections.abc import Iterator
from functools import cache, partial
from importlib import resources
from pathlib import Path

from ..errors import DatasetFormatError
from ..write.conversion import Item
from . import _datadings
from ._verify_jpeg import add_compress_arguments, verify_image
from .sources import SourceFile

__all__ = [
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "VAL_PER_CLASS",
    "add_arguments",
    "items",
    "synsets",
]

NAME = "ImageNet21k"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="imagenet21k_miil_tree.pth",
        md5="ed3a7de5b90ace4999a99fca2a129d74",
        url="https://miil-public-eu.oss-eu-central-1.aliyuncs.com/model-zoo/ImageNet_21K_P/"
        "resources/winter21/imagenet21k_miil_tree.pth",
    ),
    SourceFile(
        name="winter21_whole.tar.gz",
        md5="ab313ce03179fd803a401b02c651c0a2",
        url=None,
        note="register at https://image-net.org/download to download it",
    ),
)
"""The files the set is written from."""

FIELDS = (
    ("key", "str: the image's name in its class tar, e.g. n00005787_10030.JPEG"),
    ("image", "bytes: JPEG (checked, re-encoded where datadings re-encodes)"),
    ("label", "int: class index 0-10449"),
    ("label_tree", "list of int: the labels of the class' ancestors and itself"),
)
"""The sample's keys, in order."""

VAL_PER_CLASS = 50
"""The first images (by name) of each class that form the validation set."""


@cache
def synsets() -> dict:
    """The classes: ``synsets`` (ids by label), ``words``, ``trees`` (label lists), and the
    ``train`` and ``val`` sample counts, as datadings knows them."""
    data = resources.files(__package__).joinpath("data/imagenet21k_synsets.json.xz").read_bytes()
    return json.loads(lzma.decompress(data))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for ImageNet21k (``INDIR``, ``-o``, ``-s``, ``-t``,
    ``--compress``, ``--subsampling``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, shuffle=False)
    _datadings.add_threads_argument(parser)
    add_compress_arguments(parser)


def items(args: argparse.Namespace) -> dict[str, Iterator[Item]]:
    """The items of ``train.msgpack`` and ``val.msgpack`` (each reads the archive once).

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a file is missing or wrong.
        DatasetFormatError: the archive is not a readable tar.gz.
    """
    paths = _datadings.locate(args, SOURCES)
    archive = paths[SOURCES[1].name]
    check = partial(_check, quality=args.compress, subsampling=args.subsampling)
    return {
        "train.msgpack": _split_items(archive, "train", check),
        "val.msgpack": _split_items(archive, "val", check),
    }


def _split_items(archive: Path, split: str, check: partial) -> Iterator[Item]:
    meta = synsets()
    labels = {synset: label for label, synset in enumerate(meta["synsets"])}
    try:
        with tarfile.open(archive, mode="r|gz") as outer:
            for member in outer:
                synset = Path(member.name).stem
                if not member.isfile() or synset not in labels:
                    continue
                label = labels[synset]
                with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                    images = sorted(
                        (info.name, handle.read())
                        for info in inner
                        if info.isfile() and (handle := inner.extractfile(info)) is not None
                    )
                chosen = images[:VAL_PER_CLASS] if split == "val" else images[VAL_PER_CLASS:]
                for name, data in chosen:
                    yield Item(
                        key=name,
                        label=None,
                        source=f"{archive}:{member.name}:{name}",
                        load=partial(
                            check, data, f"{member.name}:{name}", label, meta["trees"][label]
                        ),
                    )
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetFormatError(archive, f"not a readable tar.gz: {e}") from None


def _check(
    data: bytes,
    source: str,
    label: int,
    tree: list[int],
    *,
    quality: int | None,
    subsampling: str,
) -> dict:
    image = verify_image(data, source, quality=quality, colorsubsampling=subsampling)
    return {"image": image, "label": label, "label_tree": tree}
