"""datadings' ``sets.tools``: ``open_comp`` and ``load_json`` for the metadata files of the
``sets`` package, :mod:`shardstream.sets.tools`."""

from ....sets.tools import *  # noqa: F403
from ....sets.tools import __all__  # noqa: F401
