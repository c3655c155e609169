"""datadings' ``reader.list``: :class:`ListReader` over a list of sample dicts, and helpers."""

from __future__ import annotations

import os
from typing import Any

from ....read.list import ListReader, load_labels, sorted_labels
from ....read.reader import Reader

__all__ = ["ListReader", "Reader", "load_lines", "noop", "sorted_labels"]


def noop(_: Any) -> None:
    """Do nothing (the default ``initfun`` and ``convertfun``)."""


def load_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file, stripped (e.g. a label file)."""
    return load_labels(path)
