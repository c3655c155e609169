"""Finding the converters: the modules of :mod:`shardstream.sets` that write a data set."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

__all__ = ["converter_modules"]

sets_package = sys.modules[__package__ or "shardstream.sets"]


def converter_modules() -> dict[str, ModuleType]:
    """The converter modules of :mod:`shardstream.sets`, by ``NAME`` (sorted).

    A module counts as a converter when it defines ``NAME``, ``SOURCES``, ``add_arguments`` and
    ``items``; modules whose optional dependencies are missing (ImportError) are left out.
    """
    found = {}
    for info in sorted(pkgutil.iter_modules(sets_package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{sets_package.__name__}.{info.name}")
        except ImportError:
            continue
        if all(hasattr(module, name) for name in ("NAME", "SOURCES", "add_arguments", "items")):
            found[module.NAME] = module
    return dict(sorted(found.items()))
