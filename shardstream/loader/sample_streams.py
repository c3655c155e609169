"""The loader's per-sample generators, made quickly: ``sample_rng(seed, epoch, position)``'s.

A loader worker makes one generator per sample. :func:`~shardstream.order.samplers.seeds.
sample_rng` builds it as ``Generator(PCG64(SeedSequence([seed, epoch], spawn_key=(position,))))``,
and numpy's seed sequence does its hashing in Python-level steps: ~15 us a sample on one thread
and two to three times that in a worker between two decodes (a DINO image's worker step is
~1 ms). PCG64 asks its seed sequence for one thing, ``generate_state(4, np.uint64)``; the C
extension ``_masking`` computes those words (``seed_words``, numpy's algorithm, checked against
numpy by tests/loader/test_sample_streams.py), so the generator is seeded with the very state
``sample_rng`` gives it and draws the same numbers.

The generator's ``bit_generator.seed_seq`` is a :class:`SampleSeed`: it spawns, and answers
``entropy``, ``spawn_key`` and the rest, as the ``SeedSequence`` it stands for (made when first
asked). Where the extension is not built, or a position is ``2**64`` or more,
:func:`sample_generator` is ``sample_rng`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.random.bit_generator import ISpawnableSeedSequence

from ..order.samplers.seeds import sample_rng, sample_seed

try:  # optional C extension (setup.py)
    from ..vision import _masking
except ImportError:  # pragma: no cover - built where the tests run
    _masking = None  # type: ignore[assignment]  # mypy cannot type an optional module

__all__ = ["SampleSeed", "sample_generator"]

_NATIVE = hasattr(_masking, "seed_words")
_UINT64 = np.dtype(np.uint64)


class SampleSeed(ISpawnableSeedSequence):
    """``SeedSequence([seed, epoch], spawn_key=(position,))`` whose PCG64 seeding words come from C.

    Args:
        seed: the run's seed, in ``[0, 2**32)`` (checked by the caller).
        epoch: the epoch, in ``[0, 2**32)``.
        position: the sample's position, in ``[0, 2**64)``.
    """

    __slots__ = ("_key", "_sequence")

    def __init__(self, seed: int, epoch: int, position: int) -> None:
        self._key = (seed, epoch, position)
        self._sequence: np.random.SeedSequence | None = None

    def seed_sequence(self) -> np.random.SeedSequence:
        """The numpy ``SeedSequence`` this stands for (made once, when first asked)."""
        if self._sequence is None:
            self._sequence = sample_seed(*self._key)
        return self._sequence

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        """``SeedSequence.generate_state``: PCG64's ``(4, np.uint64)`` from C, else numpy's."""
        if n_words == 4 and self._sequence is None and np.dtype(dtype) == _UINT64:
            return np.array(_masking.seed_words(*self._key), np.uint64)
        return self.seed_sequence().generate_state(n_words, dtype)

    # numpy's stub says the children are of this class; they are numpy's SeedSequences
    def spawn(self, n_children: int) -> list[np.random.SeedSequence]:  # type: ignore[override]
        """``SeedSequence.spawn``: the same children, in the same order on repeated calls."""
        return self.seed_sequence().spawn(n_children)

    def __getattr__(self, name: str) -> Any:  # entropy, spawn_key, pool_size, pool, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.seed_sequence(), name)


def sample_generator(seed: int, epoch: int, position: int) -> np.random.Generator:
    """``sample_rng(seed, epoch, position)``: a generator in the same state, made quicker.

    Args:
        seed: the run's seed, in ``[0, 2**32)``.
        epoch: the epoch, in ``[0, 2**32)``.
        position: the sample's position in the epoch's global order (>= 0).

    Returns:
        A fresh generator; equal arguments give equal draws, those of ``sample_rng``.

    Raises:
        ConfigError: an argument is not an integer in its range.
    """
    if (
        _NATIVE
        and type(seed) is int
        and type(epoch) is int
        and type(position) is int
        and 0 <= seed < 1 << 32
        and 0 <= epoch < 1 << 32
        and 0 <= position < 1 << 64
    ):
        return np.random.Generator(np.random.PCG64(SampleSeed(seed, epoch, position)))
    return sample_rng(seed, epoch, position)  # checks its arguments
