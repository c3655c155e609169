"""The base of the image data sets: raw bytes and a target per index, decoded with PIL.

Mirrors dinov2's ``ExtendedVisionDataset`` (which derives from torchvision's ``VisionDataset``)
without importing torchvision: the ``root`` / ``transform`` / ``target_transform`` /
``transforms`` attributes and their rules are torchvision's.
"""

from __future__ import annotations

import io
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ....errors import ConfigError, DatasetReadError

__all__ = ["ExtendedVisionDataset", "PairTransform", "decode_image"]


class PairTransform:
    """Apply ``transform`` to an image and ``target_transform`` to its target.

    torchvision's ``StandardTransform``: either function may be ``None`` (no change).

    Args:
        transform: called on the image.
        target_transform: called on the target.
    """

    def __init__(
        self,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.transform = transform
        self.target_transform = target_transform

    def __call__(self, image: Any, target: Any) -> tuple[Any, Any]:
        """Return ``(transform(image), target_transform(target))``, skipping ``None`` ones."""
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(transform={self.transform!r}, "
            f"target_transform={self.target_transform!r})"
        )


class ExtendedVisionDataset(Dataset, ABC):
    """A map-style data set of images stored as encoded bytes, with one target per sample.

    Subclasses implement :meth:`get_image_data`, :meth:`get_target` and ``__len__``.
    ``dataset[i]`` decodes the image with PIL, converts it to RGB and returns ``(image,
    target)`` after ``transforms``.

    Args:
        root: the data set's root folder (or file), kept as :attr:`root`.
        transforms: a function of ``(image, target)``; excludes the two below.
        transform: a function of the image.
        target_transform: a function of the target.

    Raises:
        ConfigError: ``transforms`` was given together with ``transform`` or
            ``target_transform`` (torchvision raises ``ValueError`` too).
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if transforms is not None and (transform is not None or target_transform is not None):
            raise ConfigError(
                f"{type(self).__name__}: pass either transforms or transform/target_transform, "
                "not both"
            )
        self.root = os.fspath(root) if isinstance(root, os.PathLike) else root
        self.transform = transform
        self.target_transform = target_transform
        if transform is not None or target_transform is not None:
            transforms = PairTransform(transform, target_transform)
        self.transforms = transforms

    @abstractmethod
    def get_image_data(self, index: int) -> bytes:
        """The encoded image of sample ``index``."""

    @abstractmethod
    def get_target(self, index: int) -> Any:
        """The target of sample ``index``."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, target)`` of sample ``index``, transformed.

        Raises:
            DatasetReadError: the image cannot be read or decoded (names the sample).
            IndexError: ``index`` is out of range.
        """
        try:
            image = decode_image(self.get_image_data(index))
        except IndexError:
            raise
        except Exception as error:
            raise DatasetReadError(f"can not read image for sample {index}") from error
        target = self.get_target(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def __repr__(self) -> str:
        try:
            size = f"{len(self):,d}"
        except Exception:  # an unprepared data set (e.g. extra files not dumped yet)
            size = "?"
        return f"{type(self).__name__}(root={self.root!r}, samples={size})"


def decode_image(data: Any) -> Image.Image:
    """Decode an image as dinov2 does: PIL, then ``convert("RGB")``.

    Args:
        data: encoded bytes (any bytes-like object), or a uint8 array of shape ``(H, W)`` or
            ``(H, W, C)`` holding pixels.

    Returns:
        The RGB PIL image, fully loaded.

    Raises:
        PIL.UnidentifiedImageError, OSError, TypeError, ValueError: the data is no image.
    """
    if isinstance(data, np.ndarray):
        return Image.fromarray(data).convert("RGB")
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")
