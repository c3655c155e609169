"""CIFAR-10 and CIFAR-100 read straight from the official binary-version ``.tar.gz`` archives.

This is ``shardstream write CIFAR10 --layout binary`` (and ``CIFAR100``): shardstream's earlier
files. The default layout is datadings' (see :mod:`shardstream.sets._cifar_python`).

The binary version stores fixed-size records with no pickles: CIFAR-10 records are one label byte
and 3,072 pixel bytes, CIFAR-100 records a coarse label byte, a fine label byte and 3,072 pixel
bytes. The pixels are three 32 x 32 planes, red then green then blue, each row-major. Label names
are text files in the archive, one name per line, line ``i`` naming label ``i``.

Nothing is extracted to disk. :func:`cifar_items` checks the archive once (members present, sizes
multiples of the record size, label names read), then each split reads its members' bytes in the
main process as it is iterated; every :class:`~shardstream.write.conversion.Item` carries just its
3,072 pixel bytes and PNG-encodes them in the pool worker (:func:`encode_cifar_png`).

Images are stored as PNG: lossless (the pixels decode exactly as in the archive), about 2.7 KB per
image, and decodable by every image library. Samples are ``{"key": "train/000123", "image": <PNG>,
"label": <int>}``, plus ``"coarse_label"`` for CIFAR-100. Keys number the records of a split from
0 in archive order (CIFAR-10's ``data_batch_1.bin`` to ``data_batch_5.bin``).
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetFormatError
from ..write.conversion import Item
from .sources import SourceFile, add_source_arguments, sources_from_args

__all__ = [
    "CifarLayout",
    "CifarSplit",
    "CIFAR10_LAYOUT",
    "CIFAR100_LAYOUT",
    "PIXEL_BYTES",
    "encode_cifar_png",
    "decode_cifar_pixels",
    "add_cifar_arguments",
    "cifar_items",
    "cifar_label_names",
    "cifar_coarse_label_names",
]

PIXEL_BYTES = 3 * 32 * 32
"""Bytes of one image in a record: the red, green and blue 32 x 32 planes."""


@dataclass(frozen=True, kw_only=True)
class CifarLayout:
    """Where a CIFAR variant keeps its records and label names inside its archive.

    Attributes:
        name: the converter name (``"cifar10"``).
        source: the archive.
        splits: member names of each split, in the order their records are numbered.
        label_bytes: label bytes before the pixels of each record (1, or 2 for coarse + fine).
        label_names_member: the text file naming the (fine) labels.
        coarse_label_names_member: the text file naming the coarse labels (CIFAR-100 only).
    """

    name: str
    source: SourceFile
    splits: Mapping[str, tuple[str, ...]]
    label_bytes: int
    label_names_member: str
    coarse_label_names_member: str | None = None

    @property
    def record_bytes(self) -> int:
        """Bytes of one record: its labels and its pixels."""
        return self.label_bytes + PIXEL_BYTES


CIFAR10_LAYOUT = CifarLayout(
    name="cifar10",
    source=SourceFile(
        name="cifar-10-binary.tar.gz",
        md5="c32a1d4ab5d03f1284b67883e8d87530",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    ),
    splits={
        "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
        "test": ("cifar-10-batches-bin/test_batch.bin",),
    },
    label_bytes=1,
    label_names_member="cifar-10-batches-bin/batches.meta.txt",
)
"""The official CIFAR-10 binary version (60,000 images, 10 classes)."""

CIFAR100_LAYOUT = CifarLayout(
    name="cifar100",
    source=SourceFile(
        name="cifar-100-binary.tar.gz",
        md5="03b5dce01913d631647c71ecec9e9cb8",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    ),
    splits={"train": ("cifar-100-binary/train.bin",), "test": ("cifar-100-binary/test.bin",)},
    label_bytes=2,
    label_names_member="cifar-100-binary/fine_label_names.txt",
    coarse_label_names_member="cifar-100-binary/coarse_label_names.txt",
)
"""The official CIFAR-100 binary version (60,000 images, 100 fine and 20 coarse classes)."""


def encode_cifar_png(pixels: bytes) -> bytes:
    """Encode one record's pixels (R, G, B planes of 32 x 32) as an RGB PNG.

    Args:
        pixels: the 3,072 pixel bytes of a record.

    Returns:
        The PNG bytes (Pillow's default zlib level).

    Raises:
        DatasetFormatError: ``pixels`` is not 3,072 bytes long.
    """
    image = Image.fromarray(decode_cifar_pixels(pixels), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_cifar_pixels(pixels: bytes) -> np.ndarray:
    """The pixels of a record as a height x width x channel array.

    Args:
        pixels: the 3,072 pixel bytes of a record.

    Returns:
        A ``(32, 32, 3)`` uint8 array (RGB).

    Raises:
        DatasetFormatError: ``pixels`` is not 3,072 bytes long.
    """
    if len(pixels) != PIXEL_BYTES:
        raise DatasetFormatError(
            None, f"a CIFAR image has {PIXEL_BYTES} pixel bytes, got {len(pixels)}"
        )
    planes = np.frombuffer(pixels, dtype=np.uint8).reshape(3, 32, 32)
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


class CifarSplit:
    """The items of one split, read from the archive each time it is iterated.

    ``len()`` is the number of records (known from the member sizes without reading them).
    """

    def __init__(self, *, layout: CifarLayout, archive: Path, split: str, info: _ArchiveInfo):
        self.layout = layout
        self.archive = archive
        self.split = split
        self._info = info

    def __len__(self) -> int:
        return sum(
            self._info.member_sizes[member] // self.layout.record_bytes
            for member in self.layout.splits[self.split]
        )

    def __iter__(self) -> Iterator[Item]:
        layout = self.layout
        num_labels = len(self._info.label_names)
        num_coarse = len(self._info.coarse_label_names)
        index = 0
        for member, data in _read_members(self.archive, layout.splits[self.split]):
            for position in range(0, len(data), layout.record_bytes):
                record = data[position : position + layout.record_bytes]
                number = position // layout.record_bytes
                source = f"{self.archive}:{member}[{number}]"
                label = record[layout.label_bytes - 1]
                if label >= num_labels:
                    raise DatasetFormatError(
                        self.archive,
                        f"{member} record {number} has label {label}, but "
                        f"{layout.label_names_member} names only {num_labels} labels",
                    )
                fields = {}
                if layout.label_bytes == 2:
                    coarse = record[0]
                    if coarse >= num_coarse:
                        raise DatasetFormatError(
                            self.archive,
                            f"{member} record {number} has coarse label {coarse}, but "
                            f"{layout.coarse_label_names_member} names only {num_coarse}",
                        )
                    fields["coarse_label"] = coarse
                yield Item(
                    key=f"{self.split}/{index:06d}",
                    label=label,
                    source=source,
                    load=functools.partial(encode_cifar_png, record[layout.label_bytes :]),
                    fields=fields,
                )
                index += 1


def add_cifar_arguments(parser: argparse.ArgumentParser, layout: CifarLayout) -> None:
    """Add a CIFAR converter's options: its source file options and ``--split``.

    Args:
        parser: the converter's parser.
        layout: the CIFAR variant.
    """
    add_source_arguments(parser, (layout.source,))
    parser.add_argument(
        "--split",
        action="append",
        choices=tuple(layout.splits),
        default=None,
        help=f"convert only this split (repeatable; default: all of {', '.join(layout.splits)})",
    )


def cifar_items(layout: CifarLayout, args: argparse.Namespace) -> dict[str, CifarSplit]:
    """The items of each requested split, after locating and verifying the archive.

    Args:
        layout: the CIFAR variant.
        args: options parsed by a parser set up with :func:`add_cifar_arguments`.

    Returns:
        ``{"train": ..., "test": ...}`` (or the splits named by ``--split``).

    Raises:
        SourceNotFoundError, SourceChecksumError, DownloadError: the archive is missing, wrong
            or could not be downloaded.
        DatasetFormatError: the archive lacks a member, or a member is not a whole number of
            records.
    """
    archive, info = _open(layout, args)
    splits = getattr(args, "split", None) or list(layout.splits)
    return {
        split: CifarSplit(layout=layout, archive=archive, split=split, info=info)
        for split in dict.fromkeys(splits)
    }


def cifar_label_names(layout: CifarLayout, args: argparse.Namespace) -> list[str]:
    """The (fine) label names, label ``i`` at position ``i``, read from the archive.

    Args:
        layout: the CIFAR variant.
        args: options parsed by a parser set up with :func:`add_cifar_arguments`.

    Returns:
        The names (10 for CIFAR-10, 100 for CIFAR-100).

    Raises:
        See :func:`cifar_items`.
    """
    return list(_open(layout, args)[1].label_names)


def cifar_coarse_label_names(layout: CifarLayout, args: argparse.Namespace) -> list[str]:
    """The coarse label names of CIFAR-100 (empty for CIFAR-10).

    Args:
        layout: the CIFAR variant.
        args: options parsed by a parser set up with :func:`add_cifar_arguments`.

    Returns:
        The names (20 for CIFAR-100).

    Raises:
        See :func:`cifar_items`.
    """
    return list(_open(layout, args)[1].coarse_label_names)


# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArchiveInfo:
    member_sizes: Mapping[str, int]
    label_names: tuple[str, ...]
    coarse_label_names: tuple[str, ...]


def _open(layout: CifarLayout, args: argparse.Namespace) -> tuple[Path, _ArchiveInfo]:
    archive = sources_from_args(args, (layout.source,))[layout.source.name]
    stat = archive.stat()
    stamp = (layout.name, os.fspath(archive.resolve()), stat.st_size, stat.st_mtime_ns)
    if stamp not in _SCANNED:
        _SCANNED[stamp] = _scan(layout, archive)
    return archive, _SCANNED[stamp]


# Archives already scanned in this process, by (layout name, path, size, mtime_ns).
_SCANNED: dict[tuple[str, str, int, int], _ArchiveInfo] = {}


def _scan(layout: CifarLayout, archive: Path) -> _ArchiveInfo:
    """Read the member list and the label-name files (one pass over the archive)."""
    wanted = {member for members in layout.splits.values() for member in members}
    texts = {
        name
        for name in (layout.label_names_member, layout.coarse_label_names_member)
        if name is not None
    }
    sizes: dict[str, int] = {}
    text: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    sizes[member.name] = member.size
                elif member.name in texts and member.isfile():
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    text[member.name] = data.decode("utf-8", errors="replace")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetFormatError(archive, f"cannot be read as a .tar.gz archive ({e})") from e
    missing = sorted((wanted | texts) - set(sizes) - set(text))
    if missing:
        raise DatasetFormatError(
            archive,
            f"has no member {', '.join(missing)}: it is not {layout.source.name} (the "
            "binary version)",
        )
    for member_name, member_size in sizes.items():
        if member_size % layout.record_bytes:
            raise DatasetFormatError(
                archive,
                f"{member_name} is {member_size:,} bytes, not a whole number of "
                f"{layout.record_bytes}-byte records",
            )
    coarse = layout.coarse_label_names_member
    return _ArchiveInfo(
        member_sizes=sizes,
        label_names=_parse_names(text[layout.label_names_member]),
        coarse_label_names=_parse_names(text[coarse]) if coarse else (),
    )


def _parse_names(text: str) -> tuple[str, ...]:
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    return tuple(names)


def _read_members(archive: Path, members: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, bytes)`` of ``members`` in the given order, reading the archive once."""
    pending: dict[str, bytes] = {}
    order = list(members)
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                if member.name in order and member.name not in pending and member.isfile():
                    pending[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
                    while order and order[0] in pending:
                        name = order.pop(0)
                        yield name, pending.pop(name)
                if not order:
                    return
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetFormatError(archive, f"cannot be read as a .tar.gz archive ({e})") from e
    if order:
        raise DatasetFormatError(archive, f"has no member {order[0]} (the archive changed?)")
