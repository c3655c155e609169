"""Order: which sample comes next (iteration-order wrappers, samplers) and its saved state.

The torch-based samplers (dinov2's, helios', torch's distributed one) are imported on first use,
so importing shardstream does not import torch.
"""

from typing import Any

from . import samplers
from .augment_base import Augment
from .epochs import EpochShuffle
from .quasi import QuasiShuffler, quasi_shuffle_order, resolve_buffer_size
from .range import Range
from .repeat import Cycler, Repeater
from .samplers import (
    GlobalOrderSampler,
    SamplerType,
    epoch_order,
    epoch_seed,
    sample_rng,
    sample_seed,
    split_for_worker,
)
from .shuffle import Shuffler, shuffle_order

#: samplers whose modules import torch; resolved lazily by ``__getattr__``
TORCH_SAMPLERS = (
    "DistributedSampler",
    "EpochSampler",
    "InfiniteSampler",
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
    "ShardedInfiniteSampler",
    "make_sampler",
)

__all__ = [
    "Augment",
    "Cycler",
    "DistributedSampler",
    "EpochSampler",
    "EpochShuffle",
    "GlobalOrderSampler",
    "InfiniteSampler",
    "QuasiShuffler",
    "Range",
    "Repeater",
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
    "SamplerType",
    "ShardedInfiniteSampler",
    "Shuffler",
    "epoch_order",
    "epoch_seed",
    "make_sampler",
    "quasi_shuffle_order",
    "resolve_buffer_size",
    "sample_rng",
    "sample_seed",
    "shuffle_order",
    "split_for_worker",
]


def __getattr__(name: str) -> Any:
    if name in TORCH_SAMPLERS:
        return getattr(samplers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
