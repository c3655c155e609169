"""ImageNet-22k stored as one tarball per class, indexed by dinov2's "extra" files.

Layout under ``root``:

* ``<class_id>.tar``: the images of one class (plain, uncompressed tar);
* ``blocks/<class_id>.log``: the tarball's block list as ``tar -R -tf <class_id>.tar``
  prints it: lines ``block <n>: <file name>``, ending with ``block <n>: ** Block of NULs **``.

Under ``extra`` (written by :meth:`ImageNet22k.dump_extra`, read memory-mapped):

* ``entries.npy``: one record per image with ``class_index`` (``<u4``), ``class_id``,
  ``start_offset`` and ``end_offset`` (``<u4``: byte range of the member, header included)
  and ``filename``;
* ``class-ids.npy``: the class ids indexed by class index.

Classes are the tarballs' names in sorted order. A sample's bytes are its byte range minus
the 512-byte member header (the tar padding after the image is kept; decoders ignore it);
gzip-compressed members are decompressed.

Differences from dinov2: any gzip-compressed member is decompressed (dinov2 accepts only 26
known sample indices); offsets are stored as ``<u8`` when a tarball is larger than 4 GiB
(dinov2's ``<u4`` would wrap); block lists are checked and faults raise typed errors naming
the file; the extra files are opened on first use, so :meth:`ImageNet22k.dump_extra` works
on a new instance.
"""

from __future__ import annotations

import gzip
import io
import mmap
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ....errors import ConfigError, DatasetFormatError, DatasetNotFoundError, DatasetReadError
from .extended import ExtendedVisionDataset
from .extra import load_extra, save_extra, unicode_dtype

__all__ = ["ImageNet22k", "SKIPPED_FILES", "TarMember", "read_block_list"]

SKIPPED_FILES = frozenset({"n06470073_47249.JPEG"})
"""Files of ImageNet-22k that PIL cannot decode; ``dump_extra`` leaves them out (as dinov2)."""

TAR_BLOCK = 512
END_OF_ARCHIVE = "** Block of NULs **"
GZIP_MAGIC = b"\x1f\x8b"

_LINE = re.compile(r"block (\d+): (.*)")


class TarMember(NamedTuple):
    """One member found in a block list: its name and byte range (header included)."""

    filename: str
    start_offset: int
    end_offset: int


class ImageNet22k(ExtendedVisionDataset):
    """ImageNet-22k read from per-class tarballs (dinov2's ``ImageNet22k``).

    ``dataset[i]`` is ``(RGB PIL image, class index)``; warnings raised while decoding are
    silenced, as in dinov2. Tarballs are memory-mapped on demand, at most
    ``mmap_cache_size`` at a time (least recently used closed first).

    Args:
        root: the folder of the tarballs (see the module docstring).
        extra: the folder of the extra files.
        transforms: a function of ``(image, target)``; excludes the two below.
        transform: a function of the image.
        target_transform: a function of the target.
        mmap_cache_size: how many tarballs stay mapped.

    Raises:
        ConfigError: ``mmap_cache_size < 1``, or ``transforms`` given together with
            ``transform``/``target_transform``.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        extra: str | os.PathLike,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        mmap_cache_size: int = 16,
    ) -> None:
        super().__init__(root, transforms, transform, target_transform)
        if isinstance(mmap_cache_size, bool) or not isinstance(mmap_cache_size, int):
            raise ConfigError(
                f"ImageNet22k: mmap_cache_size must be an int, got {mmap_cache_size!r}"
            )
        if mmap_cache_size < 1:
            raise ConfigError(f"ImageNet22k: mmap_cache_size must be >= 1, got {mmap_cache_size}")
        self._extra_root = os.fspath(extra)
        self._mmap_cache_size = mmap_cache_size
        self._entries: np.ndarray | None = None
        self._class_ids: np.ndarray | None = None
        self._maps: OrderedDict[str, mmap.mmap] = OrderedDict()

    @property
    def extra(self) -> str:
        """The folder of the extra files."""
        return self._extra_root

    def _get_entries(self) -> np.ndarray:
        if self._entries is None:
            self._entries = load_extra(self._extra_root, "entries.npy", owner="ImageNet22k")
        return self._entries

    def _get_class_ids(self) -> np.ndarray:
        if self._class_ids is None:
            self._class_ids = load_extra(self._extra_root, "class-ids.npy", owner="ImageNet22k")
        return self._class_ids

    def find_class_id(self, class_index: int) -> str:
        """The class id of a class index.

        Raises:
            IndexError: no such class index.
        """
        return str(self._get_class_ids()[class_index])

    def get_image_data(self, index: int) -> bytes:
        """The encoded image of sample ``index``, cut from its class tarball.

        Raises:
            IndexError: ``index`` is out of range.
            DatasetReadError: the tarball cannot be mapped or the member cannot be unpacked.
        """
        entry = self._get_entries()[index]
        class_id = str(entry["class_id"])
        start, end = int(entry["start_offset"]), int(entry["end_offset"])
        try:
            data = self._tarball(class_id)[start + TAR_BLOCK : end]
            if data[:2] == GZIP_MAGIC:
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                    data = unzipped.read()  # GzipFile skips the tar padding after the member
        except Exception as error:
            raise DatasetReadError(
                f'can not retrieve image data for sample {index} from "{class_id}" tarball'
            ) from error
        return data

    def get_target(self, index: int) -> int:
        """The class index of sample ``index``.

        Raises:
            IndexError: ``index`` is out of range.
        """
        return int(self._get_entries()[index]["class_index"])

    def get_targets(self) -> np.ndarray:
        """Every sample's class index (a uint32 array view)."""
        return self._get_entries()["class_index"]

    def get_class_id(self, index: int) -> str:
        """The class id of sample ``index``."""
        return str(self._get_entries()[index]["class_id"])

    def get_class_ids(self) -> np.ndarray:
        """Every sample's class id (a unicode array view)."""
        return self._get_entries()["class_id"]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, target)`` of sample ``index``, with warnings silenced.

        Raises:
            DatasetReadError: the image cannot be read or decoded.
            IndexError: ``index`` is out of range.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return super().__getitem__(index)

    def __len__(self) -> int:
        return len(self._get_entries())

    def dump_extra(self) -> None:
        """Write ``entries.npy`` and ``class-ids.npy`` from the tarballs' block lists.

        Raises:
            DatasetNotFoundError: ``root`` is missing or holds no ``.tar`` file.
            DatasetReadError: a block list cannot be read.
            DatasetFormatError: a block list is malformed (see :func:`read_block_list`).
        """
        class_ids = _find_class_ids(self.root)
        rows: list[tuple[int, str, int, int, str]] = []
        for class_index, class_id in enumerate(class_ids):
            log = os.path.join(self.root, "blocks", f"{class_id}.log")
            for member in read_block_list(log):
                if member.filename not in SKIPPED_FILES:
                    rows.append((class_index, class_id, *member[1:], member.filename))
        ends = max((row[3] for row in rows), default=0)
        offset_type = "<u4" if ends < 2**32 else "<u8"
        dtype = np.dtype(
            [
                ("class_index", "<u4"),
                ("class_id", unicode_dtype(class_ids)),
                ("start_offset", offset_type),
                ("end_offset", offset_type),
                ("filename", unicode_dtype(row[4] for row in rows)),
            ]
        )
        entries = np.array(rows, dtype=dtype)
        class_id_array = np.array(class_ids, dtype=unicode_dtype(class_ids))
        save_extra({"entries.npy": entries, "class-ids.npy": class_id_array}, self._extra_root)
        self._entries = self._class_ids = None

    def close(self) -> None:
        """Close every mapped tarball; they are mapped again on next use."""
        maps, self._maps = self._maps, OrderedDict()
        for mapped in maps.values():
            mapped.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_entries"] = state["_class_ids"] = None  # the copy maps the files again
        state["_maps"] = OrderedDict()
        return state

    def _tarball(self, class_id: str) -> mmap.mmap:
        maps = self._maps
        mapped = maps.get(class_id)
        if mapped is not None:
            maps.move_to_end(class_id)
            return mapped
        with open(os.path.join(self.root, f"{class_id}.tar"), "rb") as file:
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        maps[class_id] = mapped
        if len(maps) > self._mmap_cache_size:
            _, oldest = maps.popitem(last=False)
            oldest.close()  # slices taken from it are copies, so nothing still uses it
        return mapped


def read_block_list(path: str | os.PathLike) -> list[TarMember]:
    """The members listed in a tarball's block list (``tar -R -tf`` output).

    Each member spans from its ``block`` times 512 to the next line's block times 512; the
    last line must be the end-of-archive ``** Block of NULs **``. Folder members (names ending
    in ``/``) are left out.

    Args:
        path: the ``.log`` file.

    Returns:
        The members in tarball order.

    Raises:
        DatasetReadError: the file cannot be read.
        DatasetFormatError: a line is not ``block <n>: <name>``, blocks decrease, or the
            end-of-archive line is missing.
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = [line.rstrip("\n") for line in file if line.strip()]
    except OSError as error:
        raise DatasetReadError(f'can not read blocks file "{os.fspath(path)}"') from error
    parsed: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        match = _LINE.fullmatch(line)
        if match is None:
            raise DatasetFormatError(path, f"line {number}: expected 'block <n>: <name>'")
        block = int(match.group(1))
        if parsed and block < parsed[-1][0]:
            raise DatasetFormatError(path, f"line {number}: block {block} goes backwards")
        parsed.append((block, match.group(2)))
    if not parsed or parsed[-1][1] != END_OF_ARCHIVE:
        raise DatasetFormatError(path, f"does not end with the '{END_OF_ARCHIVE}' line")
    members = []
    for (block, name), (next_block, _) in zip(parsed, parsed[1:]):
        if name == END_OF_ARCHIVE:
            raise DatasetFormatError(path, f"'{END_OF_ARCHIVE}' before the last line")
        if not name.endswith("/"):
            members.append(TarMember(name, block * TAR_BLOCK, next_block * TAR_BLOCK))
    return members


def _find_class_ids(root: str) -> list[str]:
    try:
        with os.scandir(root) as entries:
            names = [entry.name for entry in entries if entry.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetNotFoundError(root, "no such ImageNet22k folder") from None
    class_ids = sorted(name[: -len(".tar")] for name in names if name.endswith(".tar"))
    if not class_ids:
        raise DatasetNotFoundError(root, "no <class_id>.tar tarball found")
    return class_ids
