"""Order: which sample comes next (iteration-order wrappers, samplers) and its saved state.

Native order only: the augments, :class:`GlobalOrderSampler`, the seeds and the state checks.
torch's resumable ``DistributedSampler`` lives in :mod:`.samplers.distributed` (both compat wings
build on it); dinov2's and helios' samplers live with their APIs under :mod:`shardstream.compat`.
"""

from . import samplers as samplers
from .augment_base import Augment
from .epochs import EpochShuffle
from .quasi import QuasiShuffler, quasi_shuffle_order, resolve_buffer_size
from .range import Range
from .repeat import Cycler, Repeater
from .samplers import (
    GlobalOrderSampler,
    epoch_order,
    epoch_seed,
    sample_rng,
    sample_seed,
    split_for_worker,
)
from .shuffle import Shuffler, shuffle_order

__all__ = [
    "Augment",
    "Cycler",
    "EpochShuffle",
    "GlobalOrderSampler",
    "QuasiShuffler",
    "Range",
    "Repeater",
    "Shuffler",
    "epoch_order",
    "epoch_seed",
    "quasi_shuffle_order",
    "resolve_buffer_size",
    "sample_rng",
    "sample_seed",
    "shuffle_order",
    "split_for_worker",
]
