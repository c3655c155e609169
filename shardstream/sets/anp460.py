"""``shardstream write ANP460``: the ANP460 eye-tracking set (adjective-noun pairs), as datadings
writes it.

Reads ``images_original.zip`` and ``wrangled_data.zip`` in place and writes ``ANP460.msgpack``:
one sample per ``.jpg`` image, ``{"key": "<folder>/<n>.jpg", "image": <JPEG bytes>,
"experiments": [...], "anp": ..., "type": ...}``. ``anp`` and ``type`` come from
``wrangled_data/image_anp_list.json``; each experiment is one ``<n>.txt`` fixation file (in
archive order), ``{"locations": float32 (k, 2) (columns 2-3 of the file), "map": None, "answer":
str, "duration": float}``, with the answer and its delay from line ``n`` of the matching (same
position) ``answer.txt``. As datadings, samples are always shuffled (``--shuffle no`` is ours),
there is no md5 to verify and an output is never overwritten without ``-y`` (ours too).
"""

from __future__ import annotations

import argparse
import io
import json
import posixpath
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError, SourceNotFoundError
from ..write.conversion import Item, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "UNLISTED_SOURCES", "add_arguments", "items"]

NAME = "ANP460"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = ()
"""No file with a published md5."""

UNLISTED_SOURCES = ("images_original.zip", "wrangled_data.zip")
"""The archives the set is written from (datadings publishes no md5 or URL for them)."""

FIELDS = (
    ("key", "str: <folder>/<n>.jpg"),
    ("image", "bytes: the JPEG file"),
    (
        "experiments",
        "list: {locations: float32 (k, 2), map: None, answer: str, duration: float}",
    ),
    ("anp", "the image's adjective-noun pair (from image_anp_list.json)"),
    ("type", "the image's type (from image_anp_list.json)"),
)
"""The sample's keys, in order."""

_ANP_LIST = "wrangled_data/image_anp_list.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for ANP460 (``INDIR``, ``-o``; ``--shuffle``, ours here).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser, verification=False)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``ANP460.msgpack`` (shuffled by default, as datadings always does).

    Args:
        args: the parsed options.

    Returns:
        ``{"ANP460.msgpack": items}``.

    Raises:
        SourceNotFoundError: an archive is missing.
        DatasetFormatError: an archive is not a ZIP file, or the ANP list is missing or bad.
    """
    images, data = (Path(args.indir) / name for name in UNLISTED_SOURCES)
    for path in (images, data):
        if not path.is_file():
            raise SourceNotFoundError(path, f"{path.name} is not in {args.indir}")
    data_names = _datadings.zip_names(data)
    if _ANP_LIST not in data_names:
        raise DatasetFormatError(data, f"no member {_ANP_LIST}")
    try:
        anps = json.loads(_datadings.read_blob(("zip", data, _ANP_LIST)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DatasetFormatError(f"{data}:{_ANP_LIST}", f"not JSON: {e}") from None
    fixations = defaultdict(list)
    answer_files = []
    for name in data_names:
        if not name.endswith(".txt"):
            continue
        base = posixpath.basename(name)
        if base == "answer.txt":
            answer_files.append(name)
        else:
            fixations[base.replace(".txt", ".jpg")].append(name)
    answers = [
        _datadings.read_blob(("zip", data, name)).decode("utf-8").replace("\r", "").split("\n")
        for name in answer_files
    ]
    names = [name for name in _datadings.zip_names(images) if name.endswith(".jpg")]
    rng = _datadings.shuffler(args)
    if rng is not None:
        rng.shuffle(names)
    listed = [_item(images, data, name, anps, fixations, answers) for name in names]
    return {"ANP460.msgpack": SizedItems(len(listed), listed)}


def _item(
    images: Path, data: Path, name: str, anps: dict, fixations: dict, answers: list[list[str]]
) -> Item:
    key = "/".join(name.split("/")[-2:])
    base = posixpath.basename(name)
    source = f"{images}:{name}"
    try:
        number = int(base.partition(".")[0])
        replies = []
        for lines in answers:
            _, answer, delay = lines[number].split(",")
            replies.append((answer, float(delay)))
        anp, kind = anps[base]
    except (ValueError, IndexError, KeyError, TypeError) as e:
        reason = f"no answers or ANP entry for this image: {type(e).__name__}: {e}"
        return Item(key=key, label=None, source=source, load=partial(refuse, source, reason))
    blobs = tuple(("zip", data, path) for path in fixations.get(base, ()))
    load = partial(_sample, ("zip", images, name), blobs, tuple(replies), anp, kind)
    return Item(key=key, label=None, source=source, load=load)


def _sample(
    image: _datadings.Blob,
    fixations: tuple[_datadings.Blob, ...],
    replies: tuple[tuple[str, float], ...],
    anp: object,
    kind: object,
) -> dict:
    experiments = []
    for index, blob in enumerate(fixations):
        table = np.loadtxt(io.BytesIO(_datadings.read_blob(blob)), dtype=np.float32, delimiter=",")
        answer, duration = replies[index]
        experiments.append(
            {"locations": table[:, 1:3], "map": None, "answer": answer, "duration": duration}
        )
    return {
        "image": _datadings.read_blob(image),
        "experiments": experiments,
        "anp": anp,
        "type": kind,
    }
