"""Samplers of the native order: the global-order sampler and the seed streams.

Every sampler has ``state_dict()`` / ``load_state_dict()``: a state taken after ``k`` items
makes the next iterator yield item ``k + 1`` of the uninterrupted stream. torch's resumable
``DistributedSampler`` is in :mod:`.distributed` (it imports torch, so it is not imported here);
dinov2's and helios' samplers live in :mod:`shardstream.compat.dinov2.samplers` and
:mod:`shardstream.compat.helios.resumable`.
"""

from __future__ import annotations

from .global_order import GlobalOrderSampler, epoch_order, split_for_worker
from .seeds import epoch_seed, sample_rng, sample_seed

__all__ = [
    "GlobalOrderSampler",
    "epoch_order",
    "epoch_seed",
    "sample_rng",
    "sample_seed",
    "split_for_worker",
]
