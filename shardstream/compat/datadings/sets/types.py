"""datadings' ``sets.types``: the sample type constructors, :mod:`shardstream.sets.types`."""

from ....sets.types import *  # noqa: F403
from ....sets.types import __all__  # noqa: F401
