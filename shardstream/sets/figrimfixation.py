"""``shardstream write FIGRIMFixation``: FIGRIM's fixations on its target and filler images,
as datadings writes them.

Reads ``Targets.zip`` with ``allImages_release.mat`` and ``Fillers.zip`` with
``allImages_fillers.mat`` and writes ``target.msgpack`` and ``filler.msgpack``: one sample per
``.jpg`` member that the ``.mat`` file has fixations for (the others are left out, as datadings
does), ``{"key": <member path>, "image": <JPEG bytes>, "experiments": [{"locations": float32
array, "map": None}, ...]}``, one experiment per fixation sequence of each subject.

See http://figrim.mit.edu/index_eyetracking.html
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError
from ..write.conversion import Item, SizedItems
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "FIGRIMFixation"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_MIT = "http://figrim.mit.edu/"
_GIT = "https://github.com/cvzoya/figrim/raw/master/"

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="allImages_release.mat",
        md5="c72843b05e95ab27594c1d11c849c897",
        url=_GIT + "targetData/allImages_release.mat",
    ),
    SourceFile(
        name="Targets.zip", md5="2ad3a42ebc377efe4b39064405568201", url=_MIT + "Targets.zip"
    ),
    SourceFile(
        name="allImages_fillers.mat",
        md5="ce4f8b4961005d62f7a21191a64cab5e",
        url=_GIT + "fillerData/allImages_fillers.mat",
    ),
    SourceFile(
        name="Fillers.zip", md5="dc0bc9561b5bc90e158ec32074dd1060", url=_MIT + "Fillers.zip"
    ),
)
"""The files the set is written from."""

FIELDS = (
    ("key", "str: the image's path in the ZIP file"),
    ("image", "bytes: the JPEG file"),
    ("experiments", "list, one per fixation sequence: {locations: float32 array, map: None}"),
)
"""The sample's keys, in order."""

_SPLITS = (("target", 0), ("filler", 2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for FIGRIMFixation (``INDIR``, ``-o``, ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``target.msgpack`` and ``filler.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a file is missing or wrong.
        DatasetFormatError: a ``.mat`` file does not hold one struct of images, or a ZIP file
            is unreadable.
    """
    paths = _datadings.locate(args, SOURCES)
    rng = _datadings.shuffler(args)
    outputs = {}
    for split, first in _SPLITS:
        mat, archive = (paths[source.name] for source in SOURCES[first : first + 2])
        fixations = _fixations(mat)
        names = [name for name in _datadings.zip_names(archive) if name.endswith(".jpg")]
        if rng is not None:
            rng.shuffle(names)
        listed = [
            Item(
                key=name,
                label=None,
                source=f"{archive}:{name}",
                load=partial(_sample, ("zip", archive, name), _experiments(fixations[name])),
            )
            for name in names
            if name in fixations  # images without fixation data are left out
        ]
        outputs[f"{split}.msgpack"] = SizedItems(len(listed), listed)
    return outputs


def _fixations(path: Path) -> dict:
    """File name -> its subjects' records, from the one variable of a FIGRIM ``.mat`` file."""
    try:
        loaded = _datadings.load_matlab(path)
    except (ValueError, TypeError, OSError, NotImplementedError) as e:
        raise DatasetFormatError(path, f"not a readable MATLAB file: {e}") from None
    variables = {name: value for name, value in loaded.items() if not name.startswith("__")}
    if len(variables) != 1:
        raise DatasetFormatError(path, f"expected one variable, found {sorted(variables)}")
    try:
        return {str(record[2][0]): record[3][0] for record in next(iter(variables.values()))[0]}
    except (IndexError, TypeError, KeyError) as e:
        raise DatasetFormatError(path, f"not FIGRIM's image records: {e}") from None


def _experiments(subjects: np.ndarray) -> list[dict]:
    experiments = []
    for subject in subjects:
        try:
            for locations in subject[4][0][0]:
                experiments.append({"locations": locations.astype(np.float32), "map": None})
        except IndexError:  # a subject without fixations
            pass
    return experiments


def _sample(image: _datadings.Blob, experiments: list[dict]) -> dict:
    return {"image": _datadings.read_blob(image), "experiments": experiments}
