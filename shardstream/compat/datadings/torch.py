"""datadings' ``torch``: PyTorch datasets over readers (:mod:`shardstream.compat.datadings.torch_data`).

``Compose``, ``CompressedToPIL``, ``dict2tuple`` and ``no_rng`` need no torch; ``Dataset``,
``IterableDataset`` and ``DatasetBase`` (the base both share: reader, transforms, rng) import
torch on first use and raise :class:`~shardstream.errors.MissingDependencyError` naming the
``shardstream[torch]`` extra when it is missing.
"""

from __future__ import annotations

from typing import Any

from ...errors import MissingDependencyError
from .compose import Compose, dict2tuple, no_rng
from .compressed_pil import CompressedToPIL

__all__ = [
    "Compose",
    "CompressedToPIL",
    "Dataset",  # noqa: F822 (resolved by __getattr__)
    "DatasetBase",  # noqa: F822 (resolved by __getattr__)
    "IterableDataset",  # noqa: F822 (resolved by __getattr__)
    "dict2tuple",
    "no_rng",
]

#: torch-based name -> its name in shardstream.compat.datadings.torch_data
_TORCH_NAMES = {
    "Dataset": "Dataset",
    "IterableDataset": "IterableDataset",
    "DatasetBase": "_TransformedReader",
}


def __getattr__(name: str) -> Any:
    """Import the torch-based classes on first use.

    Raises:
        MissingDependencyError: torch is not installed.
        AttributeError: no such name.
    """
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from . import torch_data  # delayed: it imports torch, an optional dependency
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "torch":
            raise
        raise MissingDependencyError(
            f"{__name__}.{name} needs torch: pip install 'shardstream[torch]'"
        ) from error
    value = getattr(torch_data, _TORCH_NAMES[name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
