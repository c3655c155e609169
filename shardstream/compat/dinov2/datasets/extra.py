"""The "extra" metadata files of the ImageNet data sets: numpy ``.npy`` arrays in one folder.

They are written once by ``dump_extra`` (atomically: under a temp name, then renamed) and read
memory-mapped and read-only, so loader workers share their pages instead of copying them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ....errors import CorruptIndexError, DatasetNotFoundError
from ....format.atomic import StagedFiles

__all__ = ["load_extra", "save_extra", "unicode_dtype"]


def load_extra(extra: str | os.PathLike, name: str, *, owner: str) -> np.ndarray:
    """Map ``extra/name`` read-only.

    Args:
        extra: the extra folder.
        name: the file name (e.g. ``"entries-TRAIN.npy"``).
        owner: the data set class, for messages.

    Returns:
        The array (a read-only memory map; an in-memory array for zero-length files).

    Raises:
        DatasetNotFoundError: the file does not exist (the message says to run ``dump_extra``).
        CorruptIndexError: the file is not a readable ``.npy`` array.
    """
    path = os.path.join(extra, name)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DatasetNotFoundError(
            path, f"{owner} extra file not found; create it with {owner}(...).dump_extra()"
        ) from None
    except (ValueError, OSError, EOFError) as error:
        raise CorruptIndexError(path, f"not a readable .npy array: {error}") from error


def save_extra(arrays: dict[str, np.ndarray], extra: str | os.PathLike) -> None:
    """Write each array as ``extra/<name>``, all renamed into place together.

    Args:
        arrays: file name to array.
        extra: the extra folder (created if missing).
    """
    folder = Path(extra)
    folder.mkdir(parents=True, exist_ok=True)
    staged = StagedFiles()
    try:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            staged.write_bytes(folder / name, buffer.getbuffer())
        staged.commit()
    except BaseException:
        staged.abort()
        raise


def unicode_dtype(texts: Iterable[str]) -> str:
    """The numpy unicode dtype just wide enough for every text (``"U1"`` at least)."""
    return f"U{max((len(text) for text in texts), default=0) or 1}"
