"""datadings' ``tools.cached_property``: Python's own :func:`functools.cached_property`."""

from functools import cached_property

__all__ = ("cached_property",)
