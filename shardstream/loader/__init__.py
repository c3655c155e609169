"""The native loader: Deep Lake's chainable ``Loader`` over the readers, the order and the engine.

``loader.py`` holds the chain's builder steps, ``run.py`` one epoch's run (cursor, worker pool,
stats, progress, state); ``plan.py``, ``sample_work.py``, ``query.py`` and ``metadata.py`` what
they build on. Needs no torch.
"""

from ..read.reader import register_loader_factory
from .loader import Loader

__all__ = ["Loader"]

register_loader_factory(Loader)
