"""``shardstream write Places2017``: the Places challenge 2017 scene parsing set, as datadings
writes it.

Reads ``images.tar``, ``sceneparsing.tar``, ``annotations_instance.tar`` and ``boundaries.tar``
in place (``objectInfo150.txt`` and ``color150.mat`` are checked like datadings does) and writes
one file per folder of ``images.tar`` (``training.msgpack``, ``validation.msgpack``). Samples
are ``{"key": "ADE_train_00000001.jpg", "image": <JPEG bytes>, "label": <class PNG bytes>,
"label_image": <scene index>, "instance_image": <instance PNG bytes>, "boundary": [[int32 (n, 2)
contour, ...], ...]}``.

Quirk kept from datadings: ``label`` holds the class map PNG and ``label_image`` the scene
index (its type has them the other way round). The scene index comes from the scene labels
datadings derived from ADE20K (shipped here as ``data/places2017_scenes.txt.xz``); the
boundaries are the contours (OpenCV, ``RETR_LIST``, ``CHAIN_APPROX_TC89_L1``) of each sparse map
in the ``.mat`` file's ``gt.bdry``.

See https://github.com/CSAILVision/placeschallenge
"""

from __future__ import annotations

import argparse
import lzma
import posixpath
from collections import defaultdict
from functools import cache, partial
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError
from ..write.conversion import Item, SizedItems
from ..write.loaders import refuse
from . import _datadings, ade20k
from .sources import SourceFile

__all__ = [
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "command",
    "items",
    "scene_labels",
]

NAME = "Places2017"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

_BASE = "http://placeschallenge.csail.mit.edu/data/ChallengeData2017/"
_GIT = (
    "https://raw.githubusercontent.com/CSAILVision/placeschallenge/"
    "69bbf9dc82621bd4b4f981ac47659ba8d74e8a27/sceneparsing/"
)

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(name="images.tar", md5="5c55d03495a7541407cb940a3be07d32", url=_BASE + "images.tar"),
    SourceFile(
        name="sceneparsing.tar",
        md5="6556305fe8a1ac817d5d426ff4cb35f3",
        url=_BASE + "sceneparsing.tar",
    ),
    SourceFile(
        name="annotations_instance.tar",
        md5="4d6628c4d17f68dc36efb6a79fce30a9",
        url=_BASE + "annotations_instance.tar",
    ),
    SourceFile(
        name="boundaries.tar", md5="7cd81ad176aad64eff1dbca02ab0550a", url=_BASE + "boundaries.tar"
    ),
    SourceFile(
        name="objectInfo150.txt",
        md5="4fb6ef9f025e48ad9cdf451e2b96c510",
        url=_GIT + "objectInfo150.txt",
    ),
    SourceFile(
        name="color150.mat",
        md5="851aba69b499726c2b8ff5da1e147d02",
        url=_GIT + "visualizationCode/color150.mat",
    ),
)
"""The files the set is written from."""

FIELDS = (
    ("key", "str: the image's file name"),
    ("image", "bytes: the JPEG file"),
    ("label", "bytes: the class map PNG (datadings' swap, kept)"),
    ("label_image", "int: the scene index (datadings' swap, kept)"),
    ("instance_image", "bytes: the instance PNG"),
    ("boundary", "list per boundary map of lists of int32 (n, 2) contours"),
)
"""The sample's keys, in order."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for Places2017 (``INDIR``, ``-o``, ``-s``, ``--shuffle``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    modes = parser.add_argument_group("instead of the data set")
    modes.add_argument(
        "--class-counts",
        action="store_true",
        help="write Places2017_counts.json: summed pixel share of each class over the "
        "training maps of sceneparsing.tar",
    )
    modes.add_argument(
        "--color-map",
        action="store_true",
        help="write Places2017_colors.json from color150.mat (datadings' channel swap kept)",
    )
    modes.add_argument(
        "--classes", action="store_true", help="print the class list of objectInfo150.txt"
    )
    modes.add_argument(
        "--scenelabels",
        action="store_true",
        help="write Places2017_scenelabels.json from ADE20K_2016_07_26.zip's index",
    )


def command(args: argparse.Namespace) -> int | None:
    """The modes that write no data set (``--class-counts``, ``--color-map``, ``--classes``,
    ``--scenelabels``, the first given wins, as in datadings); ``None`` without them.

    Args:
        args: the parsed options.

    Returns:
        0 when done, ``None`` without a mode.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a needed file is missing or
            wrong.
        DatasetFormatError: a file does not have the expected content.
    """
    outdir = _datadings.output_dir(args)
    if args.class_counts:
        tar = _datadings.locate(args, SOURCES[1:2])[SOURCES[1].name]
        members = _datadings.tar_members(tar)
        training = [n for n in members if len(n.split("/")) == 3 and n.split("/")[1] == "training"]
        maps = (_rgb(_datadings.read_blob(("range", tar, *members[n]))) for n in training)
        counts = _datadings.class_counts(maps, total=len(training), progress=not args.quiet)
        keys = sorted(counts)
        summary = {"INDEXES": keys, "COUNTS": [counts[k] for k in keys]}
        _datadings.write_json(outdir / "Places2017_counts.json", summary)
    elif args.color_map:
        mat = _datadings.locate(args, SOURCES[5:6])[SOURCES[5].name]
        try:
            colors = _datadings.load_matlab(mat)["colors"]
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise DatasetFormatError(mat, f"no colour table: {e}") from None
        # datadings meant to swap RGB to BGR; its tuple assignment of numpy views copies blue
        # into red and leaves blue as it was: kept, so that the file equals datadings'
        colors[..., 0] = colors[..., 2]
        _datadings.write_json(outdir / "Places2017_colors.json", [[0, 0, 0], *colors.tolist()])
    elif args.classes:
        info = _datadings.locate(args, SOURCES[4:5])[SOURCES[4].name]
        _print_classes(info)
    elif args.scenelabels:
        archive = _datadings.locate(args, ade20k.SOURCES)[ade20k.SOURCES[0].name]
        filenames, scenes = ade20k.read_index(archive, _datadings.zip_names(archive))
        numbers = {scene: number for number, scene in enumerate(ade20k.scene_names())}
        unknown = sorted(set(scenes) - set(numbers))
        if unknown:
            raise DatasetFormatError(archive, f"scenes not in ADE20K's scene list: {unknown[:5]}")
        labels = {name: numbers[scene] for name, scene in zip(filenames, scenes)}
        _datadings.write_json(outdir / "Places2017_scenelabels.json", labels)
    else:
        return None
    return 0


def _rgb(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.array(Image.open(io.BytesIO(png)).convert("RGB"))


def _print_classes(path: Path) -> None:
    """Print ``CLASSES = [`` 'background', then the names five to a line, as datadings does."""
    import csv
    from itertools import zip_longest

    with open(path, newline="") as f:
        names = [row["Name"].split(", ")[0] for row in csv.DictReader(f, dialect="excel-tab")]
    rows = zip_longest(*(names[i::5] for i in range(5)))
    lines = [repr("background"), *(", ".join(map(repr, row)) for row in rows)]
    _datadings.print_values("CLASSES", lines)


@cache
def scene_labels() -> dict[str, int]:
    """Image file name -> scene index, as datadings labels Places2017 (22,210 images)."""
    data = resources.files(__package__).joinpath("data/places2017_scenes.txt.xz").read_bytes()
    pairs = (line.split(" ") for line in lzma.decompress(data).decode("ascii").splitlines())
    return {name: int(scene) for name, scene in pairs}


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of each folder's file (``training.msgpack``, ``validation.msgpack``).

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: a file is missing or wrong.
        DatasetFormatError: a tar is unreadable.
    """
    paths = _datadings.locate(args, SOURCES)
    tars = [paths[source.name] for source in SOURCES[:4]]
    images, classes, instances, boundaries = tars
    members = {tar: _datadings.tar_members(tar) for tar in tars}
    sets = defaultdict(list)
    for name in members[images]:
        parts = name.split("/")
        if len(parts) == 3:
            sets[parts[1]].append(name)
    scenes = scene_labels()
    rng = _datadings.shuffler(args)
    outputs = {}
    for split, names in sets.items():
        if rng is not None:
            rng.shuffle(names)
        listed = []
        for name in names:
            wanted = (
                (images, name),
                (classes, _annotation(name, "sceneparsing", ".png")),
                (instances, _annotation(name, "instance", ".png")),
                (boundaries, _annotation(name, "boundary", ".mat")),
            )
            missing = [f"{tar}:{path}" for tar, path in wanted if path not in members[tar]]
            key = posixpath.basename(name)
            if missing:
                load = partial(refuse, missing[0], "no such member in the archive")
            elif key not in scenes:
                load = partial(refuse, f"{images}:{name}", "no scene label for this image")
            else:
                blobs = [("range", tar, *members[tar][path]) for tar, path in wanted]
                load = partial(_sample, *blobs, scenes[key])
            listed.append(Item(key=key, label=None, source=f"{images}:{name}", load=load))
        outputs[f"{split}.msgpack"] = SizedItems(len(listed), listed)
    return outputs


def _annotation(name: str, kind: str, extension: str) -> str:
    return name.replace("images", "annotations_" + kind).replace(".jpg", extension)


def _sample(
    image: _datadings.Blob,
    classes: _datadings.Blob,
    instances: _datadings.Blob,
    boundary: _datadings.Blob,
    scene: int,
) -> dict:
    return {
        "image": _datadings.read_blob(image),
        "label": _datadings.read_blob(classes),
        "label_image": scene,
        "instance_image": _datadings.read_blob(instances),
        "boundary": _boundaries(_datadings.read_blob(boundary)),
    }


def _boundaries(mat: bytes) -> list[list[np.ndarray]]:
    import cv2

    maps = _datadings.load_matlab(mat)["gt"]["bdry"][0][0]
    found = []
    for row in maps:
        # OpenCV 3 returned (image, contours, hierarchy), 4 and later (contours, hierarchy)
        contours = cv2.findContours(row[0].toarray("C"), cv2.RETR_LIST, cv2.CHAIN_APPROX_TC89_L1)[
            -2
        ]
        found.append([contour.reshape((-1, 2)) for contour in contours])
    return found
