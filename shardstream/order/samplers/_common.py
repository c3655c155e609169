"""Helpers shared by the sampler modules: argument checks, rank defaults, position tracking."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ...checks import check_bool, check_int, check_torch_seed
from ...errors import ConfigError

__all__ = [
    "CHUNK",
    "StreamProgress",
    "check_bool",
    "check_int",
    "check_torch_seed",
    "default_rank_and_world_size",
    "resolve_start_and_step",
]

CHUNK = 4096
"""Indices converted to Python ints at a time while yielding (keeps index data in numpy)."""


def default_rank_and_world_size() -> tuple[int, int]:
    """The global rank and world size of the initialised ``torch.distributed`` group, else (0, 1).

    torch is not imported here: if no module has imported it, no process group can exist.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return 0, 1
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_start_and_step(start: object, step: object, owner: str) -> tuple[int, int]:
    """dinov2's ``start``/``step`` defaults (global rank and world size), checked.

    Raises:
        ConfigError: ``step < 1`` or ``start`` outside ``[0, step)``.
    """
    rank, world_size = default_rank_and_world_size()
    start = rank if start is None else check_int(start, "start", owner, low=0)
    step = world_size if step is None else check_int(step, "step", owner, low=1)
    if start >= step:
        raise ConfigError(
            f"{owner}: start={start} must be smaller than step={step} (start is the rank, "
            "step the world size)"
        )
    return start, step


class StreamProgress:
    """Mixin that counts the items the newest iterator of a sampler has yielded.

    The position is the index of the next item in this rank's stream (for a finite sampler, the
    stream of the current epoch).
    ``load_state_dict`` makes the *next* iterator start at the saved position (once); any
    other new iterator starts at :meth:`_default_start`, as does the next one when the saved
    position is at the end of a finite epoch (an uninterrupted sampler would also start the
    epoch over then). Only the newest iterator moves the position, so an abandoned iterator
    cannot corrupt it.
    """

    _position: int | None = None
    _pending: bool = False
    _token: int = 0

    def _default_start(self) -> int:
        return 0

    def _stream_length(self) -> int | None:
        """Items per epoch of this rank; ``None`` for an endless stream."""
        try:
            return len(self)  # type: ignore[arg-type]
        except TypeError:
            return None

    def _progress(self) -> int:
        """The position a state taken now records."""
        return self._default_start() if self._position is None else self._position

    def _reset_progress(self) -> None:
        self._position = None
        self._pending = False

    def _resume_at(self, position: int) -> None:
        self._position = position
        self._pending = True

    def _begin(self) -> tuple[int, int]:
        first = self._default_start()
        if self._pending:
            length = self._stream_length()
            if length is None or self._progress() < length:
                first = self._progress()
        self._pending = False
        self._token += 1
        self._position = first
        return first, self._token

    def _emit(self, values: np.ndarray, first: int, token: int) -> Iterator[int]:
        for lo in range(first, len(values), CHUNK):
            for value in values[lo : lo + CHUNK].tolist():
                if self._token == token and self._position is not None:
                    self._position += 1
                yield value


class EpochSelection:
    """``set_epoch`` for samplers whose order depends on the epoch (mixed in with StreamProgress).

    Attributes:
        _epoch_attribute: name of the attribute holding the epoch (torch's samplers use ``epoch``).
    """

    _epoch_attribute = "_epoch"

    if TYPE_CHECKING:  # provided by StreamProgress

        def _reset_progress(self) -> None: ...

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; another epoch than the current one starts at its beginning.

        Setting the current epoch again keeps a position restored by :meth:`load_state_dict`.

        Args:
            epoch: the epoch number (>= 0).

        Raises:
            ConfigError: ``epoch`` is not a non-negative integer.
        """
        epoch = check_int(epoch, "epoch", f"{type(self).__name__}.set_epoch", low=0)
        if epoch != getattr(self, self._epoch_attribute):
            setattr(self, self._epoch_attribute, epoch)
            self._reset_progress()
