"""Shared reading of the SALICON 2015 and 2017 challenge archives (``image.zip``, ``fixations.zip``).

Each split (``train``, ``val``, ``test``) is written to ``<split>.msgpack`` with samples
``{"key": "train/COCO_train2014_000000000009", "image": <JPEG bytes>, "experiments": [...]}``.
The key is the image's path in ``image.zip`` without ``images/`` and ``.jpg``; the fixations are
``<key>.mat`` in ``fixations.zip``: one experiment per entry of its ``gaze`` struct array,
``{"locations": float32 (n, 2), "map": None, "timestamps": float32 (n,), "fixations": float32
(m, 2)}`` (no ``gaze``: no experiments).
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from ..write.conversion import Item, LoadFunction, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = ["FIELDS", "add_arguments", "items", "experiments"]

FIELDS = (
    ("key", "str: <split>/<image name> without extension"),
    ("image", "bytes: the JPEG file"),
    (
        "experiments",
        "list, one per subject: {locations: float32 (n, 2), map: None, timestamps: float32 "
        "(n,), fixations: float32 (m, 2)}",
    ),
)
"""The sample's keys, in order."""

_SPLITS = ("train", "val", "test")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options (``INDIR``, ``-o``, ``-s``, ``--shuffle``)."""
    _datadings.add_arguments(parser)


def items(
    args: argparse.Namespace, sources: tuple[SourceFile, SourceFile]
) -> dict[str, SizedItems]:
    """The items of ``train``, ``val`` and ``test.msgpack``, in datadings' order.

    Args:
        args: the parsed options.
        sources: ``image.zip`` and ``fixations.zip``.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: an archive is missing or wrong.
        DatasetFormatError: an archive is not a ZIP file.
    """
    paths = _datadings.locate(args, sources)
    images, fixations = paths[sources[0].name], paths[sources[1].name]
    image_names = _datadings.zip_names(images)
    fixation_names = set(_datadings.zip_names(fixations))
    keys = [
        name.replace(".jpg", "").replace("images/", "")
        for name in image_names
        if name.endswith(".jpg")
    ]
    rng = _datadings.shuffler(args)
    outputs = {}
    for split in _SPLITS:
        chosen = [key for key in keys if key.startswith(split)]
        if rng is not None:
            rng.shuffle(chosen)
        outputs[f"{split}.msgpack"] = SizedItems(
            len(chosen), [_item(images, fixations, fixation_names, key) for key in chosen]
        )
    return outputs


def experiments(mat: dict) -> list[dict]:
    """The experiments of a loaded fixation file (see the module docstring).

    Args:
        mat: the ``.mat`` file as :func:`scipy.io.loadmat` returns it.
    """
    if "gaze" not in mat:
        return []
    return [
        {
            "locations": subject[0].astype(np.float32).reshape((-1, 2)),
            "map": None,
            "timestamps": subject[1].astype(np.float32).flatten(),
            "fixations": subject[2].astype(np.float32).reshape((-1, 2)),
        }
        for subject in mat["gaze"][0]
    ]


def _item(images: object, fixations: object, fixation_names: set[str], key: str) -> Item:
    image = "images/" + key + ".jpg"
    mat = key + ".mat"
    if mat not in fixation_names:
        load: LoadFunction = partial(refuse, f"{fixations}:{mat}", "no such member in the archive")
    else:
        load = partial(_sample, ("zip", images, image), ("zip", fixations, mat))
    return Item(key=key, label=None, source=f"{images}:{image}", load=load)


def _sample(image: _datadings.Blob, mat: _datadings.Blob) -> dict:
    loaded = _datadings.load_matlab(_datadings.read_blob(mat))
    return {"image": _datadings.read_blob(image), "experiments": experiments(loaded)}
