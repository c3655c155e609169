"""EpochShuffle: the shared core of wrappers that visit every sample once per epoch in a seeded order.

It keeps the (epoch, position) counters, seeks, and saves/restores them; subclasses supply the
epoch's order and how samples are fetched.
"""

from __future__ import annotations

from typing import Any

from ..checks import check_seed
from ..read.reader import Reader
from .augment_base import Augment, check_seek_index, require_reader
from .state import StateCounter, StateSpec

__all__ = ["EpochShuffle"]


class EpochShuffle(Augment):
    """Base of :class:`Shuffler` and :class:`QuasiShuffler`: counters, seek and state.

    Epoch ``e`` uses seed ``seed + e * len(reader)`` (datadings' rule).

    Args:
        reader: the reader to wrap.
        seed: base seed, or None for ``default_seed``.
        default_seed: the seed datadings uses when none is given.
    """

    _kind = "EpochShuffle"
    _reader: Reader  # a reader, never another augment (require_reader)

    def __init__(self, reader: Reader, seed: int | None, default_seed: int) -> None:
        super().__init__(require_reader(reader, self._kind))
        self._n = len(reader)
        self._seed = default_seed if seed is None else check_seed(seed)
        self._epoch = 0
        self._i = 0

    @property
    def seed(self) -> int:
        """The base seed; epoch ``e`` uses ``seed + e * len(reader)``."""
        return self._seed

    @property
    def epoch(self) -> int:
        """The epoch the next sample belongs to."""
        return self._normalized()[0]

    @property
    def position(self) -> int:
        """Index within the epoch's order of the next sample."""
        return self._normalized()[1]

    def seek(self, index: int) -> None:
        """Move to the ``index``-th sample of the endless sequence of epochs.

        Args:
            index: ``epoch * len(reader) + position``; must be >= 0.

        Raises:
            IndexError: ``index`` is negative, or the reader is empty.
        """
        index = check_seek_index(index, None if self._n else 0, self._kind)
        self._epoch, self._i = divmod(index, self._n)

    def _config(self) -> dict[str, Any]:
        """The settings that define the order; a saved state must match them to load."""
        return {"length": self._n, "seed": self._seed}

    def _state_spec(self) -> StateSpec:
        counters = (StateCounter("epoch"), StateCounter("position", high=max(0, self._n - 1)))
        return StateSpec(kind=self._kind, config=self._config(), counters=counters)

    def _state_values(self) -> dict[str, Any]:
        epoch, position = self._normalized()
        return {"epoch": epoch, "position": position}

    def _apply_state(self, values: dict[str, Any]) -> None:
        self._epoch, self._i = values["epoch"], values["position"]

    def _normalized(self) -> tuple[int, int]:
        if self._n and self._i >= self._n:
            return self._epoch + 1, 0
        return self._epoch, self._i

    def _pass_finished(self) -> bool:
        return self._i >= self._n
