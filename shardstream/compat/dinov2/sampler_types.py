"""The sampler kinds that dinov2's ``make_data_loader`` chooses between."""

from __future__ import annotations

from enum import Enum

__all__ = ["SamplerType"]


class SamplerType(Enum):
    """Which sampler ``make_sampler`` (and dinov2's ``make_data_loader``) builds.

    The values are dinov2's: ``DISTRIBUTED = 0`` (:class:`DistributedSampler`), ``EPOCH = 1``
    (:class:`EpochSampler`), ``INFINITE = 2`` (:class:`InfiniteSampler`), ``SHARDED_INFINITE = 3``
    and ``SHARDED_INFINITE_NEW = 4`` (:class:`ShardedInfiniteSampler` with the old or the new
    slice shuffle).
    """

    DISTRIBUTED = 0
    EPOCH = 1
    INFINITE = 2
    SHARDED_INFINITE = 3
    SHARDED_INFINITE_NEW = 4
