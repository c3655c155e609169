"""The one way shardstream derives random streams: from (seed, epoch) and (seed, epoch, position).

The order of epoch ``e`` is drawn from ``numpy.random.SeedSequence([seed, e])``. The random
stream of the sample at ``position`` of that order (augmentation draws, masks, anything
per-sample) comes from child ``position`` of the same seed sequence,
``SeedSequence([seed, e], spawn_key=(position,))`` (identical to
``SeedSequence([seed, e]).spawn(position + 1)[position]``). Nothing depends on the process,
the worker, the world size or the time, so any split of the work draws the same numbers, and a
resumed run draws what the uninterrupted one would have.

``seed`` and ``epoch`` are limited to ``[0, 2**32)`` so each is one 32-bit word of entropy:
numpy splits larger integers into several words, which would let (seed, epoch) pairs collide.
"""

from __future__ import annotations

import numpy as np

from ...checks import SEED_WORD_LIMIT, check_int, check_seed_word

__all__ = ["SEED_LIMIT", "epoch_seed", "sample_rng", "sample_seed"]

SEED_LIMIT = SEED_WORD_LIMIT
"""Seeds and epochs lie in ``[0, SEED_LIMIT)``."""


def epoch_seed(seed: int, epoch: int) -> np.random.SeedSequence:
    """The seed sequence of epoch ``epoch``: ``SeedSequence([seed, epoch])``.

    Args:
        seed: the run's seed, in ``[0, 2**32)``.
        epoch: the epoch, in ``[0, 2**32)``.

    Returns:
        The seed sequence from which the epoch's order is drawn.

    Raises:
        ConfigError: ``seed`` or ``epoch`` is not an integer in ``[0, 2**32)``.
    """
    return np.random.SeedSequence([check_seed_word(seed, "seed"), check_seed_word(epoch, "epoch")])


def sample_seed(seed: int, epoch: int, position: int) -> np.random.SeedSequence:
    """The seed sequence of the sample at ``position`` of epoch ``epoch``'s order.

    This is THE way every per-sample random stream is derived: child ``position`` of
    :func:`epoch_seed`, ``SeedSequence([seed, epoch], spawn_key=(position,))``.

    Args:
        seed: the run's seed, in ``[0, 2**32)``.
        epoch: the epoch, in ``[0, 2**32)``.
        position: the sample's position in the epoch's global order (>= 0; padding positions
            past the data set's end get streams of their own).

    Returns:
        The sample's seed sequence.

    Raises:
        ConfigError: an argument is not an integer in its range.
    """
    position = check_int(position, "position", "sample_seed", low=0)
    return np.random.SeedSequence(
        [check_seed_word(seed, "seed"), check_seed_word(epoch, "epoch")], spawn_key=(position,)
    )


def sample_rng(seed: int, epoch: int, position: int) -> np.random.Generator:
    """A ``numpy.random.Generator`` (PCG64) on :func:`sample_seed`'s stream.

    Args:
        seed: the run's seed, in ``[0, 2**32)``.
        epoch: the epoch, in ``[0, 2**32)``.
        position: the sample's position in the epoch's global order (>= 0).

    Returns:
        A fresh generator; equal arguments give equal draws.

    Raises:
        ConfigError: an argument is not an integer in its range.
    """
    return np.random.Generator(np.random.PCG64(sample_seed(seed, epoch, position)))
