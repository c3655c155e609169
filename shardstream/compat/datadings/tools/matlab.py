"""datadings' ``tools.matlab``: read MATLAB ``.mat`` files (needs scipy)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ....errors import MissingDependencyError

__all__ = ["iter_fields", "loadmat"]


def loadmat(mat: Any) -> dict:
    """Contents of a MATLAB file given as a path, a file object or its bytes.

    Raises:
        MissingDependencyError: scipy is not installed (``pip install shardstream[imagenet]``).
        ValueError: the data is not a MATLAB file (scipy's error).
    """
    try:
        import scipy.io
    except ImportError as error:
        raise MissingDependencyError(
            "loadmat needs scipy: pip install 'shardstream[imagenet]'"
        ) from error
    if isinstance(mat, (bytes, bytearray, memoryview)):
        return scipy.io.loadmat(io.BytesIO(mat))
    return scipy.io.loadmat(mat)


def iter_fields(arr: np.ndarray, ignore: Sequence[str] = ()) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, arr[name])`` for each field of a structured array, except ``ignore``."""
    for name in arr.dtype.fields:
        if name not in ignore:
            yield name, arr[name]
