"""datadings' ``reader.reader``: the abstract :class:`Reader`."""

from ....read import Reader

__all__ = ["Reader"]
