"""helios' ``Registry``: a named map from names to classes or functions, filled by decorators.

Behaviour kept from helios: an object is registered under its ``__name__`` (plus ``"_" + suffix``
when a suffix is given); ``get(name, suffix)`` falls back to ``name + "_" + suffix`` and warns
that it did so (the warning comes before it knows whether the fallback exists); iterating yields
``(name, object)`` pairs; ``str()`` is the registry's name. The messages are helios' own.

Differences from helios:

- Registering a name twice raises :class:`~shardstream.errors.AlreadyRegisteredError` (a
  ``ValueError``); helios uses ``assert`` (``AssertionError``, gone under ``python -O``).
- A missing name raises :class:`~shardstream.errors.NotRegisteredError` (a ``KeyError``, as in
  helios).
- The registry itself is a decorator (``@REGISTRY``), as helios' documentation of
  ``COLLATE_FN_REGISTRY`` shows but helios' class does not support, and ``register()`` /
  ``register(suffix=...)`` called without an object return a decorator.
- An object without ``__name__`` raises :class:`~shardstream.errors.ConfigTypeError` (helios:
  ``AttributeError``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, KeysView
from typing import Any, TypeVar

from ...errors import AlreadyRegisteredError, ConfigTypeError, NotRegisteredError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry:
    """A name to object map that users extend with their own types (helios' ``Registry``).

    Example::

        TEST_REGISTRY = Registry("test")

        @TEST_REGISTRY.register
        class TestClass: ...

        TEST_REGISTRY.register(test_function)  # the call form

    Args:
        name: the registry's name, used in messages and by ``str()``.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._objects: dict[str, Any] = {}

    def register(self, obj: T | None = None, suffix: str | None = None) -> Any:
        """Register ``obj`` under ``obj.__name__`` (plus ``"_" + suffix``) and return it.

        Works as a bare decorator (``@reg.register``), called directly (``reg.register(f)``),
        and called without an object (``@reg.register()``, ``@reg.register(suffix="v2")``),
        which returns the decorator.

        Args:
            obj: the class or function to add; ``None`` to get a decorator.
            suffix: appended to the name as ``"_" + suffix`` when it is a string.

        Returns:
            ``obj`` itself, or a decorator when ``obj`` is ``None``.

        Raises:
            AlreadyRegisteredError: an object of that name is already registered.
            ConfigTypeError: ``obj`` has no ``__name__``.
        """
        if obj is None:

            def decorator(target: T) -> T:
                return self.register(target, suffix)

            return decorator
        try:
            name = obj.__name__  # type: ignore[attr-defined]
        except AttributeError:
            raise ConfigTypeError(
                f"registry '{self._name}': can only register objects with a __name__ (classes "
                f"and functions), got {type(obj).__name__}"
            ) from None
        if isinstance(suffix, str):
            name = f"{name}_{suffix}"
        if name in self._objects:
            raise AlreadyRegisteredError(
                f"error: an object named '{name}' already exists in the '{self._name}' registry"
            )
        self._objects[name] = obj
        return obj

    def __call__(self, obj: T) -> T:
        """Register ``obj`` (so that ``@registry`` works as a decorator); see :meth:`register`."""
        return self.register(obj)

    def get(self, name: str, suffix: str | None = None) -> Any:
        """The object registered as ``name``, else (with a suffix) as ``name + "_" + suffix``.

        The fallback warns ``"found <name>_<suffix> instead of <name>"`` whether or not the
        suffixed name exists, as helios does.

        Args:
            name: the registered name.
            suffix: the suffix to try when ``name`` itself is not registered.

        Returns:
            The registered object.

        Raises:
            NotRegisteredError: neither name is registered (the message names ``name``).
        """
        if name in self._objects:
            return self._objects[name]
        if suffix is not None:
            suffixed = f"{name}_{suffix}"
            warnings.warn(f"found {suffixed} instead of {name}", stacklevel=2)
            if suffixed in self._objects:
                return self._objects[suffixed]
        raise NotRegisteredError(f"No object called '{name}' found in the '{self._name}' registrar")

    def keys(self) -> KeysView[str]:
        """The registered names, in registration order.

        Returns:
            A live view of the names.
        """
        return self._objects.keys()

    def __contains__(self, name: object) -> bool:
        return name in self._objects

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._objects.items())

    def __len__(self) -> int:
        return len(self._objects)

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"Registry({self._name!r}, names={list(self._objects)!r})"
