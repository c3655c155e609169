"""ImageFolder: one sub-folder per class, found and ordered exactly as torchvision's ``ImageFolder``.

Classes are the sub-folders of ``root`` in sorted order (class ``i`` is the ``i``-th); samples
are the files below each class folder (symbolic links followed) whose names end in one of
:data:`IMG_EXTENSIONS` (case-insensitive), folders walked in sorted order and files sorted
within each folder. Files are read and decoded with PIL; torchvision is not imported.

The file list is kept in numpy arrays (one byte buffer plus offsets), not a list of Python
strings, so forked loader workers do not copy it page by page as reference counts change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ....errors import DatasetNotFoundError
from .extended import ExtendedVisionDataset

__all__ = ["IMG_EXTENSIONS", "ImageFolder", "PathTable", "find_classes", "find_image_files"]

IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)
"""File name endings ImageFolder accepts (torchvision's list; compared in lower case)."""


class ImageFolder(ExtendedVisionDataset):
    """A class-per-folder image data set, compatible with torchvision's ``ImageFolder``.

    ``dataset[i]`` is ``(RGB PIL image, class index)``, transformed by ``transform`` /
    ``target_transform``; ``classes``, ``class_to_idx``, ``samples``, ``imgs`` and ``targets``
    hold what torchvision's attributes of the same names hold.

    Args:
        root: the folder holding one sub-folder per class.
        transform: a function of the image.
        target_transform: a function of the target.
        extensions: accepted file name endings (lower case).

    Raises:
        DatasetNotFoundError: ``root`` is not a folder, has no class folder, or a class folder
            holds no accepted file (a ``FileNotFoundError``, as torchvision raises).
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        extensions: tuple[str, ...] = IMG_EXTENSIONS,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.extensions = tuple(extensions)
        self.classes, self.class_to_idx = find_classes(self.root)
        self._paths, self._targets = find_image_files(self.root, self.classes, self.extensions)

    def __len__(self) -> int:
        return len(self._targets)

    def get_path(self, index: int) -> str:
        """The full path of sample ``index`` (``root`` joined with the relative path).

        Raises:
            IndexError: ``index`` is out of range.
        """
        return os.path.join(self.root, self._paths[index])

    def get_image_data(self, index: int) -> bytes:
        """The bytes of sample ``index``'s file.

        Raises:
            IndexError: ``index`` is out of range.
            OSError: the file cannot be read.
        """
        with open(self.get_path(index), "rb") as file:
            return file.read()

    def get_target(self, index: int) -> int:
        """The class index of sample ``index``.

        Raises:
            IndexError: ``index`` is out of range.
        """
        return int(self._targets[index])

    def get_targets(self) -> np.ndarray:
        """Every sample's class index, in sample order (an int64 array)."""
        return self._targets

    @property
    def samples(self) -> list[tuple[str, int]]:
        """``(path, class index)`` of every sample, as torchvision lists them (built on access)."""
        return list(zip(self._paths.full_paths(self.root), self._targets.tolist()))

    @property
    def imgs(self) -> list[tuple[str, int]]:
        """Alias of :attr:`samples` (torchvision keeps both)."""
        return self.samples

    @property
    def targets(self) -> list[int]:
        """Every sample's class index as a list (built on access)."""
        return self._targets.tolist()


def find_classes(root: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
    """The class folders of ``root`` in sorted order and their indices.

    Args:
        root: the data set folder.

    Returns:
        ``(classes, class_to_idx)``.

    Raises:
        DatasetNotFoundError: ``root`` is not a folder or holds no sub-folder.
    """
    try:
        with os.scandir(root) as entries:
            classes = sorted(entry.name for entry in entries if entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetNotFoundError(root, "no such folder (the ImageFolder root)") from None
    if not classes:
        raise DatasetNotFoundError(root, "no class folder found (expected root/<class>/<image>)")
    return classes, {name: index for index, name in enumerate(classes)}


def find_image_files(
    root: str | os.PathLike, classes: list[str], extensions: tuple[str, ...] = IMG_EXTENSIONS
) -> tuple[PathTable, np.ndarray]:
    """Every image file below the class folders, in torchvision's order, and its class index.

    Args:
        root: the data set folder.
        classes: the class folder names, in class-index order.
        extensions: accepted file name endings (lower case).

    Returns:
        ``(paths relative to root, int64 class indices)``.

    Raises:
        DatasetNotFoundError: a class folder holds no accepted file.
    """
    root = os.fspath(root)
    prefix_length = len(os.path.join(root, ""))
    relative: list[str] = []
    targets: list[int] = []
    empty = []
    for class_index, name in sorted(enumerate(classes), key=lambda pair: pair[1]):
        found = 0
        for path in _walk_files(os.path.join(root, name)):
            if path.lower().endswith(extensions):
                relative.append(path[prefix_length:])
                targets.append(class_index)
                found += 1
        if not found:
            empty.append(name)
    if empty:
        raise DatasetNotFoundError(
            root,
            f"no image file in the class folders {', '.join(sorted(empty))} (accepted endings: "
            f"{', '.join(extensions)})",
        )
    return PathTable(relative), np.asarray(targets, dtype=np.int64)


class PathTable:
    """Paths packed into one numpy byte buffer with offsets (no per-path Python objects).

    Args:
        paths: the paths, in order.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        encoded = [os.fsencode(path) for path in paths]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self._offsets[1:])
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> str:
        """The path at ``index`` (negative counts from the end).

        Raises:
            IndexError: ``index`` is out of range.
        """
        count = len(self)
        position = index + count if index < 0 else index
        if not 0 <= position < count:
            raise IndexError(f"index {index} out of range for {count} paths")
        start, stop = self._offsets[position], self._offsets[position + 1]
        return os.fsdecode(self._buffer[start:stop].tobytes())

    def __iter__(self) -> Iterator[str]:
        for index in range(len(self)):
            yield self[index]

    def full_paths(self, root: str) -> list[str]:
        """Every path joined to ``root``."""
        return [os.path.join(root, path) for path in self]


def _walk_files(folder: str) -> Iterator[str]:
    # torchvision: sorted(os.walk(folder, followlinks=True)), then sorted file names per folder
    for directory, _, names in sorted(os.walk(folder, followlinks=True)):
        for name in sorted(names):
            yield os.path.join(directory, name)
