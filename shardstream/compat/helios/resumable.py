"""helios' resumable samplers: ResumableSampler and its random, sequential and distributed kinds.

helios resumes an epoch through ``start_iter`` (batches already consumed) and ``set_epoch``:
each iterator skips the first ``start_iter * batch_size`` indices of the epoch, and the epoch
seeds the shuffle. These classes keep that interface and its values, and add
``state_dict()`` / ``load_state_dict()``, which record the exact position in the epoch (any
number of samples, not only whole batches) as well as ``start_iter`` and the epoch.

Kept from helios: ``start_iter`` stays set until changed, so every later iterator (later epochs
too) skips the same leading batches; ``len`` is always the full epoch length; the random
sampler's torch seed is ``seed + epoch`` (so (seed 0, epoch 1) equals (seed 1, epoch 0)).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from ...errors import ConfigError
from ...order.samplers._common import EpochSelection, StreamProgress, check_int, check_torch_seed
from ...order.samplers.distributed import DistributedSampler
from ...order.state import check_state, state_counter

__all__ = [
    "ResumableDistributedSampler",
    "ResumableRandomSampler",
    "ResumableSampler",
    "ResumableSamplerType",
    "ResumableSequentialSampler",
]


class ResumableSampler(EpochSelection, StreamProgress, Sampler[int]):
    """Base of helios' resumable samplers: ``start_iter``, ``set_epoch`` and a batch size.

    A sampler is resumable when, stopped right after batch ``i`` of epoch ``e`` and restarted in
    epoch ``e``, it yields batch ``i + 1`` next and then the same batches as an uninterrupted
    run. Subclasses implement :meth:`epoch_indices`; a subclass may instead override
    ``__iter__`` as in helios (it then records no position beyond ``start_iter``).

    Args:
        batch_size: samples per batch (>= 1); ``start_iter`` counts batches of this size.

    Raises:
        ConfigError: ``batch_size`` is not a positive integer.
    """

    def __init__(self, batch_size: int) -> None:
        self._batch_size = check_int(batch_size, "batch_size", type(self).__name__, low=1)
        self._start_iter = 0
        self._epoch = 0

    def __iter__(self) -> Iterator[int]:
        first, token = self._begin()
        yield from self._emit(np.asarray(self.epoch_indices()), first, token)

    def epoch_indices(self) -> np.ndarray:
        """All indices of the current epoch in order, before ``start_iter`` is applied.

        Returns:
            An integer numpy array.

        Raises:
            NotImplementedError: the subclass does not define the epoch's indices.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement epoch_indices()")

    @property
    def start_iter(self) -> int:
        """Batches of the epoch that every new iterator skips (helios' resume point)."""
        return self._start_iter

    @start_iter.setter
    def start_iter(self, ite: int) -> None:
        self._start_iter = check_int(ite, "start_iter", type(self).__name__, low=0)

    @property
    def epoch(self) -> int:
        """The epoch that seeds the order."""
        return self._epoch

    def state_dict(self) -> dict[str, Any]:
        """The sampler's arguments, epoch, ``start_iter`` and position in the epoch.

        Returns:
            A small JSON-serialisable dict for :meth:`load_state_dict`.
        """
        return {
            **self._config(),
            "epoch": self._epoch,
            "start_iter": self._start_iter,
            "position": self._progress(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state: the next iterator continues right after the saved position.

        Args:
            state: a dict from :meth:`state_dict` of the same kind of sampler with the same
                arguments.

        Raises:
            StateMismatchError: the state is of another kind, was taken with other arguments,
                or holds an out-of-range counter. The sampler is unchanged.
        """
        config = self._config()
        kind = config.pop("kind")
        checked = check_state(
            state, kind=kind, config=config, fields=("epoch", "start_iter", "position")
        )
        epoch = state_counter(checked, "epoch", kind=kind, low=0, high=None)
        start_iter = state_counter(checked, "start_iter", kind=kind, low=0, high=None)
        limit = len(self) if hasattr(type(self), "__len__") else None
        position = state_counter(checked, "position", kind=kind, low=0, high=limit)
        self._epoch = epoch
        self._start_iter = start_iter
        self._resume_at(position)

    def _adjust_to_start_iter(self, indices: Any) -> Any:
        """helios' helper: drop the first ``start_iter * batch_size`` of ``indices``."""
        return indices[self._start_iter * self._batch_size :]

    def _default_start(self) -> int:
        return self._start_iter * self._batch_size

    def _config(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "batch_size": self._batch_size}


class ResumableRandomSampler(ResumableSampler):
    """helios' random sampler: ``torch.randperm(n)`` seeded with ``seed + epoch`` per epoch.

    Args:
        data_source: the data set (only its length is used, taken once here).
        seed: torch seed; the epoch's seed is ``seed + epoch``.
        batch_size: samples per batch, for ``start_iter``.

    Raises:
        ConfigError: ``data_source`` has no length, or an argument is out of range.
    """

    def __init__(self, data_source: Sized, seed: int = 0, batch_size: int = 1) -> None:
        super().__init__(batch_size)
        self._data_source = data_source
        self._seed = check_torch_seed(seed, "seed", type(self).__name__)
        self._num_samples = _length(data_source, type(self).__name__)

    def __len__(self) -> int:
        return self._num_samples

    def epoch_indices(self) -> np.ndarray:
        """The epoch's permutation, before ``start_iter`` is applied.

        Returns:
            An int64 array holding a permutation of ``range(len(data_source))``.

        Raises:
            ConfigError: ``seed + epoch`` is outside torch's seed range.
        """
        seed = check_torch_seed(self._epoch + self._seed, "seed + epoch", type(self).__name__)
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(self._num_samples, generator=generator).numpy()

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "sample_count": self._num_samples, "seed": self._seed}


class ResumableSequentialSampler(ResumableSampler):
    """helios' sequential sampler: ``0, 1, ..., n - 1`` every epoch.

    Args:
        data_source: the data set (only its length is used, taken once here).
        batch_size: samples per batch, for ``start_iter``.

    Raises:
        ConfigError: ``data_source`` has no length, or ``batch_size`` is out of range.
    """

    def __init__(self, data_source: Sized, batch_size: int = 1) -> None:
        super().__init__(batch_size)
        self._data_source = data_source
        self._num_samples = _length(data_source, type(self).__name__)

    def __len__(self) -> int:
        return self._num_samples

    def epoch_indices(self) -> np.ndarray:
        """``arange(n)``; the epoch has no effect.

        Returns:
            An int64 array.
        """
        return np.arange(self._num_samples)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "sample_count": self._num_samples}


class ResumableDistributedSampler(DistributedSampler):
    """helios' distributed sampler: :class:`DistributedSampler` plus ``start_iter``.

    Each rank's epoch is torch's ``DistributedSampler`` order; every iterator skips this rank's
    first ``start_iter * batch_size`` indices.

    Args:
        dataset: the data set (only its length is used).
        num_replicas: world size; default: that of the initialised process group.
        rank: this process's rank; default: that of the initialised process group.
        shuffle: shuffle each epoch.
        seed: torch seed; the epoch's seed is ``seed + epoch``.
        drop_last: cut the tail instead of padding so that ranks get equal counts.
        batch_size: samples per batch, for ``start_iter``.

    Raises:
        NoProcessGroupError: ``num_replicas`` or ``rank`` is ``None`` and no process group is
            initialised (a ``ValueError``, as torch's sampler that helios derives from raises).
        ConfigError: an argument is out of range.
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        batch_size: int = 1,
    ) -> None:
        super().__init__(dataset, num_replicas, rank, shuffle, seed, drop_last)
        self._batch_size = check_int(batch_size, "batch_size", type(self).__name__, low=1)
        self._start_iter = 0

    @property
    def start_iter(self) -> int:
        """Batches of the epoch that every new iterator skips (helios' resume point)."""
        return self._start_iter

    @start_iter.setter
    def start_iter(self, ite: int) -> None:
        self._start_iter = check_int(ite, "start_iter", type(self).__name__, low=0)

    def _default_start(self) -> int:
        return self._start_iter * self._batch_size

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "batch_size": self._batch_size}

    def _counters(self) -> dict[str, int]:
        return {**super()._counters(), "start_iter": self._start_iter}

    def _read_counters(self, state: Mapping[str, Any], kind: str) -> dict[str, int]:
        start_iter = state_counter(state, "start_iter", kind=kind, low=0, high=None)
        return {**super()._read_counters(state, kind), "start_iter": start_iter}

    def _apply_counters(self, counters: Mapping[str, int]) -> None:
        super()._apply_counters(counters)
        self._start_iter = counters["start_iter"]


ResumableSamplerType = ResumableSampler | ResumableDistributedSampler
"""A resumable sampler: one derived from :class:`ResumableSampler` or
:class:`ResumableDistributedSampler` (helios' ``create_dataloader`` accepts no other)."""


def _length(data_source: object, owner: str) -> int:
    try:
        return len(data_source)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(
            f"{owner}: data_source must have a length, got {type(data_source).__name__}"
        ) from None
