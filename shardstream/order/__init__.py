"""Order: which sample comes next (iteration-order wrappers, samplers) and its saved state."""

from .augment_base import Augment
from .quasi import QuasiShuffler, quasi_shuffle_order, resolve_buffer_size
from .range import Range
from .repeat import Cycler, Repeater
from .shuffle import Shuffler, shuffle_order

__all__ = [
    "Augment",
    "Cycler",
    "QuasiShuffler",
    "Range",
    "Repeater",
    "Shuffler",
    "quasi_shuffle_order",
    "resolve_buffer_size",
    "shuffle_order",
]
