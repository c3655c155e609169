"""helios' global random generators: torch, Python's ``random`` and a default NumPy generator.

helios seeds three generators together (:func:`seed_rngs`), saves and restores them together
(:func:`get_rng_state_dict` / :func:`load_rng_state_dict`), and keeps one process-wide NumPy
``Generator`` (PCG64) in place of NumPy's legacy global functions, which
:func:`get_default_numpy_rng` returns (a ``numpy.random.Generator``, as in helios 2.0; helios 1.x
returned its :class:`DefaultNumpyRNG` wrapper). The default seed is 6691.
The data loaders of :mod:`shardstream.compat.helios` re-seed ``random`` and that generator in
each worker process (see :func:`~shardstream.compat.helios.dataloader.seed_worker`).

Difference from helios: reading the default NumPy generator before it exists raises
:class:`~shardstream.errors.NotReadyError` (a ``RuntimeError``, with helios' message).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...errors import NotReadyError

__all__ = [
    "DefaultNumpyRNG",
    "create_default_numpy_rng",
    "get_default_numpy_rng",
    "get_default_seed",
    "get_rng_state_dict",
    "load_rng_state_dict",
    "seed_rngs",
]

_DEFAULT_SEED = 6691

#: A seed NumPy's ``default_rng`` accepts: an int, a sequence of ints, or ``None`` (fresh entropy).
Seed = int | Sequence[int] | None


def get_default_seed() -> int:
    """helios' default seed.

    Returns:
        6691.
    """
    return _DEFAULT_SEED


class DefaultNumpyRNG:
    """A NumPy ``Generator`` (PCG64) whose state can be saved and restored like torch's.

    Args:
        seed: the seed for ``numpy.random.default_rng``; ``None`` draws fresh entropy.
    """

    def __init__(self, seed: Seed = None) -> None:
        self._generator = np.random.default_rng(seed)

    @property
    def generator(self) -> np.random.Generator:
        """The wrapped NumPy generator."""
        return self._generator

    def state_dict(self) -> Mapping[str, Any]:
        """The bit generator's state.

        Returns:
            NumPy's ``bit_generator.state`` dict.
        """
        return self._generator.bit_generator.state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state taken by :meth:`state_dict`.

        Args:
            state_dict: the bit generator's state.
        """
        self._generator.bit_generator.state = state_dict


_DEFAULT_RNG: DefaultNumpyRNG | None = None


def create_default_numpy_rng(seed: Seed = None) -> None:
    """Create (or replace) the process-wide default NumPy generator.

    Args:
        seed: its seed; ``None`` draws fresh entropy.
    """
    global _DEFAULT_RNG
    _DEFAULT_RNG = DefaultNumpyRNG(seed)


def get_default_numpy_rng() -> np.random.Generator:
    """The process-wide default NumPy generator (helios 2.0: the ``Generator`` itself).

    Returns:
        The ``numpy.random.Generator`` made by the last :func:`create_default_numpy_rng` or
        :func:`seed_rngs`.

    Raises:
        NotReadyError: no default generator has been created in this process yet.
    """
    return _default_rng().generator


def _default_rng() -> DefaultNumpyRNG:
    """The wrapper of the default generator (its state is saved and restored through it)."""
    if _DEFAULT_RNG is None:
        raise NotReadyError(
            "error: default RNG has not been created. Did you forget to call create_default_rng?"
        )
    return _DEFAULT_RNG


def seed_rngs(seed: int | None = None, skip_torch: bool = False) -> None:
    """Seed torch (and every CUDA device), Python's ``random`` and the default NumPy generator.

    Args:
        seed: the seed; ``None`` for :func:`get_default_seed`.
        skip_torch: leave torch's generators alone (in data loader workers, torch has already
            seeded them).
    """
    seed = get_default_seed() if seed is None else seed
    if not skip_torch:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    random.seed(seed)
    create_default_numpy_rng(seed)


def get_rng_state_dict() -> dict[str, Any]:
    """The states of torch's CPU generator, ``random`` and the default NumPy generator.

    Returns:
        ``{"torch": ..., "rand": ..., "numpy": ...}``, plus ``"cuda"`` (the current CUDA
        device's state) when CUDA is available.

    Raises:
        NotReadyError: the default NumPy generator has not been created.
    """
    state = {
        "torch": torch.get_rng_state(),
        "rand": random.getstate(),
        "numpy": _default_rng().state_dict(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def load_rng_state_dict(state_dict: Mapping[str, Any]) -> None:
    """Restore the generators from a :func:`get_rng_state_dict` result.

    The CUDA state is restored only when CUDA is available and the dict has one.

    Args:
        state_dict: the saved states.

    Raises:
        NotReadyError: the default NumPy generator has not been created.
    """
    torch.set_rng_state(state_dict["torch"])
    random.setstate(state_dict["rand"])
    _default_rng().load_state_dict(state_dict["numpy"])
    if torch.cuda.is_available() and "cuda" in state_dict:
        torch.cuda.set_rng_state(state_dict["cuda"])
