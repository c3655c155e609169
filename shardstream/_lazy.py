"""Importing torch-based names on first use, so ``import shardstream`` stays free of torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from .errors import MissingDependencyError

__all__ = ["lazy_module_hooks", "resolve_lazy"]


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
            f"{package}.{name} needs torch: pip install 'shardstream[torch]'"
        ) from error
    namespace[name] = value
    return value


def lazy_module_hooks(
    package: str, table: Mapping[str, str], namespace: dict
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module-level ``__getattr__`` and ``__dir__`` for names imported on first use.

    Usage: ``__getattr__, __dir__ = lazy_module_hooks(__name__, LAZY_NAMES, globals())``.

    Args:
        package: the package's ``__name__``.
        table: public name -> submodule of ``package`` that defines it.
        namespace: the package's ``globals()`` (resolved names are cached there; ``__dir__``
            lists them together with its ``__all__``).

    Returns:
        ``(__getattr__, __dir__)``; ``__getattr__`` raises as :func:`resolve_lazy` does.
    """

    def getattr_(name: str) -> Any:
        return resolve_lazy(package, table, name, namespace)

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return getattr_, dir_
