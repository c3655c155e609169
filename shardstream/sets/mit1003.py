"""``shardstream write MIT1003``: the MIT1003 eye-tracking set, as datadings writes it.

Reads ``ALLSTIMULI.zip`` and ``DATA.zip`` in place and writes ``MIT1003.msgpack``: one sample per
``.jpeg`` stimulus, ``{"key": "ALLSTIMULI/<name>.jpeg", "image": <JPEG bytes>, "experiments":
[{"locations": float32 array, "map": None}, ...]}``. The experiments are the stimulus' ``.mat``
files ``DATA/<subject>/<name>.mat`` in ``DATA.zip`` order; each one's eye data is field 3 of the
struct in field 5 of the file's one variable (field 1 where the struct has fewer fields), as
datadings reads it.

See http://people.csail.mit.edu/tjudd/WherePeopleLook/index.html
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from functools import partial

import numpy as np

from ..write.conversion import Item, LoadFunction, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "MIT1003"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_BASE = "http://people.csail.mit.edu/tjudd/WherePeopleLook/"

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="ALLSTIMULI.zip", md5="0d7df8b954ecba69b6796e77b9afe4b6", url=_BASE + "ALLSTIMULI.zip"
    ),
    SourceFile(name="DATA.zip", md5="ea19d74ad0a0144428c53e9d75c2d71c", url=_BASE + "DATA.zip"),
)
"""The archives the set is written from."""

FIELDS = (
    ("key", "str: the stimulus' last two path parts, e.g. ALLSTIMULI/<name>.jpeg"),
    ("image", "bytes: the JPEG file"),
    ("experiments", "list, one per subject: {locations: float32 array, map: None}"),
)
"""The sample's keys, in order."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for MIT1003 (``INDIR``, ``-o``, ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``MIT1003.msgpack``, in archive order (or shuffled).

    Args:
        args: the parsed options.

    Returns:
        ``{"MIT1003.msgpack": items}``.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: an archive is missing or wrong.
        DatasetFormatError: an archive is not a ZIP file.
    """
    paths = _datadings.locate(args, SOURCES)
    stimuli, data = (paths[source.name] for source in SOURCES)
    experiments = defaultdict(list)
    for name in _datadings.zip_names(data):
        parts = name.split("/")
        if name.endswith(".mat") and len(parts) == 3:
            experiments[parts[2].split(".")[0] + ".jpeg"].append(name)
    names = [name for name in _datadings.zip_names(stimuli) if name.endswith(".jpeg")]
    rng = _datadings.shuffler(args)
    if rng is not None:
        rng.shuffle(names)
    listed = []
    for name in names:
        parts = name.split("/")
        key = "/".join(parts[-2:])
        if len(parts) < 2:
            load: LoadFunction = partial(
                refuse, f"{stimuli}:{name}", "a stimulus must be inside a folder"
            )
        else:
            mats = tuple(("zip", data, mat) for mat in experiments.get(parts[1], ()))
            load = partial(_sample, ("zip", stimuli, name), mats)
        listed.append(Item(key=key, label=None, source=f"{stimuli}:{name}", load=load))
    return {"MIT1003.msgpack": SizedItems(len(listed), listed)}


def _sample(image: _datadings.Blob, mats: tuple[_datadings.Blob, ...]) -> dict:
    return {
        "image": _datadings.read_blob(image),
        "experiments": [{"locations": _eye_data(mat), "map": None} for mat in mats],
    }


def _eye_data(blob: _datadings.Blob) -> np.ndarray:
    loaded = _datadings.load_matlab(_datadings.read_blob(blob))
    record = next(value for name, value in loaded.items() if not name.startswith("__"))
    try:
        return record[0][0][4][0][0][2].astype(np.float32)
    except IndexError:
        return record[0][0][0][0][0][2].astype(np.float32)
