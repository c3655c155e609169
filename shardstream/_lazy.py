"""Importing torch-based names on first use, so ``import shardstream`` stays free of torch."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from .errors import MissingDependencyError

__all__ = ["resolve_lazy"]


def resolve_lazy(package: str, table: Mapping[str, str], name: str, namespace: dict) -> Any:
    """Import ``name`` from the submodule ``package.<table[name]>`` and cache it in ``namespace``.

    Meant as the body of a package's module-level ``__getattr__``.

    Raises:
        AttributeError: ``name`` is not in ``table``.
        MissingDependencyError: the submodule needs torch and torch is not installed.
    """
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "torch":
            raise
        raise MissingDependencyError(
            f"{package}.{name} needs torch; install it (pip install torch)"
        ) from error
    namespace[name] = value
    return value
