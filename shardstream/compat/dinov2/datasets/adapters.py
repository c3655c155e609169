"""DatasetWithEnumeratedTargets: a data set whose targets carry their sample index (dinov2)."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

__all__ = ["DatasetWithEnumeratedTargets"]


class DatasetWithEnumeratedTargets(Dataset):
    """Wrap a data set so that sample ``i`` is ``(image, (i, target))``.

    As in dinov2, ``dataset[i]`` replaces a ``None`` target by ``i`` (e.g. ImageNet's TEST
    split), while :meth:`get_target` passes the inner target through unchanged.

    Args:
        dataset: a data set with ``__getitem__`` and ``__len__`` (and ``get_image_data`` /
            ``get_target`` for those methods).
    """

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset

    @property
    def dataset(self) -> Any:
        """The wrapped data set."""
        return self._dataset

    def get_image_data(self, index: int) -> Any:
        """The wrapped data set's ``get_image_data(index)``."""
        return self._dataset.get_image_data(index)

    def get_target(self, index: int) -> tuple[int, Any]:
        """``(index, inner target)``; a ``None`` target stays ``None``."""
        return index, self._dataset.get_target(index)

    def __getitem__(self, index: int) -> tuple[Any, tuple[int, Any]]:
        image, target = self._dataset[index]
        return image, (index, index if target is None else target)

    def __len__(self) -> int:
        return len(self._dataset)
