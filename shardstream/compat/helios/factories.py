"""helios' dataset and collate-function registries and the factories that build from them.

``COLLATE_FN_REGISTRY`` starts with torch's ``default_collate`` (under ``"default_collate"``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset, default_collate

from ...errors import ConfigTypeError
from .registry import Registry

__all__ = ["COLLATE_FN_REGISTRY", "DATASET_REGISTRY", "create_collate_fn", "create_dataset"]

DATASET_REGISTRY = Registry("dataset")
"""The registry of data set classes.

Example::

    @DATASET_REGISTRY.register
    class MyDataset: ...

    DATASET_REGISTRY.register(MyDataset)  # or, instead of the decorator, the call form
"""

COLLATE_FN_REGISTRY = Registry("collate_fn")
"""The registry of collate functions and collate classes; holds torch's ``default_collate``.

Example::

    @COLLATE_FN_REGISTRY
    def my_collate_fn(batch): ...

    COLLATE_FN_REGISTRY.register(my_collate_fn)  # or, instead of the decorator, the call form
"""

COLLATE_FN_REGISTRY.register(default_collate)


def create_dataset(type_name: str, *args: Any, **kwargs: Any) -> Dataset:
    """Build the data set class registered as ``type_name`` in :data:`DATASET_REGISTRY`.

    Args:
        type_name: the registered name.
        args: positional arguments for the class.
        kwargs: keyword arguments for the class.

    Returns:
        The new data set.

    Raises:
        NotRegisteredError: no data set of that name is registered.
    """
    return DATASET_REGISTRY.get(type_name)(*args, **kwargs)


def create_collate_fn(type_name: str, *args: Any, **kwargs: Any) -> Callable:
    """The collate function registered as ``type_name`` in :data:`COLLATE_FN_REGISTRY`.

    A registered plain Python function is returned as it is (``args`` and ``kwargs`` are then
    ignored); a registered class is instantiated with ``args`` and ``kwargs``.

    Args:
        type_name: the registered name.
        args: positional arguments for a collate class.
        kwargs: keyword arguments for a collate class.

    Returns:
        The collate function, or the new collate object.

    Raises:
        NotRegisteredError: nothing of that name is registered.
        ConfigTypeError: the registered object is neither a Python function nor a class (helios
            asserts this).
    """
    entry = COLLATE_FN_REGISTRY.get(type_name)
    if isinstance(entry, types.FunctionType):
        return entry
    if not isinstance(entry, type):
        raise ConfigTypeError(
            f"create_collate_fn: '{type_name}' must be registered as a function or a class; "
            f"Expected a type but found {type(entry)}"
        )
    return entry(*args, **kwargs)
