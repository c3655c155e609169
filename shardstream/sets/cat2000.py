"""``shardstream write CAT2000``: the CAT2000 saliency set, as datadings writes it.

Reads ``trainSet.zip`` and ``testSet.zip`` in place and writes ``train.msgpack`` and
``test.msgpack``: one sample per stimulus (``.jpg`` under ``Stimuli``, not under ``Output``),
``{"key": "<category>/<name>.jpg", "image": <JPEG bytes>, "experiments": [{"locations": float64
array (n, 2) or None, "map": None}]}``. As datadings does, each stimulus is cropped to the box
that differs from its top-left pixel (its grey border), resized so its longer side is 1024
pixels (Lanczos) and re-encoded as JPEG (quality 90, simplejpeg); the locations are the
non-zero pixels of ``FIXATIONLOCS/<category>/<name>.mat`` (``fixLocs``) as x, y, moved and
scaled the same way and kept where inside the image (float64: datadings' arithmetic promotes
them); ``None`` where the stimulus has no fixation file (the test set).

See http://saliency.mit.edu/results_cat2000.html
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from ..write.conversion import Item, SizedItems
from . import _datadings
from .sources import SourceFile

__all__ = ["DATADINGS", "FIELDS", "NAME", "SOURCES", "add_arguments", "items"]

NAME = "CAT2000"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="trainSet.zip",
        md5="56ad5c77e6c8f72ed9ef2901628d6e48",
        url="http://saliency.mit.edu/trainSet.zip",
    ),
    SourceFile(
        name="testSet.zip",
        md5="903ec668df2e5a8470aef9d8654e7985",
        url="http://saliency.mit.edu/testSet.zip",
    ),
)
"""The archives the set is written from."""

FIELDS = (
    ("key", "str: <category>/<name>.jpg"),
    ("image", "bytes: the cropped stimulus, longer side 1024, JPEG quality 90"),
    ("experiments", "list of one: {locations: float64 array (n, 2) or None, map: None}"),
)
"""The sample's keys, in order."""

SIZE = 1024
"""The longer side of the written images."""

_SPLITS = (("train", 0), ("test", 1))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for CAT2000 (``INDIR``, ``-o``, ``-s``, ``--shuffle``, ``-t``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    _datadings.add_threads_argument(parser)


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``train.msgpack`` and ``test.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: an archive is missing or wrong.
        DatasetFormatError: an archive is not a ZIP file.
    """
    paths = _datadings.locate(args, SOURCES)
    rng = _datadings.shuffler(args)
    outputs = {}
    for split, index in _SPLITS:
        archive = paths[SOURCES[index].name]
        members = _datadings.zip_names(archive)
        present = set(members)
        names = [name for name in members if _is_stimulus(name)]
        if rng is not None:
            rng.shuffle(names)
        listed = []
        for name in names:
            mat = name.replace("Stimuli", "FIXATIONLOCS").replace("jpg", "mat")
            fixations = ("zip", archive, mat) if mat in present else None
            listed.append(
                Item(
                    key="/".join(name.split("/")[-2:]),
                    label=None,
                    source=f"{archive}:{name}",
                    load=partial(_sample, ("zip", archive, name), fixations),
                )
            )
        outputs[f"{split}.msgpack"] = SizedItems(len(listed), listed)
    return outputs


def _is_stimulus(name: str) -> bool:
    return "Stimuli" in name and "Output" not in name and name.endswith(".jpg")


def _sample(stimulus: _datadings.Blob, fixations: _datadings.Blob | None) -> dict:
    from PIL import Image, ImageChops
    from simplejpeg import decode_jpeg, encode_jpeg

    decoded = decode_jpeg(_datadings.read_blob(stimulus), fastupsample=False, fastdct=False)
    image = Image.fromarray(decoded, "RGB")
    # the box of what differs from the top-left pixel by more than 10 (2 * diff - 20 > 0)
    background = Image.new(image.mode, image.size, image.getpixel((0, 0)))
    difference = ImageChops.difference(image, background)
    box = ImageChops.add(difference, difference, 1.0, -20).getbbox()
    if box is None:  # nothing differs: the whole image (what crop(None) cuts)
        box = (0, 0, *image.size)
    cropped = image.crop(box)
    width, height = cropped.size
    scale = SIZE / max(width, height)
    resized = cropped.resize(
        (int(round(width * scale)), int(round(height * scale))), Image.Resampling.LANCZOS
    )
    locations = None
    if fixations is not None:
        fixmap = _datadings.load_matlab(_datadings.read_blob(fixations))["fixLocs"]
        points = np.transpose(np.nonzero(fixmap)[::-1]).astype(np.float32)  # (x, y)
        # box is a tuple of ints: the subtraction promotes to float64, as in datadings
        points = (points - box[:2]) * scale
        w, h = resized.size
        inside = (points > 0).any(axis=1) & (points[:, 0] < w) & (points[:, 1] < h)
        locations = points[inside]
    return {
        "image": encode_jpeg(np.array(resized), quality=90),
        "experiments": [{"locations": locations, "map": None}],
    }
