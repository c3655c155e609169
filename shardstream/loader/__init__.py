"""The native loader: Deep Lake's chainable ``Loader`` over the readers, the order and the engine.

``loader.py`` holds the chain's builder steps, ``run.py`` one epoch's run (cursor, worker pool,
stats, progress, state); ``plan.py``, ``sample_work.py``, ``query.py`` and ``metadata.py`` what
they build on. Needs no torch.

Choices where Deep Lake leaves the behaviour open (see :mod:`shardstream.loader.plan` for the order):

- Without ``.batch()`` the loader yields single samples (not batches of one), as a torch
  ``DataLoader`` with ``batch_size=None`` does; ``batch_size`` still reports 1 and ``len()``
  counts samples.
- Without a mode method the loader iterates as ``.numpy()`` with its defaults (as
  ``.pytorch()`` with its defaults when a preset is set).
- ``iter(loader)`` continues the epoch at the cursor: after a completed epoch that is the start of
  the next epoch; after a loop left early (or ``load_state_dict``) it is where the consumer
  stopped. ``offset(off)`` sets the first epoch's starting cursor.
- ``len(loader)`` counts the batches of a whole epoch on this rank, also mid-epoch.
- ``query`` after an earlier ``query`` / ``sample_by`` runs on the whole dataset and keeps the
  view's entries it selects (in view order, repeats kept); its ``LIMIT`` / ``ORDER BY`` therefore
  act on the whole dataset.
- ``sample_by`` draws once, when it is called, from the loader's seed: the view stays fixed over
  epochs.
"""

from ..read.reader import register_loader_factory
from .loader import Loader

__all__ = ["Loader"]

register_loader_factory(Loader)
