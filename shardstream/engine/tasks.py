"""What the engine maps over: batch tasks, the work that turns them into batches, stage timing.

The engine knows nothing about samples or images. A :class:`BatchTask` names the dataset
indices of one batch; a :class:`BatchWork` (built by the loader chain) turns one item of a task
into a sample and a list of samples into a collated batch. Randomness is the work's job: it
receives each sample's position in the epoch order, so results never depend on which worker or
thread handled a sample.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from .scratch import FRESH, BatchBuffers

__all__ = ["STAGES", "SKIPPED", "BatchTask", "BatchWork", "StageTimer"]

#: the stages a :class:`StageTimer` accumulates, in pipeline order
STAGES: tuple[str, ...] = ("read", "decode", "transform", "collate")


class _Skipped:
    """The type of :data:`SKIPPED` (a singleton, also across pickling)."""

    _instance: _Skipped | None = None

    def __new__(cls) -> _Skipped:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIPPED"

    def __reduce__(self) -> str:
        return "SKIPPED"


#: returned by :meth:`BatchWork.sample` for a sample skipped by policy: the engine drops it
#: before collation and counts it in ``stats()["skipped"]``
SKIPPED: Any = _Skipped()


@dataclass(frozen=True)
class BatchTask:
    """One batch to load: which samples, and where they sit in the epoch order.

    Attributes:
        sequence: the batch's number within one run (0, 1, 2, ...); informational, results
            come back in the order tasks are given.
        epoch: the epoch the batch belongs to.
        indices: int64 dataset indices of the batch's samples.
        positions: int64 positions of those samples within the epoch order (seed the
            per-sample random streams from these, never from the worker).
        state: scratch space the work may keep per-batch state in while it loads this batch
            (e.g. the batch arrays its samples are written into); empty when the task is made,
            not compared.
        buffers: where the batch's arrays are collated into, handed to the work by the engine
            (a worker process's reusing :class:`~shardstream.engine.scratch.BatchBuffers`;
            :data:`~shardstream.engine.scratch.FRESH` elsewhere).
        samples: raw bytes of some of the batch's samples that the caller already holds, by
            dataset index (e.g. fetched ahead as byte ranges), sent along with the task: the
            work reads those instead of asking its reader; ``None`` for none.
    """

    sequence: int
    epoch: int
    indices: np.ndarray
    positions: np.ndarray
    state: dict = field(default_factory=dict, compare=False, repr=False)
    buffers: BatchBuffers = field(default=FRESH, compare=False, repr=False)
    samples: dict[int, bytes] | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        """Return the number of samples in the batch."""
        return len(self.indices)


@runtime_checkable
class BatchWork(Protocol):
    """What the engine runs for each batch; must be picklable (sent once to each worker)."""

    def open(self) -> None:
        """Prepare for work in this process (open readers, etc.); called once per worker."""

    def sample(self, task: BatchTask, item: int, timer: StageTimer) -> Any:
        """Load one sample of a batch.

        Args:
            task: the batch.
            item: position of the sample inside ``task.indices``.
            timer: where to account the time spent per stage.

        Returns:
            The sample, or :data:`SKIPPED` to drop it by policy.
        """

    def collate(self, task: BatchTask, samples: list[Any], timer: StageTimer) -> Any:
        """Combine the (non-skipped) samples of a batch into a pytree.

        Args:
            task: the batch.
            samples: the samples, in item order, skipped ones left out.
            timer: where to account the time spent per stage.

        Returns:
            A pytree (dict/list/tuple nests) whose leaves are numpy arrays, torch tensors,
            Python scalars, str/bytes or None.
        """

    def describe(self, index: int) -> str:
        """Name a dataset sample for error messages, e.g. ``"sample 17 (key 'a') of /x.msgpack"``.

        Args:
            index: the dataset index.

        Returns:
            A short human-readable description.
        """


class StageTimer:
    """A thread-safe accumulator of seconds per pipeline stage (read, decode, transform, collate).

    The engine gives each batch its own timer; the totals travel back with the batch and are
    summed into the pool's ``stats()``.
    """

    __slots__ = ("_lock", "_seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage``.

        Args:
            stage: one of :data:`STAGES`.
            seconds: the time to add.

        Raises:
            ConfigError: ``stage`` is not one of :data:`STAGES`.
        """
        if stage not in self._seconds:
            raise ConfigError(f"StageTimer: unknown stage {stage!r}; stages are {STAGES}")
        with self._lock:
            self._seconds[stage] += seconds

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        """Time the body of a ``with`` block and add it to ``stage``.

        Args:
            stage: one of :data:`STAGES`.

        Raises:
            ConfigError: ``stage`` is not one of :data:`STAGES` (before the block runs).
        """
        if stage not in self._seconds:
            raise ConfigError(f"StageTimer: unknown stage {stage!r}; stages are {STAGES}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def totals(self) -> dict[str, float]:
        """Return a copy of the seconds per stage.

        Returns:
            ``{stage: seconds}`` for every stage of :data:`STAGES`.
        """
        with self._lock:
            return dict(self._seconds)
