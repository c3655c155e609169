"""ImageNet (ILSVRC-2012) in its extracted folder layout, with dinov2's "extra" index files.

Layout under ``root``:

* ``train/<class_id>/<class_id>_<actual_index>.JPEG``
* ``val/<class_id>/ILSVRC2012_val_<actual_index:08d>.JPEG``
* ``test/ILSVRC2012_test_<actual_index:08d>.JPEG`` (no class folders)
* ``labels.txt``: CSV rows ``class_id,class_name``.

Under ``extra`` (written by :meth:`ImageNet.dump_extra`, read memory-mapped):

* ``entries-<SPLIT>.npy``: one record per sample with the fields ``actual_index`` (``<u4``),
  ``class_index`` (``<u4``; 4294967295 for TEST), ``class_id`` and ``class_name`` (unicode; empty
  for TEST);
* ``class-ids-<SPLIT>.npy`` and ``class-names-<SPLIT>.npy``: unicode arrays indexed by class
  index (not written for TEST).

Differences from dinov2:

* ``len()`` does not require the full ImageNet-1k split length (subsets in the same layout
  work); pass ``check_length=True`` for dinov2's check.
* ``dump_extra`` lists TEST images from the ``test`` folder (dinov2 assumes the 100,000 files
  ``1..100000``; on the full split both give the same entries) and finds TRAIN/VAL images
  without torchvision, in torchvision ``ImageFolder``'s order.
* Faults raise typed errors naming the file: class ids/names of TEST raise
  :class:`~shardstream.errors.ConfigError` (dinov2 asserts), a missing extra file raises
  :class:`~shardstream.errors.DatasetNotFoundError`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from ....errors import (
    ConfigError,
    DatasetFormatError,
    DatasetNotFoundError,
    DatasetReadError,
    DatasetSplitError,
)
from .extended import ExtendedVisionDataset
from .extra import load_extra, save_extra, unicode_dtype
from .image_folder import find_classes, find_image_files

__all__ = ["ImageNet", "ImageNetSplit", "NO_CLASS_INDEX"]

NO_CLASS_INDEX = 2**32 - 1
"""The ``class_index`` TEST entries carry (``uint32(-1)``)."""

_LENGTHS = {"train": 1_281_167, "val": 50_000, "test": 100_000}


class ImageNetSplit(Enum):
    """An ImageNet split; the value is its folder name (also ``ImageNet.Split``)."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"

    @property
    def length(self) -> int:
        """The number of images of the full ImageNet-1k split."""
        return _LENGTHS[self.value]

    def get_dirname(self, class_id: str | None = None) -> str:
        """The folder of the split's images, relative to the root (``<split>[/<class_id>]``)."""
        return self.value if class_id is None else os.path.join(self.value, class_id)

    def get_image_relpath(self, actual_index: int, class_id: str | None = None) -> str:
        """The path of an image relative to the root.

        Args:
            actual_index: the number in the file name.
            class_id: the class folder (``None`` for TEST).

        Returns:
            ``train/<id>/<id>_<n>.JPEG`` or ``<split>[/<id>]/ILSVRC2012_<split>_<n:08d>.JPEG``.
        """
        if self is ImageNetSplit.TRAIN:
            name = f"{class_id}_{actual_index}"
        else:
            name = f"ILSVRC2012_{self.value}_{actual_index:08d}"
        return os.path.join(self.get_dirname(class_id), name + ".JPEG")

    def parse_image_relpath(self, image_relpath: str) -> tuple[str, int]:
        """Split a TRAIN/VAL image path into ``(class_id, actual_index)``.

        The class id is the parent folder's name, the actual index the integer after the last
        ``_`` of the file's stem.

        Raises:
            ConfigError: called on TEST (its paths hold no class id).
            DatasetFormatError: the file name does not end in ``_<integer>``.
        """
        if self is ImageNetSplit.TEST:
            raise ConfigError("ImageNetSplit.TEST image paths hold no class id")
        folder, name = os.path.split(image_relpath)
        return os.path.basename(folder), _actual_index(image_relpath, name)

    @classmethod
    def from_name(cls, name: str | ImageNetSplit) -> ImageNetSplit:
        """The split named ``name`` (a member name: ``TRAIN``, ``VAL`` or ``TEST``).

        Raises:
            DatasetSplitError: ``name`` is no member name (a ``KeyError``, as ``Split[name]``).
        """
        if isinstance(name, cls):
            return name
        try:
            return cls[name]
        except (KeyError, TypeError):
            raise DatasetSplitError(
                f"unknown ImageNet split {name!r}; use one of {', '.join(cls.__members__)}"
            ) from None


class ImageNet(ExtendedVisionDataset):
    """ImageNet-1k read from its folders, indexed by the extra files (dinov2's ``ImageNet``).

    ``dataset[i]`` is ``(RGB PIL image, class index)``; TEST samples have the target ``None``.
    The extra files are opened on first use, so an instance can be made before they exist and
    write them with :meth:`dump_extra`.

    Args:
        split: an :class:`ImageNetSplit` or its member name.
        root: the ImageNet folder (see the module docstring).
        extra: the folder of the extra files.
        transforms: a function of ``(image, target)``; excludes the two below.
        transform: a function of the image.
        target_transform: a function of the target.
        check_length: make ``len()`` raise unless the split has its full ImageNet-1k length.

    Raises:
        DatasetSplitError: ``split`` names no split.
        ConfigError: ``transforms`` given together with ``transform``/``target_transform``.
    """

    Split = ImageNetSplit

    def __init__(
        self,
        *,
        split: ImageNetSplit | str,
        root: str | os.PathLike,
        extra: str | os.PathLike,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        check_length: bool = False,
    ) -> None:
        super().__init__(root, transforms, transform, target_transform)
        self._split = ImageNetSplit.from_name(split)
        self._extra_root = os.fspath(extra)
        self._check_length = bool(check_length)
        self._entries: np.ndarray | None = None
        self._class_ids: np.ndarray | None = None
        self._class_names: np.ndarray | None = None

    @property
    def split(self) -> ImageNetSplit:
        """The split."""
        return self._split

    @property
    def extra(self) -> str:
        """The folder of the extra files."""
        return self._extra_root

    @property
    def _entries_name(self) -> str:
        return f"entries-{self._split.name}.npy"

    @property
    def _class_ids_name(self) -> str:
        return f"class-ids-{self._split.name}.npy"

    @property
    def _class_names_name(self) -> str:
        return f"class-names-{self._split.name}.npy"

    def _get_entries(self) -> np.ndarray:
        if self._entries is None:
            self._entries = load_extra(self._extra_root, self._entries_name, owner="ImageNet")
        return self._entries

    def _get_class_ids(self) -> np.ndarray:
        self._refuse_test("class ids")
        if self._class_ids is None:
            self._class_ids = load_extra(self._extra_root, self._class_ids_name, owner="ImageNet")
        return self._class_ids

    def _get_class_names(self) -> np.ndarray:
        self._refuse_test("class names")
        if self._class_names is None:
            self._class_names = load_extra(
                self._extra_root, self._class_names_name, owner="ImageNet"
            )
        return self._class_names

    def find_class_id(self, class_index: int) -> str:
        """The class id (e.g. ``n01440764``) of a class index.

        Raises:
            ConfigError: the split is TEST.
            IndexError: no such class index.
        """
        return str(self._get_class_ids()[class_index])

    def find_class_name(self, class_index: int) -> str:
        """The class name of a class index.

        Raises:
            ConfigError: the split is TEST.
            IndexError: no such class index.
        """
        return str(self._get_class_names()[class_index])

    def get_image_data(self, index: int) -> bytes:
        """The bytes of sample ``index``'s JPEG file.

        Raises:
            IndexError: ``index`` is out of range.
            OSError: the file cannot be read.
        """
        entry = self._get_entries()[index]
        relpath = self._split.get_image_relpath(
            int(entry["actual_index"]), self.get_class_id(index)
        )
        with open(os.path.join(self.root, relpath), "rb") as file:
            return file.read()

    def get_target(self, index: int) -> int | None:
        """The class index of sample ``index``; ``None`` for TEST.

        Raises:
            IndexError: ``index`` is out of range.
        """
        class_index = self._get_entries()[index]["class_index"]
        return None if self._split is ImageNetSplit.TEST else int(class_index)

    def get_targets(self) -> np.ndarray | None:
        """Every sample's class index (a uint32 array view); ``None`` for TEST."""
        entries = self._get_entries()
        return None if self._split is ImageNetSplit.TEST else entries["class_index"]

    def get_class_id(self, index: int) -> str | None:
        """The class id of sample ``index``; ``None`` for TEST."""
        class_id = self._get_entries()[index]["class_id"]
        return None if self._split is ImageNetSplit.TEST else str(class_id)

    def get_class_name(self, index: int) -> str | None:
        """The class name of sample ``index``; ``None`` for TEST."""
        class_name = self._get_entries()[index]["class_name"]
        return None if self._split is ImageNetSplit.TEST else str(class_name)

    def __len__(self) -> int:
        entries = self._get_entries()
        if self._check_length and len(entries) != self._split.length:
            raise DatasetFormatError(
                os.path.join(self._extra_root, self._entries_name),
                f"holds {len(entries):,d} entries; the full ImageNet {self._split.name} split "
                f"has {self._split.length:,d}",
            )
        return len(entries)

    def dump_extra(self) -> None:
        """Write the split's extra files (entries, and class ids and names unless TEST).

        TRAIN/VAL: images are listed in torchvision ``ImageFolder``'s order of
        ``root/<split>`` (class index = position of the class folder in sorted order) and
        named from ``root/labels.txt``. TEST: the images of ``root/test`` in sorted order.

        Raises:
            DatasetReadError: ``labels.txt`` cannot be read.
            DatasetFormatError: ``labels.txt`` has a row that is not ``id,name``, lacks a class
                folder's id, or an image name does not end in ``_<integer>``.
            DatasetNotFoundError: the split folder, or images in a class folder, are missing.
        """
        entries = self._list_entries()
        arrays = {self._entries_name: entries}
        if self._split is not ImageNetSplit.TEST:
            count = int(entries["class_index"].max()) + 1 if len(entries) else 0
            class_ids = np.empty(count, dtype=unicode_dtype(entries["class_id"].tolist()))
            class_names = np.empty(count, dtype=unicode_dtype(entries["class_name"].tolist()))
            class_ids[entries["class_index"]] = entries["class_id"]
            class_names[entries["class_index"]] = entries["class_name"]
            arrays[self._class_ids_name] = class_ids
            arrays[self._class_names_name] = class_names
        save_extra(arrays, self._extra_root)
        self._entries = self._class_ids = self._class_names = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # Pickling a memory map copies the whole array; the copy maps the files again instead.
        state["_entries"] = state["_class_ids"] = state["_class_names"] = None
        return state

    def _refuse_test(self, what: str) -> None:
        if self._split is ImageNetSplit.TEST:
            raise ConfigError(f"ImageNet: {what} are not available for the TEST split")

    def _list_entries(self) -> np.ndarray:
        split_root = os.path.join(self.root, self._split.get_dirname())
        if self._split is ImageNetSplit.TEST:
            names = sorted(
                entry.name
                for entry in _scan(split_root)
                if entry.is_file() and entry.name.endswith(".JPEG")
            )
            actual = [_actual_index(os.path.join(split_root, name), name) for name in names]
            entries = np.empty(len(actual), dtype=_entries_dtype("U1", "U1"))
            entries["actual_index"] = actual
            entries["class_index"] = NO_CLASS_INDEX
            entries["class_id"] = ""
            entries["class_name"] = ""
            return entries
        names_by_id = _read_labels(os.path.join(self.root, "labels.txt"))
        classes, _ = find_classes(split_root)
        paths, targets = find_image_files(split_root, classes)
        missing = [class_id for class_id in classes if class_id not in names_by_id]
        if missing:
            raise DatasetFormatError(
                os.path.join(self.root, "labels.txt"),
                f"has no row for the class folders {', '.join(missing)}",
            )
        class_ids = [classes[target] for target in targets.tolist()]
        class_names = [names_by_id[class_id] for class_id in class_ids]
        dtype = _entries_dtype(unicode_dtype(classes), unicode_dtype(class_names))
        entries = np.empty(len(paths), dtype=dtype)
        entries["actual_index"] = [
            _actual_index(os.path.join(split_root, path), os.path.basename(path)) for path in paths
        ]
        entries["class_index"] = targets
        entries["class_id"] = class_ids
        entries["class_name"] = class_names
        return entries


def _entries_dtype(class_id_dtype: str, class_name_dtype: str) -> np.dtype:
    return np.dtype(
        [
            ("actual_index", "<u4"),
            ("class_index", "<u4"),
            ("class_id", class_id_dtype),
            ("class_name", class_name_dtype),
        ]
    )


def _actual_index(path: str, name: str) -> int:
    stem = os.path.splitext(name)[0]
    try:
        value = int(stem.rsplit("_", 1)[-1])
    except ValueError:
        raise DatasetFormatError(
            path, "ImageNet image name must end in _<integer> before its extension"
        ) from None
    if not 0 <= value < 2**32:
        raise DatasetFormatError(path, "ImageNet image number does not fit in 32 bits")
    return value


def _read_labels(path: str) -> dict[str, str]:
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
    except OSError as error:
        raise DatasetReadError(f'can not read labels file "{path}"') from error
    names: dict[str, str] = {}
    for line, row in enumerate(rows, 1):
        if len(row) != 2:
            raise DatasetFormatError(
                path, f"line {line}: expected 'class_id,class_name', got {len(row)} fields"
            )
        names[row[0]] = row[1]
    return names


def _scan(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetNotFoundError(folder, "no such ImageNet split folder") from None
