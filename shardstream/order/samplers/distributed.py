"""torch's ``DistributedSampler`` (dinov2's ``DISTRIBUTED`` sampler) with a resumable state."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler as TorchDistributedSampler

from ...errors import ConfigError, NoProcessGroupError
from ..state import StateCounter, StatefulMixin, StateSpec
from ._common import (
    EpochSelection,
    StreamProgress,
    check_bool,
    check_int,
    check_torch_seed,
    default_rank_and_world_size,
)

__all__ = ["DistributedSampler", "require_process_group"]


def require_process_group(owner: str) -> None:
    """Raise unless a ``torch.distributed`` process group is initialised (torch's check).

    Args:
        owner: who asks, for the message.

    Raises:
        NoProcessGroupError: no process group (torch's ``DistributedSampler`` raises then).
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise NoProcessGroupError(
            f"{owner}: Default process group has not been initialized, please make sure to call "
            "init_process_group (or pass num_replicas and rank)."
        )


class DistributedSampler(StatefulMixin, EpochSelection, StreamProgress, TorchDistributedSampler):
    """torch's ``DistributedSampler``, yielding the same indices, plus ``state_dict()``.

    Each epoch: ``torch.randperm(n)`` from a generator seeded with ``seed + epoch`` (or
    ``range(n)`` without ``shuffle``); then, so that every rank gets the same count
    ``num_samples`` and no collective waits for a missing batch, either padded to
    ``total_size`` by repeating the order from its start (``drop_last=False``) or cut to
    ``total_size`` (``drop_last=True``, at most ``num_replicas - 1`` indices dropped); rank
    ``r`` takes positions ``r, r + num_replicas, ...``.

    As in torch, ``num_replicas`` and ``rank`` left as ``None`` come from the initialised
    process group, and without one the sampler refuses to be built
    (:class:`NoProcessGroupError`, a ``ValueError`` like torch's) rather than quietly running as
    the only rank of one; pass both to build it without a process group.

    Differences from torch: invalid arguments raise :class:`ConfigError`, the epoch's
    indices are built in numpy arrays instead of Python lists (same values), and
    ``state_dict()`` / ``load_state_dict()`` save the arguments, the epoch and the position
    (indices this rank has yielded); the next iterator after a load continues right after the
    saved position. The rank is not recorded (all ranks share the position in a lock-step run);
    the world size is, since the order depends on it.

    Args:
        dataset: the data set (only its length is used, taken once here).
        num_replicas: world size; default: that of the initialised process group.
        rank: this process's rank; default: that of the initialised process group.
        shuffle: shuffle each epoch.
        seed: torch seed; the epoch's seed is ``seed + epoch``.
        drop_last: cut the tail instead of padding.

    Raises:
        NoProcessGroupError: ``num_replicas`` or ``rank`` is ``None`` and no process group is
            initialised.
        ConfigError: ``dataset`` has no length, or an argument is out of range
            (``rank`` must lie in ``[0, num_replicas)``).
    """

    _epoch_attribute = "epoch"  # torch's attribute name

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        owner = type(self).__name__
        if num_replicas is None or rank is None:
            require_process_group(owner)
        default_rank, default_world_size = default_rank_and_world_size()
        if num_replicas is None:
            num_replicas = default_world_size
        num_replicas = check_int(num_replicas, "num_replicas", owner, low=1)
        rank = default_rank if rank is None else check_int(rank, "rank", owner, low=0)
        if rank >= num_replicas:
            raise ConfigError(
                f"{owner}: rank={rank} must be smaller than num_replicas={num_replicas}"
            )
        try:
            sample_count = len(dataset)
        except TypeError:
            raise ConfigError(
                f"{owner}: dataset must have a length, got {type(dataset).__name__}"
            ) from None
        super().__init__(
            dataset,  # type: ignore[arg-type]  # torch annotates Dataset but only takes its len()
            num_replicas=num_replicas,
            rank=rank,
            shuffle=check_bool(shuffle, "shuffle", owner),
            seed=check_torch_seed(seed, "seed", owner),
            drop_last=check_bool(drop_last, "drop_last", owner),
        )
        self._sample_count = sample_count

    def __iter__(self) -> Iterator[int]:
        first, token = self._begin()
        yield from self._emit(self.rank_indices(), first, token)

    def rank_indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, from its beginning.

        Returns:
            An int64 array of ``num_samples`` indices.

        Raises:
            ConfigError: ``seed + epoch`` is outside torch's seed range.
        """
        n = self._sample_count
        if self.shuffle:
            seed = check_torch_seed(self.seed + self.epoch, "seed + epoch", type(self).__name__)
            generator = torch.Generator().manual_seed(seed)
            indices = torch.randperm(n, generator=generator).numpy()
        else:
            indices = np.arange(n)
        indices = np.resize(indices, self.total_size)  # pads cyclically or cuts the tail
        return indices[self.rank : self.total_size : self.num_replicas]

    def _state_spec(self) -> StateSpec:
        config = {
            "sample_count": self._sample_count,
            "num_replicas": self.num_replicas,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "drop_last": self.drop_last,
        }
        counters = (StateCounter("epoch"), StateCounter("position", high=self.num_samples))
        return StateSpec(kind=type(self).__name__, config=config, counters=counters)

    def _state_values(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self._progress()}

    def _apply_state(self, values: dict[str, Any]) -> None:
        self.epoch = values["epoch"]
        self._resume_at(values["position"])
