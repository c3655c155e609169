"""Samplers: shardstream's global-order sampler and the dinov2, helios and torch ones.

Every sampler has ``state_dict()`` / ``load_state_dict()``: a state taken after ``k`` items
makes the next iterator yield item ``k + 1`` of the uninterrupted stream.

:class:`GlobalOrderSampler`, :class:`SamplerType` and the seed helpers need only numpy; the
other samplers need torch, which is imported when one of them is first used.
"""

from __future__ import annotations

from ..._lazy import lazy_module_hooks
from .global_order import GlobalOrderSampler, epoch_order, split_for_worker
from .seeds import epoch_seed, sample_rng, sample_seed
from .types import SamplerType

__all__ = [
    "DistributedSampler",
    "EpochSampler",
    "GlobalOrderSampler",
    "InfiniteSampler",
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
    "SamplerType",
    "ShardedInfiniteSampler",
    "epoch_order",
    "epoch_seed",
    "make_sampler",
    "sample_rng",
    "sample_seed",
    "split_for_worker",
]

_TORCH_NAMES = {
    "DistributedSampler": "distributed",
    "EpochSampler": "dinov2",
    "InfiniteSampler": "dinov2",
    "ShardedInfiniteSampler": "dinov2",
    "ResumableDistributedSampler": "helios",
    "ResumableRandomSampler": "helios",
    "ResumableSampler": "helios",
    "ResumableSamplerType": "helios",
    "ResumableSequentialSampler": "helios",
    "make_sampler": "factory",
}


__getattr__, __dir__ = lazy_module_hooks(__name__, _TORCH_NAMES, globals())
