"""``shardstream write ADE20k``: the ADE20K scene parsing set (2016-07-26 release), as datadings
writes it.

Reads ``ADE20K_2016_07_26.zip`` in place and writes ``training.msgpack`` and
``validation.msgpack``: one sample per ``.jpg`` whose path contains the split's name,
``{"key": "ADE_train_00000001.jpg", "image": <JPEG bytes>, "label": <scene index>,
"label_image": <16-bit PNG>, "parts_images": [<16-bit PNG>, ...]}``. The scene index numbers the
sorted distinct scenes of ``index_ade20k.mat``; each ``_seg.png`` / ``_parts_<n>.png`` becomes
the class map ``R // 10 * 256 + G`` as a 16-bit grey PNG (datadings' ``'I'`` PNGs, which
Pillow wrote as 16 bits before version 10). Quirks kept: ``--shuffle`` shuffles all member names
of the split (images and label files) before the images are picked, and the image prefix is
the name with trailing ``.``, ``j``, ``p``, ``g`` characters stripped (``str.rstrip('.jpg')``).
datadings writes in completion order with more than one ``--threads``; shardstream always
writes in source order (datadings' ``-t 1``).

See http://groups.csail.mit.edu/vision/datasets/ADE20K
"""

from __future__ import annotations

import argparse
import io
import itertools
import lzma
import posixpath
from collections import Counter
from collections.abc import Iterator
from functools import cache, partial
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DatasetFormatError
from ..write.conversion import Item, LoadFunction, SizedItems
from ..write.loaders import refuse
from . import _datadings
from .sources import SourceFile

__all__ = [
    "DATADINGS",
    "FIELDS",
    "NAME",
    "SOURCES",
    "add_arguments",
    "class_map",
    "command",
    "items",
    "read_index",
    "scene_names",
]

NAME = "ADE20k"
"""datadings' name of the set."""

DATADINGS = True
"""A datadings-compatible set (see :mod:`shardstream.sets._datadings`)."""

SOURCES: tuple[SourceFile, ...] = (
    SourceFile(
        name="ADE20K_2016_07_26.zip",
        md5="5d125f9457b1a3990adb96de45d03f60",
        url="http://groups.csail.mit.edu/vision/datasets/ADE20K/ADE20K_2016_07_26.zip",
    ),
)
"""The archive the set is written from."""

FIELDS = (
    ("key", "str: the image's file name, e.g. ADE_train_00000001.jpg"),
    ("image", "bytes: the JPEG file"),
    ("label", "int: scene index (sorted distinct scenes of index_ade20k.mat)"),
    ("label_image", "bytes: 16-bit grey PNG, class R // 10 * 256 + G of the _seg.png"),
    ("parts_images", "list of bytes: the same for each _parts_<n>.png"),
)
"""The sample's keys, in order."""

_INDEX = "ADE20K_2016_07_26/index_ade20k.mat"
_SPLITS = ("training", "validation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' options for ADE20k (``INDIR``, ``-o``, ``-s``, ``--shuffle``, ``-t``).

    Args:
        parser: the set's parser.
    """
    _datadings.add_arguments(parser)
    _datadings.add_threads_argument(parser)
    parser.add_argument(
        "--calculate-weights",
        action="store_true",
        help="write ADE20k_counts.json (summed pixel share of each class over the training "
        "label and part maps) instead of the data set",
    )
    parser.add_argument(
        "--scenelabels",
        action="store_true",
        help="write ADE20k_scenelabels.json (the sorted scene names) instead of the data set",
    )


def command(args: argparse.Namespace) -> int | None:
    """``--calculate-weights`` or ``--scenelabels``: write the statistics file; else ``None``.

    datadings' ``--scenelabels`` fails (it indexes a list by name); shardstream writes the
    sorted distinct scenes of the index, the labels' order.

    Args:
        args: the parsed options.

    Returns:
        0 when the file was written, ``None`` without either option.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a ZIP file, or its index or a label map is bad.
    """
    if not (args.calculate_weights or args.scenelabels):
        return None
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    members = _datadings.zip_names(archive)
    outdir = _datadings.output_dir(args)
    if args.calculate_weights:
        maps = [
            path
            for image, seg, parts in _images(members)
            if "training" in seg
            for path in (*parts, seg)
        ]
        present = set(members)
        missing = [path for path in maps if path not in present]
        if missing:
            raise DatasetFormatError(archive, f"no member {missing[0]}")
        counts = _datadings.class_counts(
            (class_map(_datadings.read_blob(("zip", archive, path))) for path in maps),
            total=len(maps),
            progress=not args.quiet,
        )
        keys = sorted(counts)
        summary = {"INDEXES": keys, "COUNTS": [counts[k] for k in keys]}
        _datadings.write_json(outdir / "ADE20k_counts.json", summary)
    else:
        _, scenes = read_index(archive, members)
        _datadings.write_json(outdir / "ADE20k_scenelabels.json", sorted(set(scenes)))
    return 0


def items(args: argparse.Namespace) -> dict[str, SizedItems]:
    """The items of ``training.msgpack`` and ``validation.msgpack``, in datadings' order.

    Args:
        args: the parsed options.

    Returns:
        Output file name -> items.

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing or wrong.
        DatasetFormatError: the archive is not a ZIP file or its index is missing or bad.
    """
    archive = _datadings.locate(args, SOURCES)[SOURCES[0].name]
    members = _datadings.zip_names(archive)
    scenes = _scene_labels(archive, members)
    present = set(members)
    rng = _datadings.shuffler(args)
    outputs = {}
    for split in _SPLITS:
        names = [name for name in members if split in name]
        if rng is not None:
            rng.shuffle(names)
        listed = []
        for image, seg, part_names in _images(names):
            key = posixpath.basename(image)
            missing = [path for path in (image, seg) if path not in present]
            if missing:
                load: LoadFunction = partial(
                    refuse, f"{archive}:{missing[0]}", "no such member in the archive"
                )
            elif key not in scenes:
                load = partial(refuse, f"{archive}:{image}", f"not in {_INDEX}")
            else:
                load = partial(
                    _sample,
                    ("zip", archive, image),
                    scenes[key],
                    ("zip", archive, seg),
                    tuple(("zip", archive, part) for part in part_names),
                )
            listed.append(Item(key=key, label=None, source=f"{archive}:{image}", load=load))
        outputs[f"{split}.msgpack"] = SizedItems(len(listed), listed)
    return outputs


def _images(names: list[str]) -> Iterator[tuple[str, str, list[str]]]:
    """(image, label map, part maps) of each ``.jpg`` in ``names``, in their order."""
    parts = {name for name in names if "_parts_" in name and name.endswith(".png")}
    for name in names:
        if not name.endswith(".jpg"):
            continue
        prefix = name.rstrip(".jpg")  # datadings strips characters, not the suffix
        numbered = (f"{prefix}_parts_{i}.png" for i in itertools.count(1))
        yield (
            prefix + ".jpg",
            prefix + "_seg.png",
            list(itertools.takewhile(parts.__contains__, numbered)),
        )


@cache
def scene_names() -> tuple[str, ...]:
    """The 872 scene names of the full ADE20K index, sorted: datadings' scene label order."""
    data = resources.files(__package__).joinpath("data/ade20k_scenes.txt.xz").read_bytes()
    return tuple(lzma.decompress(data).decode("utf-8").splitlines())


def class_map(png: bytes) -> np.ndarray:
    """The class map (uint16) ``R // 10 * 256 + G`` of an ADE20K ``_seg.png`` / ``_parts_n.png``.

    Args:
        png: the encoded label image.
    """
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    classes = (rgb[:, :, 0] // 10).astype(np.uint16)
    classes *= 256
    classes += rgb[:, :, 1]
    return classes


def _png16(png: bytes) -> bytes:
    return _datadings.png_bytes(class_map(png), optimize=True)


def _sample(
    image: _datadings.Blob, scene: int, seg: _datadings.Blob, parts: tuple[_datadings.Blob, ...]
) -> dict:
    return {
        "image": _datadings.read_blob(image),
        "label": scene,
        "label_image": _png16(_datadings.read_blob(seg)),
        "parts_images": [_png16(_datadings.read_blob(part)) for part in parts],
    }


def _scene_labels(archive: Path, members: list[str]) -> dict[str, int]:
    """Image file name -> index of its scene among the sorted distinct scenes."""
    filenames, scenes = read_index(archive, members)
    numbers = {scene: number for number, scene in enumerate(sorted(set(scenes)))}
    return {posixpath.basename(name): numbers[scene] for name, scene in zip(filenames, scenes)}


def read_index(archive: str | Path, members: list[str]) -> tuple[list, list]:
    """The file names and scenes of the archive's ``index_ade20k.mat``, in index order.

    Args:
        archive: ``ADE20K_2016_07_26.zip``.
        members: its member names.

    Raises:
        DatasetFormatError: the index is missing or not ADE20K's.
    """
    if _INDEX not in members:
        raise DatasetFormatError(archive, f"no member {_INDEX}")
    try:
        index = _datadings.load_matlab(_datadings.read_blob(("zip", archive, _INDEX)))["index"]
        filenames = _cells(index["filename"][0, 0].reshape(-1))
        scenes = _cells(index["scene"][0, 0].reshape(-1))
    except (ValueError, TypeError, KeyError, IndexError, OSError) as e:
        raise DatasetFormatError(f"{archive}:{_INDEX}", f"not ADE20K's index: {e}") from None
    return filenames, scenes


def _cells(cells: np.ndarray) -> list:
    """A MATLAB cell array of strings as a list (empty cells: ``''``), as datadings reads it."""
    kind, _ = Counter(cell.dtype.kind for cell in cells[:50]).most_common(1)[0]
    if kind == "U":
        return [cell.item() if cell.size else "" for cell in cells]
    if kind == "O":
        return [_cells(cell.reshape(-1)) if cell.size else [] for cell in cells]
    return list(cells)
