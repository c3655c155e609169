"""PackedDataset: images stored in a packed (datadings-format) file or in a glob of shards.

Each sample is a dict holding the encoded image under ``"image"`` (or, failing that,
``"data"``, the field datadings' file readers use) and its class index under ``"label"``.
The path may also be a shard manifest, or a URL of a data file or manifest (``s3://``,
``gs://``, ``https://``: read through the node-local shard cache, see
:mod:`shardstream.read.remote`; ``storage_options`` for credentials and endpoints).
``dataset[i]`` is ``(RGB PIL image, label)`` like a torchvision data set; a sample without a
``"label"`` has the target ``None``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Mapping
from typing import Any

from ....errors import DatasetFormatError, DatasetNotFoundError, DatasetReadError
from ....format.paths import SIDECAR_SUFFIXES
from ....read import MsgpackReader, Reader, ShardedReader
from ....read.open import open_dataset
from ....read.remote.url import is_url
from .extended import ExtendedVisionDataset, decode_image

__all__ = ["IMAGE_FIELDS", "TARGET_FIELD", "PackedDataset"]

IMAGE_FIELDS: tuple[str, ...] = ("image", "data")
"""Fields holding the encoded image, in order of preference."""

TARGET_FIELD = "label"
"""The field holding the target."""

_GLOB_CHARACTERS = frozenset("*?[")


class PackedDataset(ExtendedVisionDataset):
    """Images and labels read from a packed data set file or from shards matched by a glob.

    The reader is opened here (to learn the length) and again, lazily, in each process the
    data set is pickled into (e.g. spawned loader workers); forked workers share its memory
    map.

    Args:
        path: a data file (``X.msgpack``; its index files lie next to it), a ``*.manifest``,
            a URL of either, or a glob pattern (containing ``*``, ``?`` or ``[``) whose sorted
            matches are read as shards in order.
        transform: a function of the image.
        target_transform: a function of the target.
        storage_options: fsspec options of a URL ``path`` (credentials, endpoint; default:
            the environment's).

    Raises:
        DatasetNotFoundError: the file does not exist, or the glob matches no file.
        MissingIndexError, DatasetFormatError: a file is not a readable packed data set.
        RemoteStorageError, MissingDependencyError: a URL cannot be read.
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        path = os.fspath(path)
        self.storage_options = storage_options
        super().__init__(path, transform=transform, target_transform=target_transform)
        self.path = path
        self.shards = _resolve_shards(path)
        self._reader: Reader | None = None
        self._length = len(self.reader)

    @property
    def reader(self) -> Reader:
        """The reader over every shard (opened on first use in each process)."""
        if self._reader is None:
            if len(self.shards) == 1 and (is_url(self.path) or self.path.endswith(".manifest")):
                self._reader = open_dataset(self.path, storage_options=self.storage_options)
            elif len(self.shards) == 1:
                self._reader = MsgpackReader(self.shards[0])
            else:
                self._reader = ShardedReader(self.shards)
        return self._reader

    def __len__(self) -> int:
        return self._length

    def get_sample(self, index: int) -> dict[str, Any]:
        """The decoded sample dict at ``index``.

        Raises:
            IndexError: ``index`` is out of range.
            CorruptSampleError: the sample does not decode.
        """
        return self.reader.get(index)

    def get_image_data(self, index: int) -> Any:
        """The encoded image of sample ``index`` (bytes, or a pixel array if stored so).

        Raises:
            IndexError: ``index`` is out of range.
            DatasetFormatError: the sample has no image field.
        """
        return self._image_of(self.get_sample(index), index)

    def get_target(self, index: int) -> Any:
        """The ``"label"`` of sample ``index``, ``None`` when it has none.

        Raises:
            IndexError: ``index`` is out of range.
        """
        return self.get_sample(index).get(TARGET_FIELD)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, target)`` of sample ``index`` (reads the sample once).

        Raises:
            DatasetReadError: the image cannot be decoded (names the sample).
            DatasetFormatError: the sample has no image field.
            IndexError: ``index`` is out of range.
        """
        sample = self.get_sample(index)
        image = self._decode(self._image_of(sample, index), index)
        target = sample.get(TARGET_FIELD)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def close(self) -> None:
        """Close the reader; it reopens on next use."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reader"] = None  # memory maps do not pickle; the copy reopens the files
        return state

    def _image_of(self, sample: Mapping[str, Any], index: int) -> Any:
        for field in IMAGE_FIELDS:
            if field in sample:
                return sample[field]
        raise DatasetFormatError(
            self.path,
            f"sample {index} has no image field ({' or '.join(IMAGE_FIELDS)}); its fields are "
            f"{', '.join(map(str, sample))}",
        )

    def _decode(self, data: Any, index: int) -> Any:
        try:
            return decode_image(data)
        except Exception as error:
            raise DatasetReadError(f"can not read image for sample {index}") from error


def _resolve_shards(path: str) -> list[str]:
    if _GLOB_CHARACTERS.isdisjoint(path) or is_url(path):
        return [path]  # MsgpackReader names a missing file
    matches = sorted(
        match for match in glob.glob(path) if os.path.isfile(match) and _is_data_file(match)
    )
    if not matches:
        raise DatasetNotFoundError(path, "the glob pattern matches no packed data set file")
    return matches


def _is_data_file(path: str) -> bool:
    # A glob like "train-*" also matches every shard's index files; keep the data files.
    return not path.endswith(SIDECAR_SUFFIXES)
