"""helios' sampler registry, holding its three resumable samplers, and ``create_sampler``.

The samplers themselves live in :mod:`shardstream.compat.helios.resumable`.
"""

from __future__ import annotations

from typing import Any

from .registry import Registry
from .resumable import (
    ResumableDistributedSampler,
    ResumableRandomSampler,
    ResumableSampler,
    ResumableSamplerType,
    ResumableSequentialSampler,
)

__all__ = [
    "SAMPLER_REGISTRY",
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
    "create_sampler",
]

SAMPLER_REGISTRY = Registry("sampler")
"""The registry of sampler classes; holds ``ResumableRandomSampler``,
``ResumableSequentialSampler`` and ``ResumableDistributedSampler``.

Example::

    @SAMPLER_REGISTRY.register
    class MySampler(ResumableSampler): ...
"""

SAMPLER_REGISTRY.register(ResumableRandomSampler)
SAMPLER_REGISTRY.register(ResumableSequentialSampler)
SAMPLER_REGISTRY.register(ResumableDistributedSampler)


def create_sampler(type_name: str, *args: Any, **kwargs: Any) -> ResumableSamplerType:
    """Build the sampler class registered as ``type_name`` in :data:`SAMPLER_REGISTRY`.

    Args:
        type_name: the registered name, e.g. ``"ResumableRandomSampler"``.
        args: positional arguments for the class.
        kwargs: keyword arguments for the class.

    Returns:
        The new sampler.

    Raises:
        NotRegisteredError: no sampler of that name is registered.
    """
    return SAMPLER_REGISTRY.get(type_name)(*args, **kwargs)
